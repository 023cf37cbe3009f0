// Train and test loss per epoch, drawn with Plotly (the classic script /vendor/plotly.min.js sets
// window.Plotly). Points arrive at up to 40 frames/s; the chart redraws at a bounded rate and thins
// old history, so a long run costs the same as a short one.

/** Points kept per trace; past this every other point is dropped and later ones are sampled. */
const MAX_POINTS = 500;
/** At most one redraw per this many milliseconds, however fast points arrive. */
const REDRAW_MS = 150;
const FONT = { family: "DejaVu Sans, sans-serif", size: 15, color: "#1b1f24" };
const DIVERGED_COLOR = "#b42318";
/** Dash patterns as well as colours, so the two lines differ without colour vision. */
const TRACES = [
  { name: "train loss", line: { color: "#1b1f24", width: 2.5, dash: "solid" } },
  { name: "test loss", line: { color: "#cc79a7", width: 2.5, dash: "dash" } },
];

/**
 * An appending line chart of the losses.
 *
 * `update({epoch, losses, diverged})` adds one point per trace (`losses[i]` null leaves a gap) and,
 * when `diverged`, marks that epoch; `reset()` clears the history.
 */
export class LossChart {
  /** @param {HTMLElement} element The chart's container (give it a height in CSS). */
  constructor(element) {
    if (!window.Plotly) throw Error("LossChart needs /vendor/plotly.min.js loaded before it");
    this.element = element;
    this.timer = null;
    this.revision = 0;
    this.reset();
  }

  reset() {
    this.x = [];
    this.ys = TRACES.map(() => []);
    this.seen = 0;
    this.stride = 1;
    this.divergedAt = null;
    this.redraw();
  }

  update({ epoch, losses, diverged = false }) {
    if (losses.length !== TRACES.length) throw Error(`losses must have ${TRACES.length} values`);
    if (this.seen++ % this.stride === 0 || diverged) {
      this.x.push(epoch);
      losses.forEach((v, i) => this.ys[i].push(v));
      if (this.x.length > MAX_POINTS) this.thin();
    }
    if (diverged && this.divergedAt === null) this.divergedAt = epoch;
    this.scheduleRedraw();
  }

  /** Halves the history and the sampling rate: the whole run stays visible at even density. */
  thin() {
    const even = (_, i) => i % 2 === 0;
    this.x = this.x.filter(even);
    this.ys = this.ys.map((y) => y.filter(even));
    this.stride *= 2;
  }

  scheduleRedraw() {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => requestAnimationFrame(() => {
      this.timer = null;
      this.redraw();
    }), REDRAW_MS);
  }

  redraw() {
    const data = TRACES.map((t, i) => ({
      ...t, x: this.x, y: this.ys[i], type: "scatter", mode: "lines", connectgaps: false,
    }));
    const marked = this.divergedAt !== null;
    const layout = {
      datarevision: ++this.revision,
      font: FONT,
      margin: { l: 56, r: 12, t: 30, b: 44 },
      xaxis: { title: { text: "epoch" }, rangemode: "tozero", zeroline: false },
      yaxis: { title: { text: "loss" }, rangemode: "tozero" },
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1, yanchor: "bottom" },
      shapes: marked ? [{
        type: "line", x0: this.divergedAt, x1: this.divergedAt, yref: "paper", y0: 0, y1: 1,
        line: { color: DIVERGED_COLOR, width: 2, dash: "dot" },
      }] : [],
      annotations: marked ? [{
        x: this.divergedAt, yref: "paper", y: 0.5, text: "diverged", showarrow: false,
        font: { ...FONT, color: DIVERGED_COLOR }, bgcolor: "#fff", xanchor: "right",
      }] : [],
    };
    window.Plotly.react(this.element, data, layout, { displayModeBar: false, responsive: true });
  }
}
