// The chain x → L1 → … → Ln → loss as an SVG diagram. Fed plain objects, never fetches:
//   update({ x, y, w, b, activation, values, active, uses })
// where `values` maps revealed keys (L2, loss, dloss, dL2, delta2, gw2, gb2) to numbers (null means
// overflow), `active` is the key of the current step and `uses` the keys it reads.

import { svgElement as el } from "../../views/svg.js";
import { formatValue } from "./chainSteps.js";

const COL = 220; // width of one column (input, each neuron, loss) in SVG units
const BIAS_COL = 250; // biases add a second gradient under each edge
const COMPACT_COL = 150; // deep chains: narrower columns, bare values, no gradients on the edges
const NODE_Y = 100;
const R = 36;
const ROW = { value: NODE_Y + R + 34, slope: NODE_Y + R + 72, delta: NODE_Y + R + 118 };
const HEIGHT = NODE_Y + R + 150;
const ACT = { sigmoid: "σ", tanh: "tanh", relu: "relu" };

export class ChainDiagram {
  constructor(svg) {
    if (!(svg instanceof SVGSVGElement)) throw Error("ChainDiagram needs an <svg> element");
    this.svg = svg;
    this.svg.setAttribute("role", "img");
  }

  reset() {
    this.svg.replaceChildren();
  }

  update(view) {
    const n = view.w.length;
    if (!n) throw Error("a chain needs at least one weight");
    if (view.b && view.b.length !== n) throw Error("b must hold one bias per weight");
    this.view = view;
    this.compact = n > 4;
    this.col = this.compact ? COMPACT_COL : view.b ? BIAS_COL : COL;
    const width = (n + 2) * this.col;
    this.svg.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
    this.svg.classList.toggle("is-compact", this.compact);
    this.svg.setAttribute(
      "aria-label",
      `Chain of ${n} neuron${n > 1 ? "s" : ""} from x to the loss, with the values computed so far`,
    );
    this.reset();
    this.svg.append(this.defs());
    for (let i = 0; i < n; i++) this.edge(i);
    this.deltaArrows(n);
    this.input();
    for (let i = 0; i < n; i++) this.neuron(i, n);
    this.lossNode(n);
  }

  deltaHalf() {
    return this.compact ? 62 : 70;
  }

  cx(column) {
    return this.col / 2 + column * this.col;
  }

  /** A group for one value: classed when it is the current step or a factor the step reuses. */
  group(key, extra = "") {
    const classes = ["bp-item", extra];
    if (key === this.view.active) classes.push("is-active");
    if (this.view.uses?.includes(key)) classes.push("is-used");
    return el("g", { class: classes.join(" ").trim(), "data-key": key });
  }

  shown(key) {
    return key in this.view.values;
  }

  value(key) {
    return formatValue(this.view.values[key], this.compact ? 3 : 4);
  }

  defs() {
    const defs = el("defs");
    for (const [id, cls] of [["bp-arrow-fwd", "bp-arrowhead-fwd"], ["bp-arrow-back", "bp-arrowhead-back"]]) {
      const marker = el("marker", {
        // Sized in user units, so a thicker highlighted edge keeps the same arrowhead.
        id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 20, markerHeight: 20, markerUnits: "userSpaceOnUse",
        orient: "auto-start-reverse",
      });
      marker.append(el("path", { d: "M0,0 L10,5 L0,10 z", class: cls }));
      defs.append(marker);
    }
    return defs;
  }

  edge(i) {
    const { w, b } = this.view;
    const x1 = this.cx(i) + R + 4;
    const x2 = this.cx(i + 1) - R - 6;
    const mid = (this.cx(i) + this.cx(i + 1)) / 2;
    const g = this.group(`w${i + 1}`, "bp-edge");
    g.append(el("line", { x1, y1: NODE_Y, x2, y2: NODE_Y, "marker-end": "url(#bp-arrow-fwd)" }));
    const [wLabel, bLabel] = this.compact ? ["", "b "] : [`w${i + 1} = `, `b${i + 1} = `];
    const digits = this.compact ? 3 : 4;
    g.append(el("text", { x: mid, y: NODE_Y - (b ? 44 : 14), class: "bp-weight" }, wLabel + formatValue(w[i], digits)));
    if (b) g.append(el("text", { x: mid, y: NODE_Y - 14, class: "bp-weight" }, bLabel + formatValue(b[i], digits)));
    this.svg.append(g);
    if (this.compact) return;
    for (const [key, label, dy] of [[`gw${i + 1}`, `∂loss/∂w${i + 1}`, 0], [`gb${i + 1}`, `∂loss/∂b${i + 1}`, 50]]) {
      if (!this.shown(key)) continue;
      const grad = this.group(key, "bp-grad");
      grad.append(el("text", { x: mid, y: NODE_Y + 32 + dy, class: "bp-grad-name" }, label));
      grad.append(el("text", { x: mid, y: NODE_Y + 55 + dy, class: "bp-back-value" }, this.value(key)));
      this.svg.append(grad);
    }
  }

  /** Orange arrows δ(i+1) → δi along the bottom: the backward pass reusing the product so far. */
  deltaArrows(n) {
    for (let i = n - 1; i > 0; i--) {
      if (!this.shown(`delta${i}`)) continue;
      const y = ROW.delta - 6;
      this.svg.append(
        el("line", {
          x1: this.cx(i + 1) - this.deltaHalf() - 2, y1: y, x2: this.cx(i) + this.deltaHalf() + 4, y2: y,
          class: "bp-back-arrow", "marker-end": "url(#bp-arrow-back)",
        }),
      );
    }
  }

  input() {
    const g = this.group("x", "bp-input");
    const c = this.cx(0);
    g.append(el("rect", { x: c - R, y: NODE_Y - R, width: 2 * R, height: 2 * R, rx: 10 }));
    g.append(el("text", { x: c, y: NODE_Y + 8, class: "bp-node-name" }, "x"));
    g.append(el("text", { x: c, y: ROW.value, class: "bp-fwd-value", "data-value": "x" }, formatValue(this.view.x)));
    this.svg.append(g);
    if (!this.compact) return;
    // Deep chains show bare numbers; the input's column names the rows instead.
    this.svg.append(el("text", { x: c, y: ROW.slope, class: "bp-row-name" }, "Li′"));
    this.svg.append(el("text", { x: c, y: ROW.delta + 2, class: "bp-row-name" }, "δi"));
  }

  neuron(i, n) {
    const c = this.cx(i + 1);
    const name = `L${i + 1}`;
    const g = this.group(name, "bp-neuron");
    const act = i === n - 1 ? "σ" : ACT[this.view.activation];
    g.append(el("circle", { cx: c, cy: NODE_Y, r: R }));
    g.append(el("text", { x: c, y: NODE_Y + 8, class: "bp-node-name" }, name));
    g.append(el("text", { x: c, y: NODE_Y - R - 10, class: "bp-act" }, act));
    g.append(
      el("text", { x: c, y: ROW.value, class: this.shown(name) ? "bp-fwd-value" : "bp-pending", "data-value": name },
        this.shown(name) ? this.value(name) : "?"),
    );
    this.svg.append(g);
    this.backRow(`dL${i + 1}`, c, ROW.slope, this.compact ? "" : `${name}′ `);
    this.deltaBox(`delta${i + 1}`, c, this.compact ? "" : `δ${i + 1} `);
  }

  backRow(key, c, y, label) {
    if (!this.shown(key)) return;
    const g = this.group(key, "bp-slope");
    g.append(el("text", { x: c, y, class: "bp-back-value", "data-value": key }, `${label}${this.value(key)}`));
    this.svg.append(g);
  }

  deltaBox(key, c, label) {
    if (!this.shown(key)) return;
    const g = this.group(key, "bp-delta");
    const half = this.deltaHalf();
    g.append(el("rect", { x: c - half, y: ROW.delta - 26, width: 2 * half, height: 40, rx: 8 }));
    g.append(el("text", { x: c, y: ROW.delta + 2, class: "bp-back-value", "data-value": key }, label + this.value(key)));
    this.svg.append(g);
  }

  lossNode(n) {
    const c = this.cx(n + 1);
    const g = this.group("loss", "bp-loss");
    g.append(el("line", { x1: this.cx(n) + R + 4, y1: NODE_Y, x2: c - 48, y2: NODE_Y, "marker-end": "url(#bp-arrow-fwd)" }));
    g.append(el("rect", { x: c - 46, y: NODE_Y - 28, width: 92, height: 56, rx: 10 }));
    g.append(el("text", { x: c, y: NODE_Y + 8, class: "bp-node-name" }, "loss"));
    g.append(el("text", { x: c, y: NODE_Y - 44, class: "bp-weight" }, `y = ${formatValue(this.view.y)}`));
    g.append(
      el("text", { x: c, y: ROW.value, class: this.shown("loss") ? "bp-fwd-value" : "bp-pending", "data-value": "loss" },
        this.shown("loss") ? this.value("loss") : "?"),
    );
    this.svg.append(g);
    this.backRow("dloss", c, ROW.slope, this.compact ? "" : "loss′ ");
  }
}
