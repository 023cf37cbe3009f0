// Linear regression's loss surface over (w, b) with the neuron's path on it, a Plotly contour
// (window.Plotly from /vendor/plotly.min.js).
import { plotlyTheme, THEME_CHANGE } from "../../lab/page.js";

const FONT = { family: "DejaVu Sans, sans-serif", size: 15 };
const CONFIG = { displayModeBar: false, responsive: true };
const REDRAW_MS = 120;
/** Trail points kept: the newest ones. */
const MAX_POINTS = 600;
const SURFACE_CELLS = 60;

/** Calls `fn` at most once per REDRAW_MS, on the next animation frame. */
function throttled(fn) {
  let timer = null;
  return () => {
    if (timer !== null) return;
    timer = setTimeout(() => requestAnimationFrame(() => { timer = null; fn(); }), REDRAW_MS);
  };
}

/**
 * Mean squared error of the line y = w·x + b over `points`, on a grid around its minimum. The MSE is
 * a quadratic in (w, b), so five sums of the data give it everywhere.
 */
export function mseSurface(points, span = [4.5, 5]) {
  const n = points.length;
  const mean = (f) => points.reduce((s, p) => s + f(p), 0) / n;
  const [sx, sy, sxx, sxy, syy] = [
    mean(([x]) => x), mean(([, y]) => y), mean(([x]) => x * x), mean(([x, y]) => x * y),
    mean(([, y]) => y * y),
  ];
  const wBest = (sxy - sx * sy) / (sxx - sx * sx);
  const bBest = sy - wBest * sx;
  const ticks = (c, h) => Array.from({ length: SURFACE_CELLS }, (_, i) => c - h + (2 * h * i) / (SURFACE_CELLS - 1));
  const ws = ticks(wBest, span[0]);
  const bs = ticks(bBest, span[1]);
  const loss = (w, b) => w * w * sxx + b * b + syy + 2 * w * b * sx - 2 * w * sxy - 2 * b * sy;
  // log10: the bowl's floor and its walls both stay readable.
  const z = bs.map((b) => ws.map((w) => Math.log10(Math.max(loss(w, b), 1e-6))));
  return { ws, bs, z, best: [wBest, bBest] };
}

/** `setData(points)` recomputes the contour; `update({w, b})` moves the point and its trail. */
export class NeuronSurface {
  constructor(element) {
    if (!window.Plotly) throw Error("NeuronSurface needs /vendor/plotly.min.js loaded before it");
    this.element = element;
    this.surface = null;
    this.trail = { w: [], b: [] };
    this.revision = 0;
    this.schedule = throttled(() => this.redraw());
    window.addEventListener(THEME_CHANGE, () => this.redraw());
  }

  setData(points) {
    this.surface = mseSurface(points);
    this.trail = { w: [], b: [] };
    this.redraw();
  }

  reset() {
    this.trail = { w: [], b: [] };
    this.schedule();
  }

  update({ w, b }) {
    this.trail.w.push(w);
    this.trail.b.push(b);
    if (this.trail.w.length > MAX_POINTS) {
      this.trail.w = this.trail.w.slice(-MAX_POINTS);
      this.trail.b = this.trail.b.slice(-MAX_POINTS);
    }
    this.schedule();
  }

  redraw() {
    if (!this.surface) return;
    const { ws, bs, z, best } = this.surface;
    const last = this.trail.w.length - 1;
    window.Plotly.react(this.element, [
      {
        type: "contour", x: ws, y: bs, z, colorscale: "Viridis", reversescale: true, ncontours: 18,
        showscale: false, contours: { coloring: "heatmap" }, hoverinfo: "skip",
      },
      { x: [best[0]], y: [best[1]], mode: "markers", marker: { symbol: "x", size: 12, color: "#fff" },
        name: "least squares", hoverinfo: "skip" },
      { x: this.trail.w, y: this.trail.b, mode: "lines", line: { color: "#fff", width: 2 }, hoverinfo: "skip" },
      { x: last >= 0 ? [this.trail.w[last]] : [], y: last >= 0 ? [this.trail.b[last]] : [],
        mode: "markers", marker: { size: 14, color: "#d55e00", line: { color: "#fff", width: 2 } },
        hoverinfo: "skip" },
    ], {
      datarevision: ++this.revision, ...plotlyTheme(FONT), margin: { l: 56, r: 12, t: 10, b: 48 }, showlegend: false,
      xaxis: { title: { text: "weight w" }, range: [ws[0], ws[ws.length - 1]] },
      yaxis: { title: { text: "bias b" }, range: [bs[0], bs[bs.length - 1]] },
    }, CONFIG);
  }
}
