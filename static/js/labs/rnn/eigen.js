// The recurrent matrix's eigenvalues in the complex plane, against the unit circle: inside, a state
// left alone shrinks step after step (and so do gradients going back in time); outside, it grows.
import { svgElement } from "../../views/svg.js";

const SIZE = 200;
const PAD = 14;

export class EigenPlot {
  constructor(element) {
    this.svg = svgElement("svg", { viewBox: `0 0 ${SIZE} ${SIZE}`, class: "eigen-svg", role: "img",
      "aria-label": "Eigenvalues of the recurrent matrix and the unit circle" });
    element.append(this.svg);
    this.update(null);
  }

  /** @param {{values: Float32Array, shape: number[]} | null} eigenvalues (U, 2): re, im. */
  update(eigenvalues) {
    const points = [];
    if (eigenvalues) {
      const { values } = eigenvalues;
      for (let i = 0; i < values.length; i += 2) points.push([values[i], values[i + 1]]);
    }
    const far = Math.max(1.25, ...points.map(([re, im]) => Math.hypot(re, im) * 1.08));
    const k = (SIZE / 2 - PAD) / far;
    const at = ([re, im]) => [SIZE / 2 + re * k, SIZE / 2 - im * k];
    const c = SIZE / 2;
    const parts = [
      svgElement("line", { x1: PAD / 2, y1: c, x2: SIZE - PAD / 2, y2: c, class: "axis" }),
      svgElement("line", { x1: c, y1: PAD / 2, x2: c, y2: SIZE - PAD / 2, class: "axis" }),
      svgElement("circle", { cx: c, cy: c, r: k, class: "unit-circle" }),
      svgElement("text", { x: c + k * 0.72 + 4, y: c - k * 0.72 - 4, class: "circle-label" }, "|λ| = 1"),
    ];
    for (const p of points) {
      const [x, y] = at(p);
      const outside = Math.hypot(...p) > 1 + 1e-3;
      parts.push(svgElement("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 3.2,
        class: outside ? "eigenvalue outside" : "eigenvalue" }));
    }
    this.svg.replaceChildren(...parts);
    this.svg.dataset.count = String(points.length);
  }
}
