// The 1-D convolution animation: the flipped kernel g(t - τ) slides over f(τ); the shaded
// product's area is the output at t, drawn as the kernel moves. Plotly is the global `Plotly`.
import { plotlyTheme, themeColors } from "../../lab/page.js";

// The output is drawn in the theme's ink.
const COLORS = { f: "#0072b2", g: "#e69f00", product: "#009e73" };
const FRAME_MS = 70;
const FONT = { family: "DejaVu Sans, sans-serif", size: 16 };

export class Signal1D {
  /**
   * @param {HTMLElement} element where the chart goes.
   * @param {{onFrame?: function(number): void}} options onFrame: told each frame index drawn.
   */
  constructor(element, { onFrame } = {}) {
    this.element = element;
    this.onFrame = onFrame;
    this.data = null;
    this.timer = null;
    this.index = 0;
  }

  /**
   * @param {{t: number[], f: number[], g: number[], output: number[], shifts: number[],
   *          kernel_at: number[][], products: number[][], names: string[]}} data
   *   kernel_at[i] and products[i] belong to frame i, whose position is t[shifts[i]].
   */
  update(data) {
    this.pause();
    this.data = data;
    this.frame(0);
  }

  /** Draws frame i (0 ≤ i < number of frames). */
  frame(i) {
    const d = this.data;
    if (!d) return;
    this.index = i;
    const s = d.shifts[i];
    const [fName, gName] = d.names;
    const ink = themeColors().ink;
    const shown = d.output.map((v, j) => (j <= s ? v : null));
    const traces = [
      { y: d.f, name: `f = ${fName}(τ)`, line: { color: COLORS.f, width: 3 } },
      { y: d.kernel_at[i], name: `g(t − τ), ${gName} flipped`, line: { color: COLORS.g, width: 3 } },
      {
        y: d.products[i], name: "f(τ)·g(t − τ)", fill: "tozeroy",
        line: { color: COLORS.product, width: 1 }, fillcolor: "rgba(0, 158, 115, 0.35)",
      },
      {
        y: shown, name: "(f ∗ g)(t)", xaxis: "x2", yaxis: "y2",
        line: { color: ink, width: 3 },
      },
      {
        x: [d.t[s]], y: [d.output[s]], xaxis: "x2", yaxis: "y2", mode: "markers",
        marker: { color: COLORS.product, size: 12, line: { color: ink, width: 2 } },
        showlegend: false, hoverinfo: "skip",
      },
    ].map((tr) => ({ x: d.t, type: "scatter", mode: "lines", ...tr }));
    const top = Math.max(...d.f, ...d.g) * 1.15;
    // The legend sits above the plots, in a top margin as tall as its rows: four on a phone.
    const width = this.element.clientWidth;
    const rows = width < 560 ? 4 : width < 900 ? 2 : 1;
    const layout = {
      ...plotlyTheme(FONT),
      margin: { l: 50, r: 10, t: 8 + 24 * rows, b: 40 },
      height: 436 + 24 * rows,
      grid: { rows: 2, columns: 1, pattern: "independent" },
      xaxis: { range: [d.t[0], d.t.at(-1)], title: { text: "τ", standoff: 2 }, zeroline: false },
      yaxis: { range: [-0.05, top], fixedrange: true },
      xaxis2: { range: [d.t[0], d.t.at(-1)], title: { text: "t", standoff: 2 }, zeroline: false },
      yaxis2: {
        range: [0, Math.max(...d.output) * 1.15 || 1], title: { text: "(f ∗ g)(t)" }, fixedrange: true,
      },
      legend: { orientation: "h", x: 0, y: 1, yanchor: "bottom" },
      shapes: [{
        type: "line", xref: "x", yref: "paper", x0: d.t[s], x1: d.t[s], y0: 0, y1: 1,
        line: { color: ink, width: 1, dash: "dot" },
      }],
    };
    window.Plotly.react(this.element, traces, layout, { displayModeBar: false, responsive: true });
    this.onFrame?.(i);
  }

  play() {
    if (!this.data || this.timer) return;
    if (this.index >= this.data.shifts.length - 1) this.index = 0;
    this.timer = setInterval(() => {
      if (this.index >= this.data.shifts.length - 1) return this.pause();
      this.frame(this.index + 1);
    }, FRAME_MS);
  }

  pause() {
    clearInterval(this.timer);
    this.timer = null;
  }

  get playing() {
    return this.timer !== null;
  }

  reset() {
    this.pause();
    this.data = null;
    window.Plotly.purge(this.element);
  }
}
