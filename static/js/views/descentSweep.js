// Final loss after N steps against the learning rate (both axes log): the good band, and the cliff
// where descent overshoots. Diverged rates are red ✕ along the top; a dashed line marks 2/λmax and
// thin coloured lines the rates being compared.
// Fed plain arrays: update({ rates, finalLoss, critical, criticalExact, marks, colors }).

const FONT = { size: 16, family: "DejaVu Sans, system-ui, sans-serif" };
const CONFIG = { displayModeBar: false, responsive: true };
const DIVERGED = "#b42318";

export class DescentSweep {
  constructor(element) {
    if (!window.Plotly) throw Error("DescentSweep needs Plotly, loaded from /vendor/plotly.min.js");
    this.element = element;
    new ResizeObserver(() => element.data && window.Plotly.Plots.resize(element)).observe(element);
  }

  reset() {
    window.Plotly.purge(this.element);
  }

  update({ rates, finalLoss, critical, criticalExact, marks, colors }) {
    if (rates.length !== finalLoss.length) throw Error("one final loss per rate");
    const shown = finalLoss.filter((v) => v !== null && v > 0);
    const top = shown.length ? Math.max(...shown) * 10 : 1;
    const floor = shown.length ? Math.min(...shown) : 1e-12;
    const diverged = rates.filter((_, i) => finalLoss[i] === null);
    const traces = [
      {
        type: "scatter",
        mode: "lines+markers",
        x: rates,
        // An exact 0 cannot sit on a log axis: drawn at the lowest positive value.
        y: finalLoss.map((v) => (v === null ? null : Math.max(v, floor))),
        line: { color: "#0b2942", width: 3 },
        marker: { size: 8, color: "#0b2942" },
        hovertemplate: "η = %{x:.3g}: loss %{y:.3g}<extra></extra>",
      },
      {
        type: "scatter",
        mode: "markers",
        x: diverged,
        y: diverged.map(() => top),
        marker: { symbol: "x-thin", size: 16, color: DIVERGED, line: { width: 3, color: DIVERGED } },
        hovertemplate: "η = %{x:.3g}: diverged<extra></extra>",
      },
    ];
    const line = (x, color, dash, width) => ({
      type: "line",
      x0: x,
      x1: x,
      yref: "paper",
      y0: 0,
      y1: 1,
      line: { color, dash, width },
    });
    const layout = {
      margin: { l: 72, r: 16, t: 28, b: 52 },
      height: 320,
      font: FONT,
      showlegend: false,
      xaxis: { title: { text: "learning rate η (log)" }, type: "log", exponentformat: "power" },
      yaxis: { title: { text: "final loss (log)" }, type: "log", exponentformat: "power" },
      shapes: [
        line(critical, "#000", "dash", 2),
        ...marks.map((lr, i) => line(lr, colors[i], "solid", 2)),
      ],
      annotations: [
        {
          x: Math.log10(critical),
          y: 1,
          yref: "paper",
          yanchor: "bottom",
          text: `${criticalExact ? "" : "≈ "}2/λmax = ${critical.toPrecision(3)}`,
          showarrow: false,
        },
        ...(diverged.length
          ? [
              {
                x: Math.log10(diverged[0]),
                y: Math.log10(top),
                text: "diverged",
                showarrow: false,
                xanchor: "right",
                xshift: -10,
                font: { color: DIVERGED },
              },
            ]
          : []),
      ],
    };
    window.Plotly.react(this.element, traces, layout, CONFIG);
  }
}
