// The loss after every gradient-descent step, a small Plotly line chart. Fed plain arrays:
//   update({ losses: [loss0, loss1, …] })
// Plotly is the global from /vendor/plotly.min.js.

const LAYOUT = {
  margin: { l: 70, r: 16, t: 8, b: 52 },
  height: 260,
  font: { size: 16, family: "DejaVu Sans, system-ui, sans-serif" },
  xaxis: { title: { text: "step" }, rangemode: "tozero", zeroline: false },
  yaxis: { title: { text: "loss" }, rangemode: "tozero" },
  showlegend: false,
};
const CONFIG = { displayModeBar: false, responsive: true };

export class LossChart {
  constructor(element) {
    if (!window.Plotly) throw Error("LossChart needs Plotly, loaded from /vendor/plotly.min.js");
    this.element = element;
    // Plotly's `responsive` follows the window only; panels also change width when the layout does.
    new ResizeObserver(() => this.element.data && window.Plotly.Plots.resize(this.element)).observe(element);
    this.reset();
  }

  reset() {
    this.update({ losses: [] });
  }

  update({ losses }) {
    const trace = {
      x: losses.map((_, i) => i),
      y: losses,
      mode: losses.length > 40 ? "lines" : "lines+markers",
      line: { color: "#0072b2", width: 3 },
      marker: { size: 7 },
      hovertemplate: "step %{x}: loss %{y:.6g}<extra></extra>",
    };
    // Empty, the chart says what fills it rather than showing meaningless axes.
    const hint = {
      text: "Press “One step” or “Keep stepping”",
      showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { size: 18, color: "#57606a" },
    };
    const layout = { ...LAYOUT, annotations: losses.length ? [] : [hint] };
    layout.xaxis = { ...LAYOUT.xaxis, visible: losses.length > 0 };
    layout.yaxis = { ...LAYOUT.yaxis, visible: losses.length > 0 };
    window.Plotly.react(this.element, [trace], layout, CONFIG);
  }
}
