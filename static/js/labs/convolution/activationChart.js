// Every activation function (solid) with its derivative (dashed, same colour) on one Plotly chart;
// the selected one is drawn thick, the others faded. Plotly is the global `Plotly`.
import { plotlyTheme, themeColors } from "../../lab/page.js";

/** Okabe-Ito palette, one colour per activation, distinguishable with colour-blindness. */
const PALETTE = ["ink", "#e69f00", "#56b4e9", "#009e73", "#0072b2", "#d55e00", "#cc79a7", "#999999"];
const FONT = { family: "DejaVu Sans, sans-serif", size: 16 };

export class ActivationChart {
  /** @param {HTMLElement} element where the chart goes. */
  constructor(element) {
    this.element = element;
  }

  /**
   * @param {{x: number[], curves: {name: string, y: number[], dy: number[]}[], selected: string}} data
   *   y: the activation at x; dy: its derivative.
   */
  update({ x, curves, selected }) {
    const { ink } = themeColors();
    const traces = curves.flatMap((c, i) => {
      const on = c.name === selected;
      const color = PALETTE[i % PALETTE.length];
      const line = { color: color === "ink" ? ink : color, width: on ? 5 : 2.5 };
      const opacity = on ? 1 : 0.6;
      return [
        { x, y: c.y, name: c.name, legendgroup: c.name, line, opacity },
        {
          x, y: c.dy, name: `${c.name}′`, legendgroup: c.name, showlegend: false, opacity,
          line: { ...line, dash: "dash" },
        },
      ].map((t) => ({ type: "scatter", mode: "lines", ...t }));
    });
    const layout = {
      ...plotlyTheme(FONT),
      height: 420,
      margin: { l: 60, r: 10, t: 10, b: 50 },
      xaxis: { title: { text: "x" }, zeroline: true },
      yaxis: { title: { text: "f(x) solid · f′(x) dashed" }, range: [-1.6, 3], zeroline: true },
      legend: { orientation: "v", x: 1.02, y: 1 },
    };
    window.Plotly.react(this.element, traces, layout, { displayModeBar: false, responsive: true });
  }

  reset() {
    window.Plotly.purge(this.element);
  }
}
