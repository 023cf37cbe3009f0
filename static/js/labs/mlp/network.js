// The network drawing, as in TF Playground: the input features (buttons that toggle them), each
// drawn hidden neuron with a small heatmap of its activation over the plane, the output, and the
// links between them coloured by the weight's sign and as wide as its size. Each hidden layer's
// column carries −/+ buttons and a number field for its size. Hovering a link shows its weight and
// clicking it opens a field to type a new one; hovering a neuron or feature reports it (the lab
// shows its picture large).
import { FEATURES, MAX_NEURONS, MAX_WEIGHT } from "../../protocol/mlp.js";
import { paintGrid } from "../../views/grid.js";
import { htmlElement as html, svgElement as svg } from "../../views/svg.js";
import { classScale } from "./heatmap.js";

/** Neurons drawn per layer at most (docs/protocol.md: the frame's `drawn`). */
const MAX_DRAWN = 8;
/** A node's side and a row's height at scale 1; the page's --net-scale (presentation) enlarges them. */
const NODE = 38;
const ROW = 50;
/** Room above the nodes for each layer's size controls. */
const HEAD = 124;
/** Room below the tallest column for a "+N more" note. */
const FOOT = 30;
/** Room left of the input nodes for their labels. */
const LABEL_WIDTH = 78;
const RIGHT_MARGIN = 10;
/** Width of a layer's size controls: −/+ side by side, or stacked when columns are closer. */
const SIZE_CONTROLS_WIDTH = 80;
const NARROW_CONTROLS_WIDTH = 52;
/** |weight| at which a link reaches its widest. */
const WIDEST_WEIGHT = 4;
const LINK_WIDTH = [0.8, 9];
/** Width of a link's invisible hover target, in pixels: a thin link is still easy to point at. */
const LINK_TARGET = 14;
/** The weight's tip sits this far right of and below the pointer, in pixels. */
const TIP_OFFSET = 14;
const FEATURE_GRID = 24;
const OUTPUT_TITLES = {
  classification: "output: probability of the blue class",
  regression: "output: the predicted value, −1 (orange) to +1 (blue)",
};

export const FEATURE_LABELS = Object.freeze({
  x1: "x₁", x2: "x₂", x1_sq: "x₁²", x2_sq: "x₂²", x1x2: "x₁x₂",
  sin_x1: "sin x₁", sin_x2: "sin x₂",
});
/** Each feature as a function of the point; its picture is only a shape, so its scale is free. */
const FEATURE_FNS = {
  x1: (a) => a, x2: (a, b) => b, x1_sq: (a) => a * a, x2_sq: (a, b) => b * b,
  x1x2: (a, b) => a * b, sin_x1: (a) => Math.sin(a), sin_x2: (a, b) => Math.sin(b),
};

/** A FEATURE_GRID² uint8 picture of a feature over [-domain, domain]², scaled to its largest |value|. */
function featureGrid(name, domain) {
  const n = FEATURE_GRID;
  const values = new Float64Array(n * n);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const x1 = -domain + ((c + 0.5) * 2 * domain) / n;
      const x2 = domain - ((r + 0.5) * 2 * domain) / n;
      values[r * n + c] = FEATURE_FNS[name](x1, x2);
    }
  }
  const top = Math.max(...values.map(Math.abs)) || 1;
  return Uint8Array.from(values, (v) => Math.round(((v / top + 1) / 2) * 255));
}

/** A number-valued CSS variable of `element` (1 when unset). */
const cssNumber = (element, name) => Number(getComputedStyle(element).getPropertyValue(name)) || 1;

const clampSize = (n) => Math.min(MAX_NEURONS, Math.max(1, n));
const sameList = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
const formatWeight = (w) => (w === undefined ? "—" : w.toFixed(3));
/** A typed weight, or null unless it is a finite number the server accepts. */
function parseWeight(text) {
  const v = Number(text.trim().replace("−", "-"));
  return text.trim() !== "" && Number.isFinite(v) && Math.abs(v) <= MAX_WEIGHT ? v : null;
}

/**
 * The network picture.
 *
 * `setArchitecture({features, hidden, problem})` redraws it at once for the chosen features (in
 * config order) and hidden sizes, untrained. `update(data)` colours it from one frame:
 * `{layers, drawn, weights, biases, neuronGrids, neuronGridSize, outputGrid, gridSize}` where
 * `neuronGrids[l][j]` is the Uint8Array of drawn neuron j of hidden layer l (docs/protocol.md);
 * a frame for another architecture is ignored. `reset()` shows it untrained again.
 */
export class NetworkView {
  /**
   * @param {HTMLElement} element Container; the view fills its width.
   * @param {{onToggleFeature: (name: string) => void,
   *          onLayerSize: (layer: number, size: number) => void,
   *          onSetWeight?: (layer: number, from: number, to: number, value: number) => void,
   *          onFocusNeuron?: (neuron: {layer: number, index: number}|{feature: string}|null) => void,
   *          domain?: number}} options Callbacks for the controls drawn in the picture (a weight
   *          typed in; a hidden neuron or a feature hovered, null when the pointer leaves); the
   *          plane's half-width for the features' pictures.
   */
  constructor(element, { onToggleFeature, onLayerSize, onSetWeight, onFocusNeuron, domain = 6 }) {
    this.element = element;
    this.callbacks = { onToggleFeature, onLayerSize, onSetWeight, onFocusNeuron };
    this.colors = classScale(1);
    this.featureGrids = Object.fromEntries(FEATURES.map((f) => [f, featureGrid(f, domain)]));
    this.featureGridSize = FEATURE_GRID;
    this.arch = { features: [], hidden: [] };
    this.problem = "classification";
    this.pointed = null; // the link {l, i, j} whose weight the tip shows
    this.focused = null; // the neuron or feature reported to onFocusNeuron
    this.frame = null;
    this.drawn = null;
    this.width = 0;
    this.scale = 1;
    const rebuild = () => {
      const changed = element.clientWidth !== this.width || cssNumber(element, "--net-scale") !== this.scale;
      if (changed && this.drawn) this.build();
    };
    new ResizeObserver(rebuild).observe(element);
    window.addEventListener("resize", rebuild);
  }

  setArchitecture({ features, hidden, problem = "classification" }) {
    this.problem = problem;
    if (this.output) this.output.title = OUTPUT_TITLES[problem];
    const same = sameList(features, this.arch.features) && sameList(hidden, this.arch.hidden);
    this.arch = { features: [...features], hidden: [...hidden] };
    if (same && this.drawn) return;
    this.frame = null;
    this.drawn = [features.length, ...hidden.map((h) => Math.min(h, MAX_DRAWN)), 1];
    this.build();
  }

  update(data) {
    const layers = [this.arch.features.length, ...this.arch.hidden, 1];
    if (!sameList(data.layers, layers)) return;
    this.frame = data;
    if (sameList(data.drawn, this.drawn)) this.paint();
    else {
      this.drawn = [...data.drawn];
      this.build();
    }
  }

  reset() {
    this.frame = null;
    this.build();
  }

  /** Colours the links and heatmaps from the last frame (kept, so a rebuild on resize repaints). */
  paint() {
    const data = this.frame;
    data.weights.forEach((w, l) => w.forEach((row, i) => row.forEach((v, j) => {
      this.styleLink(this.links[l][i][j], v);
    })));
    data.neuronGrids.forEach((layer, l) => layer.forEach((grid, j) => {
      paintGrid(this.canvases[l + 1][j], data.neuronGridSize, grid, this.colors);
    }));
    paintGrid(this.canvases.at(-1)[0], data.gridSize, data.outputGrid, this.colors);
    if (this.pointed && !this.editor) this.showTip();
  }

  /** The weight of link {l, i, j} in the last frame (undefined before one). */
  weight({ l, i, j }) {
    return this.frame?.weights[l]?.[i]?.[j];
  }

  /** Words for link {l, i, j}: where it comes from and where it goes. */
  describeLink({ l, i, j }) {
    const last = this.drawn.length - 1;
    const from = l === 0 ? FEATURE_LABELS[this.arch.features[i]] : `neuron ${i + 1} of layer ${l}`;
    const to = l + 1 === last ? "the output" : `neuron ${j + 1} of layer ${l + 1}`;
    return `${from} → ${to}`;
  }

  /** The tip over the pointed link: its weight, what it joins, and how to change it. */
  showTip(at) {
    const tip = this.tip;
    tip.replaceChildren(
      html("strong", "net-tip-weight", `weight ${formatWeight(this.weight(this.pointed))}`),
      html("span", "net-tip-where", this.describeLink(this.pointed)),
      html("span", "net-tip-hint", "click to change it"),
    );
    tip.hidden = false;
    if (!at) return;
    // Beside the pointer (not under it), inside the picture.
    const left = Math.max(0, Math.min(at[0] + TIP_OFFSET, this.width - tip.offsetWidth));
    Object.assign(tip.style, { left: `${left}px`, top: `${at[1] + TIP_OFFSET}px` });
  }

  hideTip() {
    if (this.editor) return;
    this.pointed = null;
    this.tip.hidden = true;
  }

  /** Where the pointer is in the picture, in its pixels. */
  pointerAt(event) {
    const box = this.element.getBoundingClientRect();
    return [event.clientX - box.left, event.clientY - box.top];
  }

  /** A field in the tip for a new weight of the pointed link: Enter sends it, Escape cancels. */
  openEditor() {
    const link = this.pointed;
    const input = html("input", "net-weight-input");
    Object.assign(input, { type: "text", inputMode: "decimal", value: formatWeight(this.weight(link)) });
    input.setAttribute("aria-label", `weight ${this.describeLink(link)}`);
    const note = html("span", "net-tip-hint", `Enter to set (−${MAX_WEIGHT} … ${MAX_WEIGHT}), Esc to cancel`);
    this.tip.replaceChildren(html("span", "net-tip-where", this.describeLink(link)), input, note);
    this.editor = input;
    const close = () => {
      this.editor = null;
      this.hideTip();
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") close();
      if (e.key !== "Enter") return;
      const value = parseWeight(input.value);
      input.setAttribute("aria-invalid", String(value === null));
      if (value === null) {
        note.textContent = `A number from −${MAX_WEIGHT} to ${MAX_WEIGHT}, please.`;
        return;
      }
      if (this.frame) {
        this.frame.weights[link.l][link.i][link.j] = value; // shown now; the server's frames follow
        this.styleLink(this.links[link.l][link.i][link.j], value);
      }
      this.callbacks.onSetWeight?.(link.l, link.i, link.j, value);
      close();
    });
    input.addEventListener("blur", close);
    input.focus();
    input.select();
  }

  /** Tells the lab which neuron or feature the pointer is on (null: none). */
  focus(neuron) {
    if (JSON.stringify(neuron) === JSON.stringify(this.focused)) return;
    this.focused = neuron;
    this.callbacks.onFocusNeuron?.(neuron);
  }

  styleLink(path, w) {
    const t = Math.min(Math.abs(w), WIDEST_WEIGHT) / WIDEST_WEIGHT;
    path.setAttribute("class", w > 0 ? "pos" : w < 0 ? "neg" : "");
    const [thin, wide] = LINK_WIDTH.map((w) => w * this.lineScale);
    path.setAttribute("stroke-width", (thin + t * (wide - thin)).toFixed(2));
  }

  /** Node centres, [column][row] → [x, y]; inputs are one row per feature in FEATURES order. */
  layout() {
    const columns = this.drawn.length;
    const x0 = LABEL_WIDTH + this.node / 2;
    const x1 = this.width - RIGHT_MARGIN - this.node / 2;
    this.spacing = (x1 - x0) / (columns - 1);
    const x = (c) => x0 + this.spacing * c;
    const y = (r) => HEAD + r * this.row + this.node / 2;
    const inputs = FEATURES.map((_, r) => [x(0), y(r)]);
    const column = (n, c) => Array.from({ length: n }, (_, r) => [x(c), y(r)]);
    return [inputs, ...this.drawn.slice(1).map((n, c) => column(n, c + 1))];
  }

  build() {
    // Rebuilding replaces the controls: keep the keyboard focus on the same one.
    const active = document.activeElement;
    const focused = this.element.contains(active) ? active.dataset.key : null;
    this.width = this.element.clientWidth;
    this.scale = cssNumber(this.element, "--net-scale");
    this.lineScale = cssNumber(this.element, "--line-scale");
    this.node = NODE * this.scale;
    this.row = ROW * this.scale;
    const { features, hidden } = this.arch;
    const centres = this.layout();
    const tallest = Math.max(FEATURES.length, ...this.drawn.slice(1));
    const height = HEAD + tallest * this.row + FOOT;
    const links = svg("svg", { class: "net-links", width: this.width, height, "aria-hidden": "true" });
    const wires = links.appendChild(svg("g"));
    const targets = links.appendChild(svg("g", { class: "net-targets" }));
    const nodes = html("div", "net-nodes");
    this.tip = html("div", "net-tip");
    this.tip.hidden = true;
    this.editor = null;
    this.pointed = null;
    // The elements under the pointer are replaced: nothing is hovered any more.
    this.focus(null);
    this.element.replaceChildren(links, nodes, this.tip);
    this.element.style.height = `${height}px`;
    const place = (el, [cx, cy], w = this.node, h = this.node) => {
      Object.assign(el.style, { left: `${cx - w / 2}px`, top: `${cy - h / 2}px` });
      nodes.append(el);
      return el;
    };

    // Columns of sources for the links: the active features, in config order (the weight rows).
    const sources = [features.map((f) => centres[0][FEATURES.indexOf(f)]), ...centres.slice(1)];
    const link = ([ax, ay], [bx, by], l, i, j) => {
      const [sx, ex] = [ax + this.node / 2, bx - this.node / 2];
      const mx = (sx + ex) / 2;
      const d = `M${sx},${ay} C${mx},${ay} ${mx},${by} ${ex},${by}`;
      targets.appendChild(svg("path", { d, "stroke-width": LINK_TARGET, "data-link": `${l},${i},${j}` }));
      return wires.appendChild(svg("path", { d }));
    };
    this.links = sources.slice(0, -1).map((from, l) => from.map((a, i) => centres[l + 1].map((b, j) => link(a, b, l, i, j))));
    const linkAt = (e) => {
      const [l, i, j] = (e.target.dataset?.link ?? "").split(",").map(Number);
      return e.target.dataset?.link ? { l, i, j } : null;
    };
    targets.addEventListener("pointermove", (e) => {
      if (this.editor || !linkAt(e)) return;
      this.pointed = linkAt(e);
      this.showTip(this.pointerAt(e));
    });
    targets.addEventListener("pointerleave", () => this.hideTip());
    targets.addEventListener("click", (e) => {
      if (!linkAt(e)) return;
      this.pointed = linkAt(e);
      this.showTip(this.pointerAt(e));
      this.openEditor();
    });

    this.canvases = [[]];
    FEATURES.forEach((f, r) => {
      const on = features.includes(f);
      const button = place(html("button", "net-node net-input"), centres[0][r]);
      button.type = "button";
      button.dataset.key = f;
      button.setAttribute("aria-pressed", String(on));
      button.setAttribute("aria-label", `feature ${FEATURE_LABELS[f]}`);
      // The last feature cannot go: the network needs an input.
      button.disabled = on && features.length === 1;
      const canvas = html("canvas");
      paintGrid(canvas, FEATURE_GRID, this.featureGrids[f], this.colors);
      button.append(canvas, html("span", "net-label", FEATURE_LABELS[f]));
      button.addEventListener("click", () => this.callbacks.onToggleFeature(f));
      for (const [on, off] of [["pointerenter", "pointerleave"], ["focus", "blur"]]) {
        button.addEventListener(on, () => this.focus({ feature: f }));
        button.addEventListener(off, () => this.focus(null));
      }
    });

    hidden.forEach((size, l) => {
      const column = centres[l + 1];
      this.canvases.push(column.map((centre, j) => {
        const neuron = place(html("div", "net-node net-neuron"), centre);
        neuron.title = `layer ${l + 1}, neuron ${j + 1}`;
        neuron.addEventListener("pointerenter", () => this.focus({ layer: l, index: j }));
        neuron.addEventListener("pointerleave", () => this.focus(null));
        const canvas = html("canvas");
        neuron.append(canvas);
        if (l === 0) neuron.append(html("span", "net-badge", String(j + 1)));
        return canvas;
      }));
      if (size > column.length) {
        const [cx] = column[0];
        const more = html("span", "net-more", `+${size - column.length} more`);
        more.style.width = `${this.spacing - 4}px`;
        place(more, [cx, HEAD + column.length * this.row + 8], this.spacing - 4, 24);
      }
      this.buildSizeControls(l, size, column[0][0]);
    });

    this.output = place(html("div", "net-node net-output"), centres.at(-1)[0]);
    this.output.title = OUTPUT_TITLES[this.problem];
    this.canvases.push([this.output.appendChild(html("canvas"))]);
    const heads = [["Features", centres[0][0][0] - LABEL_WIDTH / 2], ["Output", centres.at(-1)[0][0]]];
    for (const [text, cx] of heads) place(html("span", "net-head", text), [cx, 18], 100, 24);
    if (focused) this.element.querySelector(`[data-key="${focused}"]`)?.focus();
    if (this.frame) this.paint();
  }

  /** −, + and a number field above hidden layer `l`'s column, centred at `cx`. */
  buildSizeControls(l, size, cx) {
    const narrow = this.spacing < SIZE_CONTROLS_WIDTH + 8;
    const width = narrow ? NARROW_CONTROLS_WIDTH : SIZE_CONTROLS_WIDTH;
    const group = html("div", narrow ? "net-size narrow" : "net-size");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", `hidden layer ${l + 1}`);
    Object.assign(group.style, { left: `${cx - width / 2}px`, top: "4px", width: `${width}px` });
    const minus = html("button", "net-step minus", "−");
    minus.setAttribute("aria-label", `fewer neurons in layer ${l + 1}`);
    minus.dataset.key = `minus-${l}`;
    minus.disabled = size <= 1;
    minus.addEventListener("click", () => this.callbacks.onLayerSize(l, size - 1));
    const plus = html("button", "net-step plus", "+");
    plus.setAttribute("aria-label", `more neurons in layer ${l + 1}`);
    plus.dataset.key = `plus-${l}`;
    plus.disabled = size >= MAX_NEURONS;
    plus.addEventListener("click", () => this.callbacks.onLayerSize(l, size + 1));
    const input = html("input", "net-count");
    Object.assign(input, { type: "number", min: 1, max: MAX_NEURONS, value: size });
    input.setAttribute("aria-label", `neurons in layer ${l + 1}`);
    input.dataset.key = `count-${l}`;
    input.addEventListener("change", () => {
      const n = Math.round(Number(input.value));
      if (input.value === "" || !Number.isFinite(n)) {
        input.value = size;
        return;
      }
      input.value = clampSize(n);
      this.callbacks.onLayerSize(l, clampSize(n));
    });
    group.append(minus, input, plus);
    if (!narrow) group.append(html("span", "net-unit", size === 1 ? "neuron" : "neurons"));
    this.element.querySelector(".net-nodes").append(group);
  }
}
