// The "Single neurons" lab page: the LiveLab base with this lab's props and views — what the neuron
// learned over its data, the neuron's diagram, its loss, its loss surface and the class maps.
import { LiveLab } from "../lab/liveLab.js";
import { $ } from "../lab/page.js";
import { Type, configProps, hashOf } from "../lab/state.js";
import * as protocol from "../protocol/neurons.js";
import { paintGrid } from "../views/grid.js";
import { LineChart } from "../views/lineChart.js";
import { NeuronDiagram } from "./neurons/diagram.js";
import { CLASS_COLORS, NeuronFit, classMapScale } from "./neurons/fit.js";
import { NeuronSurface } from "./neurons/surface.js";

const { DATASETS, IRIS_FEATURES, MODELS } = protocol;

/** Every NeuronConfig field; defaults and ranges come from the protocol mirror. */
const PROPS = configProps(protocol, [
  { name: "model", type: Type.ENUM, options: MODELS },
  { name: "dataset", type: Type.ENUM, options: Object.values(DATASETS).flat() },
  { name: "noise", type: Type.NUMBER },
  { name: "slope", type: Type.NUMBER },
  { name: "intercept", type: Type.NUMBER },
  { name: "iris_features", type: Type.LIST, options: IRIS_FEATURES, length: [2, 2] },
  { name: "learning_rate", type: Type.NUMBER },
  { name: "seed", type: Type.INT },
  { name: "speed", type: Type.INT },
]);
const CLASS_MAPS = 3;

/** The multi-layer lab at the same data and learning rate. */
const mlpLink = (s) => `/labs/mlp#${hashOf({
  dataset: "xor", noise: s.noise, seed: s.seed, learning_rate: s.learning_rate,
})}`;

const fmt = (v, digits = 3) => (v === null || v === undefined ? "–" : v.toFixed(digits));
const pretty = (feature) => feature.replace("_", " ");

class NeuronsLab extends LiveLab {
  constructor() {
    super({ slug: "neurons", props: PROPS, protocol });
    this.data = null;
    this.fit = new NeuronFit($("fit"));
    this.diagram = new NeuronDiagram($("diagram"));
    this.chart = new LineChart($("loss-chart"), {
      x: { title: "step", fromZero: true },
      y: { title: "loss", fromZero: true },
      series: [{ color: "#1b1f24" }],
      fontSize: 15,
      margin: { l: 56, r: 12, t: 10, b: 44 },
    });
    this.surface = new NeuronSurface($("surface"));
    this.classMaps = Array.from({ length: CLASS_MAPS }, () => document.createElement("canvas"));
    $("class-maps").append(...this.classMaps.map((canvas, k) => {
      const figure = document.createElement("figure");
      const caption = document.createElement("figcaption");
      caption.dataset.classMap = k;
      figure.append(canvas, caption);
      return figure;
    }));
    this.start();
  }

  /** A model keeps its data set when it can learn it, else takes its first; a feature pair stays two. */
  constrain(changes) {
    const next = { ...this.state, ...changes };
    const fixed = { ...changes };
    if (!DATASETS[next.model].includes(next.dataset)) fixed.dataset = DATASETS[next.model][0];
    const [a, b] = next.iris_features;
    if (a === b) {
      // The feature chosen is already the other one: they swap.
      const i = next.iris_features.findIndex((f, k) => f !== this.state.iris_features[k]);
      fixed.iris_features = [...next.iris_features];
      fixed.iris_features[1 - i] = this.state.iris_features[i];
    }
    return fixed;
  }

  resetViews() {
    this.chart.reset();
  }

  onData(message) {
    this.data = message;
    this.chart.reset();
    this.fit.reset();
    this.fit.update({ model: message.model, points: message.points, domain: message.domain, axes: message.axes });
    if (message.model === "linear") this.surface.setData(message.points);
    this.showLegend();
  }

  /** Frames before the first data have no points to draw on. */
  isStale(frame) {
    return super.isStale(frame) || !this.data;
  }

  onFrame(frame) {
    if (frame.step === 0) {
      this.chart.reset();
      this.surface.reset();
    }
    if (!frame.diverged) this.chart.append(frame.step, [frame.loss]);
  }

  draw(frame, bytes) {
    const { model } = this.data;
    const w = frame.weights, b = frame.bias;
    this.fit.update({ w, b, ...(bytes.length ? { grid: bytes, size: frame.grid_size } : {}) });
    const inputs = model === "linear" ? ["x"] :
      this.data.dataset === "iris" ? this.state.iris_features.map(pretty) : ["x₁", "x₂"];
    this.diagram.update({ model, inputs, w, b });
    if (model === "linear") this.surface.update({ w: w[0][0], b: b[0] });
    if (model === "softmax" && bytes.length) {
      const cells = frame.grid_size ** 2;
      this.classMaps.forEach((canvas, k) => {
        paintGrid(canvas, frame.grid_size, bytes.subarray(k * cells, (k + 1) * cells), classMapScale(k));
      });
    }
    $("step-count").textContent = frame.step.toLocaleString("en");
    $("loss").textContent = frame.diverged ? "diverged" : fmt(frame.loss);
    $("accuracy").textContent = frame.accuracy === null ? "–" : `${Math.round(frame.accuracy * 100)} %`;
  }

  /** Shows the local state in the parts of the page that depend on it only. */
  showState() {
    const s = this.state;
    const root = $("lab");
    root.querySelectorAll("[data-prop=dataset]").forEach((b) => {
      b.hidden = !DATASETS[s.model].includes(b.dataset.value);
    });
    root.querySelectorAll("[data-show]").forEach((el) => { el.hidden = !el.dataset.show.split(" ").includes(s.dataset); });
    root.querySelectorAll("[data-show-model]").forEach((el) => { el.hidden = !el.dataset.showModel.split(" ").includes(s.model); });
    $("xor-note").hidden = !(s.model === "logistic" && s.dataset === "xor");
    $("mlp-link").href = mlpLink(s);
  }

  showLegend() {
    const { classes } = this.data;
    const dot = (k) => `<span class="dot" style="background: rgb(${CLASS_COLORS[k].join(",")})"></span>`;
    const items = classes.length ? classes.map((name, k) => `${dot(k)} ${name}`) : [`${dot(1)} data point`];
    const line = { linear: "fitted line", logistic: "separating line p = 0.5", softmax: "" }[this.data.model];
    if (line) items.push(`<span class="swatch ${this.data.model}"></span> ${line}`);
    $("legend").innerHTML = items.join(" ");
    $("class-maps").querySelectorAll("figcaption").forEach((c, k) => { c.textContent = `p(${classes[k] ?? k})`; });
  }
}

new NeuronsLab();
