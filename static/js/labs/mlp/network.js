// The network drawing, as in TF Playground: the input features (buttons that toggle them), each
// drawn hidden neuron with a small heatmap of its activation over the plane, the output, and the
// links between them coloured by the weight's sign and as wide as its size. Each hidden layer's
// column carries −/+ buttons and a number field for its size.
import { FEATURES, MAX_NEURONS } from "../../protocol/mlp.js";
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
const FEATURE_GRID = 24;

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

/**
 * The network picture.
 *
 * `setArchitecture({features, hidden})` redraws it at once for the chosen features (in config
 * order) and hidden sizes, untrained. `update(data)` colours it from one frame:
 * `{layers, drawn, weights, biases, neuronGrids, neuronGridSize, outputGrid, gridSize}` where
 * `neuronGrids[l][j]` is the Uint8Array of drawn neuron j of hidden layer l (docs/protocol.md);
 * a frame for another architecture is ignored. `reset()` shows it untrained again.
 */
export class NetworkView {
  /**
   * @param {HTMLElement} element Container; the view fills its width.
   * @param {{onToggleFeature: (name: string) => void,
   *          onLayerSize: (layer: number, size: number) => void,
   *          domain?: number}} options Callbacks for the controls drawn in the picture; the
   *          plane's half-width for the features' pictures.
   */
  constructor(element, { onToggleFeature, onLayerSize, domain = 6 }) {
    this.element = element;
    this.callbacks = { onToggleFeature, onLayerSize };
    this.colors = classScale(1);
    this.featureGrids = Object.fromEntries(FEATURES.map((f) => [f, featureGrid(f, domain)]));
    this.arch = { features: [], hidden: [] };
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

  setArchitecture({ features, hidden }) {
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
    const nodes = html("div", "net-nodes");
    this.element.replaceChildren(links, nodes);
    this.element.style.height = `${height}px`;
    const place = (el, [cx, cy], w = this.node, h = this.node) => {
      Object.assign(el.style, { left: `${cx - w / 2}px`, top: `${cy - h / 2}px` });
      nodes.append(el);
      return el;
    };

    // Columns of sources for the links: the active features, in config order (the weight rows).
    const sources = [features.map((f) => centres[0][FEATURES.indexOf(f)]), ...centres.slice(1)];
    const link = ([ax, ay], [bx, by]) => {
      const [sx, ex] = [ax + this.node / 2, bx - this.node / 2];
      const mx = (sx + ex) / 2;
      return links.appendChild(svg("path", { d: `M${sx},${ay} C${mx},${ay} ${mx},${by} ${ex},${by}` }));
    };
    this.links = sources.slice(0, -1).map((from, l) => from.map((a) => centres[l + 1].map((b) => link(a, b))));

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
    });

    hidden.forEach((size, l) => {
      const column = centres[l + 1];
      this.canvases.push(column.map((centre, j) => {
        const neuron = place(html("div", "net-node net-neuron"), centre);
        neuron.title = `layer ${l + 1}, neuron ${j + 1}`;
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

    const output = place(html("div", "net-node net-output"), centres.at(-1)[0]);
    output.title = "output: probability of the blue class";
    this.canvases.push([output.appendChild(html("canvas"))]);
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
