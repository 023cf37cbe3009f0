// The loss surface seen from above (contour) or in 3-D, with each run's path, the current step's
// points, the update arrow −η·∇loss of the selected run and a ✕ where a run diverged.
// Fed plain arrays: update({ surface, runs, colors, step, selected, show3d }); onPick(w0, w1) is
// called with the weights under a click on the 2-D map. Plotly is the global from /vendor/plotly.min.js.

import { plotlyTheme, themeColors, THEME_CHANGE } from "../../lab/page.js";

const FONT = { size: 16, family: "DejaVu Sans, system-ui, sans-serif" };
const CONFIG = { displayModeBar: false, responsive: true };
// Blues, light at the minimum: the paths' Okabe-Ito colours stay readable on top.
const SCALE = [
  [0, "#f7fbff"],
  [0.5, "#9ecae1"],
  [1, "#2b5f8a"],
];

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

let webgl = null;
/** Whether this browser offers WebGL, which Plotly's 3-D surface needs (headless and some school
 *  machines do not); without it the map stays 2-D. Asked only once 3-D is wanted: creating a
 *  context can be slow where the GPU is missing, and nothing else on the page should wait for it. */
export function hasWebGL() {
  if (webgl === null) {
    try {
      webgl = Boolean(document.createElement("canvas").getContext("webgl"));
    } catch {
      webgl = false;
    }
  }
  return webgl;
}

export class DescentContour {
  constructor(element, onPick) {
    if (!window.Plotly) throw Error("DescentContour needs Plotly, loaded from /vendor/plotly.min.js");
    this.element = element;
    this.onPick = onPick;
    this.is3d = false;
    // Plotly reports clicks only on data points; the map needs any point, so read the axes ourselves.
    element.addEventListener("click", (event) => {
      const layout = element._fullLayout;
      const svg = element.querySelector(".main-svg");
      if (this.is3d || !layout || !svg) return;
      const box = svg.getBoundingClientRect();
      const { xaxis, yaxis } = layout;
      const px = event.clientX - box.left - xaxis._offset;
      const py = event.clientY - box.top - yaxis._offset;
      if (px < 0 || px > xaxis._length || py < 0 || py > yaxis._length) return;
      this.onPick(xaxis.p2c(px), yaxis.p2c(py));
    });
    new ResizeObserver(() => element.data && window.Plotly.Plots.resize(element)).observe(element);
    window.addEventListener(THEME_CHANGE, () => this.shown && this.update(this.shown));
  }

  reset() {
    window.Plotly.purge(this.element);
  }

  update(shown) {
    this.shown = shown;
    const { surface, runs, colors, step, selected, show3d } = shown;
    if (runs.length > colors.length) throw Error("one colour per run");
    this.is3d = show3d && hasWebGL();
    const [[x0, x1], [y0, y1]] = surface.window;
    // √(loss − min) spaces a bowl's contours evenly, so both flat and steep regions show.
    const z = surface.loss.map((row) => row.map((v) => Math.sqrt(Math.max(v - surface.min_loss, 0))));
    if (this.is3d) {
      this.draw3d(surface, runs, colors);
      return;
    }
    const traces = [
      {
        type: "contour",
        x: surface.w0,
        y: surface.w1,
        z,
        colorscale: SCALE,
        showscale: false,
        ncontours: 18,
        contours: { coloring: "fill", showlines: true },
        line: { color: "rgba(11, 41, 66, .35)", width: 1 },
        hoverinfo: "skip",
      },
      {
        type: "scatter",
        mode: "markers",
        x: [surface.minimum[0]],
        y: [surface.minimum[1]],
        marker: { symbol: "star", size: 18, color: "#000", line: { color: "#fff", width: 1 } },
        hovertemplate: "minimum<extra></extra>",
      },
    ];
    const annotations = [];
    runs.forEach((run, i) => {
      const points = run.path.filter(Boolean);
      traces.push({
        type: "scatter",
        mode: "lines+markers",
        x: points.map((p) => p[0]),
        y: points.map((p) => p[1]),
        line: { color: colors[i], width: i === selected ? 4 : 2.5 },
        marker: { color: colors[i], size: 6 },
        hovertemplate: `η = ${run.lr.toPrecision(3)}<br>step %{pointNumber}<extra></extra>`,
      });
      const k = Math.min(step, points.length - 1);
      const here = points[k];
      traces.push({
        type: "scatter",
        mode: "markers",
        x: [clamp(here[0], x0, x1)],
        y: [clamp(here[1], y0, y1)],
        marker: { color: colors[i], size: 16, line: { color: "#fff", width: 2 } },
        hoverinfo: "skip",
      });
      if (run.diverged_at !== null) {
        const last = points[Math.max(points.length - 2, 0)];
        const at = [clamp(last[0], x0, x1), clamp(last[1], y0, y1)];
        traces.push({
          type: "scatter",
          mode: "markers",
          x: [at[0]],
          y: [at[1]],
          marker: { symbol: "x-thin", size: 22, color: "#b42318", line: { width: 4, color: "#b42318" } },
          hoverinfo: "skip",
        });
        annotations.push({
          x: at[0],
          y: at[1],
          text: `diverged at step ${run.diverged_at}`,
          showarrow: false,
          yshift: at[1] > (y0 + y1) / 2 ? -22 : 22,
          // Keep the label inside the plot whichever edge the run left by.
          xanchor: at[0] < (x0 + x1) / 2 ? "left" : "right",
          font: { color: "#b42318", size: 15 },
          bgcolor: "rgba(255,255,255,.85)",
        });
      }
      const next = run.path[k + 1];
      if (i === selected && next && k === step) {
        // The step actually taken, −η·∇loss for plain SGD: from w_k to w_(k+1).
        annotations.push({
          x: next[0],
          y: next[1],
          ax: here[0],
          ay: here[1],
          axref: "x",
          ayref: "y",
          showarrow: true,
          arrowhead: 3,
          arrowsize: 1.4,
          arrowwidth: 3,
          arrowcolor: "#000",
          text: "",
        });
      }
    });
    const start = runs[0].path[0];
    traces.push({
      type: "scatter",
      mode: "markers",
      x: [start[0]],
      y: [start[1]],
      marker: { symbol: "circle-open", size: 20, color: "#000", line: { width: 3 } },
      hovertemplate: "start<extra></extra>",
    });
    const { grid } = themeColors();
    const layout = {
      margin: { l: 64, r: 12, t: 8, b: 56 },
      height: 520,
      ...plotlyTheme(FONT),
      showlegend: false,
      dragmode: false,
      xaxis: { title: { text: surface.axes[0] }, range: [x0, x1], zeroline: false, gridcolor: grid },
      yaxis: { title: { text: surface.axes[1] }, range: [y0, y1], zeroline: false, scaleanchor: "x", gridcolor: grid },
      annotations,
    };
    window.Plotly.react(this.element, traces, layout, CONFIG);
  }

  draw3d(surface, runs, colors) {
    const top = Math.max(...surface.loss.flat());
    const traces = [
      {
        type: "surface",
        x: surface.w0,
        y: surface.w1,
        z: surface.loss,
        colorscale: SCALE,
        showscale: false,
        opacity: 0.9,
        hoverinfo: "skip",
      },
    ];
    runs.forEach((run, i) => {
      const points = run.path.map((p, k) => (p ? [p, run.loss[k]] : null)).filter(Boolean);
      traces.push({
        type: "scatter3d",
        mode: "lines+markers",
        x: points.map(([p]) => p[0]),
        y: points.map(([p]) => p[1]),
        z: points.map(([, loss]) => Math.min(loss, top)),
        line: { color: colors[i], width: 6 },
        marker: { color: colors[i], size: 3 },
        hovertemplate: `η = ${run.lr.toPrecision(3)}<extra></extra>`,
      });
    });
    const [[x0, x1], [y0, y1]] = surface.window;
    const layout = {
      margin: { l: 0, r: 0, t: 0, b: 0 },
      height: 520,
      ...plotlyTheme(FONT),
      showlegend: false,
      scene: {
        xaxis: { title: { text: surface.axes[0] }, range: [x0, x1] },
        yaxis: { title: { text: surface.axes[1] }, range: [y0, y1] },
        zaxis: { title: { text: "loss" }, range: [surface.min_loss, top] },
        camera: { eye: { x: 1.4, y: -1.5, z: 1.0 } },
      },
    };
    window.Plotly.react(this.element, traces, layout, CONFIG);
  }
}
