// The neuron drawn as the course draws it: inputs → weighted sum Σ with bias → activation →
// output, with the live weights on the links (blue positive, orange negative, wider = larger).

import { svgElement as el } from "../../views/svg.js";

const WIDTH = 560;
const ROW = 78;
/** Where along a link, from its Σ, a softmax neuron's weight label sits. */
const STACKED_AT = 0.25;
const ACTIVATION = { linear: "identity", logistic: "sigmoid σ", softmax: "softmax" };
/** Above this |value| a weight is written in powers of ten, so it stays as short as "+1.3e14". */
const LONG = 1e4;

/** A weight or bias, signed: "+0.52", "−3.10", "+1.3e14"; "–" when there is none. */
function fmt(v) {
  if (v === null || v === undefined) return "–";
  const a = Math.abs(v);
  const digits = a < LONG ? a.toFixed(2) : a.toExponential(1).replace("e+", "e");
  return (v >= 0 ? "+" : "−") + digits;
}

/**
 * `update({model, inputs, w, b})`: `inputs` are the input names, `w[i][j]` the weight from input i
 * to neuron j, `b[j]` its bias (null weights draw the shape only).
 */
export class NeuronDiagram {
  /** @param {HTMLElement} element Container; the SVG is put in it. */
  constructor(element) {
    this.element = element;
    this.svg = el("svg", { class: "neuron-svg", role: "img" });
    element.append(this.svg);
  }

  update({ model, inputs, w, b }) {
    const outputs = model === "softmax" ? 3 : 1;
    const rows = Math.max(inputs.length, outputs);
    const height = rows * ROW + 40;
    this.svg.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
    this.svg.setAttribute("aria-label",
      `${ACTIVATION[model]} neuron${outputs > 1 ? "s" : ""} with ${inputs.length} input(s)`);
    this.svg.replaceChildren();
    const yOf = (i, n) => 15 + (height - 30) * (i + 0.5) / n;
    const inX = 60, sumX = 280, actX = 405, outX = 495;
    const links = el("g", {});
    const labels = el("g", {}); // above every link: a later neuron's link never crosses out a weight
    const nodes = el("g", {});
    this.svg.append(links, labels, nodes);
    for (let j = 0; j < outputs; j++) {
      const sy = yOf(j, outputs);
      inputs.forEach((name, i) => {
        const iy = yOf(i, inputs.length);
        const v = w ? w[i][j] : null;
        const cls = v === null ? "link" : v >= 0 ? "link pos" : "link neg";
        const width = v === null ? 1.5 : 1.5 + Math.min(8, Math.abs(v) * 2);
        links.append(el("line", { x1: inX, y1: iy, x2: sumX, y2: sy, class: cls, "stroke-width": width }));
        // Several neurons' links cross mid-way: their labels go a quarter of the way back from
        // each Σ along the link, where the six of them lie apart.
        const [lx, ly] = outputs > 1 ? [sumX - (sumX - inX) * STACKED_AT - 6, sy + (iy - sy) * STACKED_AT] :
          [(inX + sumX) / 2, (iy + sy) / 2 - 8];
        labels.append(el("text", { x: lx, y: ly, class: `weight${outputs > 1 ? " stacked" : ""}`,
          "data-weight": `${i},${j}` }, `w${i + 1} ${fmt(v)}`));
      });
      nodes.append(el("circle", { cx: sumX, cy: sy, r: 24, class: "sum" }));
      nodes.append(el("text", { x: sumX, y: sy + 1, class: "sum-label" }, "Σ"));
      nodes.append(el("text", { x: sumX, y: sy + 42, class: "bias", "data-bias": j },
        `b${outputs > 1 ? j : ""} ${fmt(b ? b[j] : null)}`));
      links.append(el("line", { x1: sumX + 24, y1: sy, x2: actX - 50, y2: sy, class: "link" }));
      links.append(el("line", { x1: actX + 50, y1: sy, x2: outX - 20, y2: sy, class: "link" }));
      nodes.append(el("circle", { cx: outX, cy: sy, r: 20, class: `out out${outputs > 1 ? j : 1}` }));
      nodes.append(el("text", { x: outX + 28, y: sy + 1, class: "out-label" },
        model === "linear" ? "ŷ" : outputs > 1 ? `p${j}` : "p₁"));
    }
    inputs.forEach((name, i) => {
      const iy = yOf(i, inputs.length);
      nodes.append(el("circle", { cx: inX, cy: iy, r: 20, class: "input" }));
      nodes.append(el("text", { x: inX, y: iy + 32, class: "in-label" }, name));
    });
    const top = yOf(0, outputs) - 26, bottom = yOf(outputs - 1, outputs) + 26;
    nodes.append(el("rect", { x: actX - 50, y: top, width: 100, height: bottom - top, rx: 8, class: "activation" }));
    nodes.append(el("text", { x: actX, y: (top + bottom) / 2 + 1, class: "act-label" }, ACTIVATION[model]));
  }
}
