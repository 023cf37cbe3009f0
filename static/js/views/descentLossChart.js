// Loss against step, one line per learning rate, optionally on a log axis; a diverged run ends in a
// red ✕ labelled with its step. Fed plain arrays: update({ runs, colors, step, log }).
// Plotly is the global from /vendor/plotly.min.js.

const FONT = { size: 16, family: "DejaVu Sans, system-ui, sans-serif" };
const CONFIG = { displayModeBar: false, responsive: true };
const DIVERGED = "#b42318";

export class DescentLossChart {
  constructor(element) {
    if (!window.Plotly) throw Error("DescentLossChart needs Plotly, loaded from /vendor/plotly.min.js");
    this.element = element;
    new ResizeObserver(() => element.data && window.Plotly.Plots.resize(element)).observe(element);
  }

  reset() {
    window.Plotly.purge(this.element);
  }

  update({ runs, colors, step, log }) {
    if (runs.length > colors.length) throw Error("one colour per run");
    const finite = runs.flatMap((r) => r.loss.filter((v) => v !== null && (!log || v > 0)));
    const low = Math.min(...finite);
    const high = Math.max(...runs.flatMap((r) => r.loss.slice(0, 1)));
    // Linear axis: start loss sets the top so a blown-up run cannot flatten the others to zero.
    const yRange = log ? undefined : [Math.min(0, low), high * 1.6];
    const traces = runs.map((run, i) => ({
      type: "scatter",
      mode: "lines",
      name: `η = ${run.lr.toPrecision(3)}`,
      x: run.loss.map((_, k) => k),
      y: run.loss.map((v) => (v !== null && log && v <= 0 ? null : v)),
      line: { color: colors[i], width: 3 },
      hovertemplate: `η = ${run.lr.toPrecision(3)}<br>step %{x}: loss %{y:.4g}<extra></extra>`,
    }));
    const annotations = [];
    runs.forEach((run) => {
      if (run.diverged_at === null) return;
      const k = run.diverged_at;
      const last = run.loss[k] ?? run.loss[k - 1];
      const y = log ? last : Math.min(last, high * 1.5);
      traces.push({
        type: "scatter",
        mode: "markers",
        x: [k],
        y: [y],
        marker: { symbol: "x-thin", size: 20, color: DIVERGED, line: { width: 4, color: DIVERGED } },
        hovertemplate: `diverged at step ${k}<extra></extra>`,
        showlegend: false,
      });
      annotations.push({
        x: k,
        y: log ? Math.log10(y) : y,
        text: `diverged at step ${k}`,
        showarrow: false,
        xanchor: k > run.loss.length / 2 ? "right" : "left",
        xshift: k > run.loss.length / 2 ? -12 : 12,
        font: { color: DIVERGED, size: 15 },
        bgcolor: "rgba(255,255,255,.85)",
      });
    });
    const layout = {
      margin: { l: 72, r: 16, t: 8, b: 20 },
      height: 360,
      font: FONT,
      legend: { orientation: "h", y: -0.32 },
      xaxis: { title: { text: "step" }, zeroline: false, range: [0, runs[0].loss.length - 1] },
      yaxis: log
        ? { title: { text: "loss (log)" }, type: "log", exponentformat: "power" }
        : { title: { text: "loss" }, range: yRange },
      shapes: [
        {
          type: "line",
          x0: step,
          x1: step,
          yref: "paper",
          y0: 0,
          y1: 1,
          line: { color: "#57606a", dash: "dot", width: 2 },
        },
      ],
      annotations,
    };
    window.Plotly.react(this.element, traces, layout, CONFIG);
  }
}
