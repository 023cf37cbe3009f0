// The one chart of the labs: lines (or bars) of y against x, drawn with Plotly (the classic script
// /vendor/plotly.min.js sets window.Plotly). Two ways to feed it plain arrays:
// - `update({series, marks, crosses})` draws whole series (a run's losses, a sweep, bars);
// - `append(x, ys)` adds one point per series of a growing history (a live loss curve), redrawn at a
//   bounded rate and thinned as it grows, so a long run costs the same as a short one.
// Marks are vertical lines (the current step, a critical rate, where a run diverged); crosses are
// red ✕ where a run diverged, with a label. Its background, text and grid follow the page's theme
// (CSS variables --bg, --ink, --muted, --grid), redrawn when it changes.
import { THEME_CHANGE, themeColors } from "../lab/page.js";

/** Points kept per series of a history; past this every other point is dropped, later ones sampled. */
const MAX_POINTS = 500;
/** A history redraws at most once per this many milliseconds, however fast points arrive. */
const REDRAW_MS = 150;
/** The light theme's ink: a series or mark of this colour is drawn in the theme's --ink. */
const INK = "#1b1f24";
const MUTED = "#57606a";
const DIVERGED = "#b42318";
const CONFIG = { displayModeBar: false, responsive: true };

/**
 * A colour as drawn in the theme: the ink (and "var(--ink)") follows it, as does any "var(--name)";
 * other colours are the data's own and stay.
 */
function themed(color, theme) {
  if (color === INK) return theme.ink;
  const variable = /^var\((--[\w-]+)\)$/.exec(color ?? "");
  if (!variable) return color;
  return getComputedStyle(document.documentElement).getPropertyValue(variable[1]).trim() || color;
}

/** `#rrggbb` as rgba with `alpha`, for a label's backdrop; other colours as they are. */
function translucent(color, alpha) {
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  return hex ? `rgba(${hex.slice(1).map((h) => parseInt(h, 16)).join(",")},${alpha})` : color;
}

/**
 * A Plotly axis from its spec: {title, log, category, fromZero, range, hidden}, in the theme's colours.
 * @param {object} spec
 */
function axis({ title, log = false, category = false, fromZero = false, range, hidden = false }, theme) {
  return {
    title: { text: title },
    gridcolor: theme.grid,
    linecolor: theme.grid,
    tickcolor: theme.muted,
    type: log ? "log" : category ? "category" : "-",
    ...(log ? { exponentformat: "power" } : {}),
    ...(fromZero ? { rangemode: "tozero" } : {}),
    ...(range ? { range } : {}),
    zeroline: false,
    automargin: true,
    visible: !hidden,
  };
}

/** A Plotly trace of one series: {name, x, y, color, dash, width, markers, bars, colors, labels, hover}. */
function trace(s, theme) {
  if (s.x.length !== s.y.length) throw Error(`series ${s.name ?? ""}: one y per x`);
  const color = themed(s.color ?? INK, theme);
  if (s.bars) {
    return {
      type: "bar", name: s.name, x: s.x, y: s.y,
      marker: { color: s.colors?.map((c) => themed(c, theme)) ?? color },
      text: s.labels, textposition: "outside", textfont: { size: 14 }, cliponaxis: false,
      hovertemplate: s.hover,
    };
  }
  return {
    type: "scatter", mode: s.markers ? "lines+markers" : "lines", name: s.name, x: s.x, y: s.y,
    line: { color, width: s.width ?? 2.5, dash: s.dash ?? "solid" },
    marker: { color, size: s.markers === true ? 7 : s.markers },
    connectgaps: false,
    hovertemplate: s.hover,
    ...(s.name ? {} : { showlegend: false }),
  };
}

export class LineChart {
  /**
   * @param {HTMLElement} element The chart's container (a height in CSS, or `height` here).
   * @param {{x: object, y: object, series?: object[], height?: number, fontSize?: number,
   *          legend?: "top"|"bottom"|false, margin?: object, hint?: string}} options
   *   x, y: axis specs ({title, log, category, fromZero, range}); series: a history's series
   *   ({name, color, dash}), for `append`; hint: what fills an empty chart, shown instead of axes.
   */
  constructor(element, { x, y, series = [], height, fontSize = 16, legend = false, margin, hint }) {
    if (!window.Plotly) throw Error("LineChart needs /vendor/plotly.min.js loaded before it");
    this.element = element;
    this.options = { x, y, series, height, legend, hint };
    this.font = { family: "DejaVu Sans, system-ui, sans-serif", size: fontSize, color: INK };
    this.margin = { l: 60, r: 16, t: legend === "top" ? 30 : 10, b: 44, ...margin };
    this.timer = null;
    this.revision = 0;
    this.shown = null; // what `update` drew last, redrawn in the colours of a new theme
    // Plotly's `responsive` follows the window only; panels also change width when the layout does.
    new ResizeObserver(() => {
      if (element.data && element.offsetParent !== null) window.Plotly.Plots.resize(element);
    }).observe(element);
    window.addEventListener(THEME_CHANGE, () => this.update(this.shown));
    this.reset();
  }

  /** Empties the chart (a history starts over). */
  reset() {
    clearTimeout(this.timer);
    this.timer = null;
    this.history = { x: [], ys: this.options.series.map(() => []), seen: 0, stride: 1, marks: [] };
    this.update({ series: this.historySeries() });
  }

  /**
   * Draws whole series.
   * @param {{series: object[], marks?: object[], crosses?: object[], x?: object, y?: object}} data
   *   series: [{name, x, y, color, dash, width, markers, bars, colors, labels, hover}];
   *   marks: vertical lines [{x, color, dash, width, label, labelAt: "middle"|"top"}];
   *   crosses: ✕ marks [{x, y, label, side: "left"|"right", hover}]; x, y: axis specs changed
   *   from the constructor's (a log scale turned on).
   */
  update(data) {
    this.shown = data;
    const { series, marks = [], crosses = [], x = {}, y = {} } = data;
    const theme = themeColors();
    const xAxis = { ...this.options.x, ...x };
    const yAxis = { ...this.options.y, ...y };
    const empty = series.every((s) => s.y.length === 0);
    const hint = empty && this.options.hint;
    const traces = [...series.map((s) => trace(s, theme)), ...crosses.map(crossTrace)];
    const layout = {
      datarevision: ++this.revision,
      font: { ...this.font, color: theme.ink },
      paper_bgcolor: theme.bg,
      plot_bgcolor: theme.bg,
      margin: this.margin,
      ...(this.options.height ? { height: this.options.height } : {}),
      showlegend: Boolean(this.options.legend),
      legend: this.options.legend === "top"
        ? { orientation: "h", x: 1, xanchor: "right", y: 1, yanchor: "bottom" }
        : { orientation: "h", y: -0.32 },
      xaxis: axis({ ...xAxis, hidden: Boolean(hint) }, theme),
      yaxis: axis({ ...yAxis, hidden: Boolean(hint) }, theme),
      shapes: marks.map((m) => markShape(m, theme)),
      annotations: [
        ...marks.filter((m) => m.label).map((m) => markLabel(m, xAxis.log, theme)),
        ...crosses.filter((c) => c.label).map((c) => crossLabel(c, xAxis.log, yAxis.log, theme)),
        ...(hint ? [hintLabel(hint, theme)] : []),
      ],
    };
    window.Plotly.react(this.element, traces, layout, CONFIG);
  }

  /** Adds one point to each history series (`ys[i]` null leaves a gap). */
  append(x, ys) {
    if (ys.length !== this.options.series.length) throw Error(`ys must have ${this.options.series.length} values`);
    const h = this.history;
    if (h.seen++ % h.stride === 0) {
      h.x.push(x);
      ys.forEach((v, i) => h.ys[i].push(v));
      if (h.x.length > MAX_POINTS) this.thin();
    }
    this.scheduleRedraw();
  }

  /** Marks a history at `x` (where a run diverged), once; Plotly's autorange includes it. */
  mark(x, label) {
    if (this.history.marks.length) return;
    this.history.marks.push({ x, label, color: DIVERGED, dash: "dot", width: 2 });
    this.scheduleRedraw();
  }

  /** Halves the history and the sampling rate: the whole run stays visible at even density. */
  thin() {
    const h = this.history;
    const even = (_, i) => i % 2 === 0;
    h.x = h.x.filter(even);
    h.ys = h.ys.map((y) => y.filter(even));
    h.stride *= 2;
  }

  historySeries() {
    return this.options.series.map((s, i) => ({ ...s, x: this.history.x, y: this.history.ys[i] }));
  }

  scheduleRedraw() {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => requestAnimationFrame(() => {
      this.timer = null;
      this.update({ series: this.historySeries(), marks: this.history.marks });
    }), REDRAW_MS);
  }
}

function markShape({ x, color = MUTED, dash = "dot", width = 2 }, theme) {
  const line = { color: color === MUTED ? theme.muted : themed(color, theme), dash, width };
  return { type: "line", x0: x, x1: x, yref: "paper", y0: 0, y1: 1, line };
}

/** Where an annotation sits on an axis: Plotly places them by log10 of the value on a log axis. */
const onAxis = (v, log) => (log ? Math.log10(v) : v);

function markLabel({ x, label, color = INK, labelAt = "middle" }, logX, theme) {
  const top = labelAt === "top";
  return {
    x: onAxis(x, logX), yref: "paper", y: top ? 1 : 0.5, yanchor: top ? "bottom" : "middle", xanchor: top ? "center" : "right",
    text: label, showarrow: false, font: { color: themed(color, theme) }, bgcolor: top ? "rgba(0,0,0,0)" : theme.bg,
  };
}

function crossTrace({ x, y, hover, size = 20 }) {
  return {
    type: "scatter", mode: "markers", x: [x], y: [y], showlegend: false,
    marker: { symbol: "x-thin", size, color: DIVERGED, line: { width: 4, color: DIVERGED } },
    hovertemplate: hover ? `${hover}<extra></extra>` : undefined,
    hoverinfo: hover ? undefined : "skip",
  };
}

/** A ✕'s label beside it, on the side with room. */
function crossLabel({ x, y, label, side = "right" }, logX, logY, theme) {
  return {
    x: onAxis(x, logX), y: onAxis(y, logY), text: label, showarrow: false,
    xanchor: side === "left" ? "right" : "left", xshift: side === "left" ? -12 : 12,
    font: { color: DIVERGED, size: 15 }, bgcolor: translucent(theme.bg, 0.85),
  };
}

function hintLabel(text, theme) {
  return {
    text, showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5,
    font: { size: 18, color: theme.muted },
  };
}

// Two curves told apart by dash as well as colour (readable without colour vision).
const CURVE_STYLES = [
  { color: "#1b1f24", dash: "solid" },
  { color: "#cc79a7", dash: "dash" },
];

/**
 * A loss curve over training, from zero, legend on top: `names` are its curves in
 * `CURVE_STYLES` (or `series` given whole); other options as `LineChart`'s.
 */
export function lossChart(element, { x, y = "loss", names = [], series, ...options }) {
  return new LineChart(element, {
    x: { title: x, fromZero: true },
    y: { title: y, fromZero: true },
    series: series ?? names.map((name, i) => ({ name, ...CURVE_STYLES[i] })),
    legend: "top",
    fontSize: 14,
    margin: { l: 56, r: 12, t: 30, b: 42 },
    ...options,
  });
}
