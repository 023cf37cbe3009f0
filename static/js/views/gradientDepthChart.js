// |∂loss/∂wi| per layer on a log axis: how the gradient shrinks (or not) on its way back to the
// first layer. Fed plain arrays: update({ labels: ["w1", …], magnitudes: [|g1|, …] }).
// Plotly is the global from /vendor/plotly.min.js.

const LAYOUT = {
  margin: { l: 80, r: 16, t: 8, b: 52 },
  height: 280,
  font: { size: 16, family: "DejaVu Sans, system-ui, sans-serif" },
  xaxis: { title: { text: "weight (layer)" }, type: "category" },
  yaxis: { title: { text: "|∂loss/∂wi|" }, type: "log", exponentformat: "power" },
  showlegend: false,
};
const CONFIG = { displayModeBar: false, responsive: true };

export class GradientDepthChart {
  constructor(element) {
    if (!window.Plotly) throw Error("GradientDepthChart needs Plotly, loaded from /vendor/plotly.min.js");
    this.element = element;
    // Plotly's `responsive` follows the window only; panels also change width when the layout does.
    new ResizeObserver(() => this.element.data && window.Plotly.Plots.resize(this.element)).observe(element);
  }

  reset() {
    window.Plotly.purge(this.element);
  }

  update({ labels, magnitudes }) {
    if (labels.length !== magnitudes.length) throw Error("one magnitude per label");
    // A log axis cannot show 0: an exact 0 (underflow, or a dead relu) is an orange bar at the floor, labelled 0.
    const floor = Math.min(...magnitudes.filter((m) => m > 0), 1) / 10;
    const trace = {
      x: labels,
      y: magnitudes.map((m) => (m > 0 ? m : floor)),
      type: "bar",
      marker: { color: magnitudes.map((m) => (m > 0 ? "#0072b2" : "#e69f00")) },
      text: magnitudes.map((m) => (m > 0 ? m.toExponential(1) : "0")),
      textposition: "outside",
      textfont: { size: 14 },
      cliponaxis: false,
      hovertemplate: "%{x}: %{text}<extra></extra>",
    };
    window.Plotly.react(this.element, [trace], LAYOUT, CONFIG);
  }
}
