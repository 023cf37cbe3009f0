// The "Multi-layer networks" lab page: the LiveLab base with this lab's props and views — the
// network drawing (weights to read and set by hand), the output over the plane (or a hovered
// neuron's picture, enlarged) and the loss chart — for classification and regression.
import { LiveLab } from "../lab/liveLab.js";
import { $ } from "../lab/page.js";
import { Type, configProps } from "../lab/state.js";
import * as protocol from "../protocol/mlp.js";
import { lossChart } from "../views/lineChart.js";
import { Classroom } from "./mlp/classroom.js";
import { Heatmap } from "./mlp/heatmap.js";
import { FEATURE_LABELS, NetworkView } from "./mlp/network.js";

const {
  ACTIVATIONS, CLIENT_MESSAGES, DATASETS, FEATURES, MAX_LAYERS, MAX_NEURONS, MAX_STEPS_PER_FRAME,
  PROBLEMS, REGULARIZATIONS, SPEEDS,
} = protocol;

/** Every setting of the page: the MlpConfig fields, then what only the page (and the link) holds. */
const PROPS = configProps(protocol, [
  { name: "problem", type: Type.ENUM, options: PROBLEMS },
  { name: "dataset", type: Type.ENUM, options: Object.values(DATASETS).flat() },
  { name: "noise", type: Type.NUMBER },
  { name: "train_ratio", type: Type.NUMBER },
  { name: "features", type: Type.LIST, options: FEATURES },
  { name: "hidden", type: Type.NUMBERS, integer: true, range: [1, MAX_NEURONS], length: [0, MAX_LAYERS] },
  { name: "activation", type: Type.ENUM, options: ACTIVATIONS },
  { name: "learning_rate", type: Type.NUMBER },
  { name: "batch_size", type: Type.INT },
  { name: "regularization", type: Type.ENUM, options: REGULARIZATIONS },
  { name: "regularization_rate", type: Type.NUMBER },
  { name: "seed", type: Type.INT },
  { name: "speed", type: Type.INT, options: SPEEDS, range: [1, MAX_STEPS_PER_FRAME] },
  { name: "show_test", type: Type.BOOLEAN, default: false },
  { name: "lines", type: Type.BOOLEAN, default: true },
]);

const NEW_LAYER_SIZE = 2;
/** Features whose neurons' boundaries are straight lines in the (x1, x2) plane. */
const LINEAR_FEATURES = ["x1", "x2"];
const NOTES = {
  features: "Lines are shown only when the features are x₁ and x₂: with x₁², sin x₁ … a " +
    "neuron's boundary is curved in this plane (look at its picture in the network).",
  noHidden: "No hidden layer: the output is one neuron, and its line is where the colours meet.",
};

/** The training loss this many times where it started: the learning rate is too large. */
const UNSTABLE_RISE = 1.25;
/** The fields of a `set_weight`: an error naming one answers it (docs/protocol.md). */
const SET_WEIGHT_FIELDS = ["layer", "from", "to", "value"];

const formatLoss = (v) => (v === null ? "—" : v.toFixed(3));
const formatAccuracy = (v) => (v === null ? "" : `${Math.round(v * 100)} % right`);

/** Splits a frame's grids into the output's and each drawn hidden neuron's. */
function splitGrids(frame, bytes) {
  let offset = frame.grid_size ** 2;
  const cell = frame.neuron_grid_size ** 2;
  const neuronGrids = frame.drawn.slice(1, -1).map((count) => Array.from({ length: count }, () => {
    offset += cell;
    return bytes.subarray(offset - cell, offset);
  }));
  if (offset !== bytes.length) throw Error(`frame grids need ${offset} bytes, got ${bytes.length}`);
  return { outputGrid: bytes.subarray(0, frame.grid_size ** 2), neuronGrids };
}

/**
 * Each drawn first-layer neuron's line w·x + b = 0 in the (x1, x2) plane, or a note saying why there
 * are none. Weight rows follow the config's feature order; a missing x1 or x2 has weight 0.
 */
function firstLayerLines(features, frame) {
  if (frame.layers.length < 3) return { lines: [], note: NOTES.noHidden };
  if (!features.every((f) => LINEAR_FEATURES.includes(f))) {
    return { lines: [], note: NOTES.features };
  }
  const lines = frame.biases[0].map((b, j) => {
    const w = LINEAR_FEATURES.map((name) => {
      const row = features.indexOf(name);
      return row < 0 ? 0 : frame.weights[0][row][j];
    });
    return { w, b, label: j + 1 };
  });
  return { lines, note: "" };
}

class MlpLab extends LiveLab {
  constructor() {
    super({ slug: "mlp", props: PROPS, protocol });
    this.lastStep = -1;
    this.startLoss = null;
    this.neuronLines = { lines: [], note: "" };
    this.heatmap = new Heatmap($("output-heatmap"));
    this.chart = lossChart($("loss-chart"), {
      x: "epoch",
      names: ["train loss", "test loss"],
      fontSize: 15,
    });
    this.grids = null; // the last frame's pictures: the output's and each drawn neuron's
    this.focused = null; // the neuron or feature whose picture the big heatmap shows instead
    this.network = new NetworkView($("network"), {
      onToggleFeature: (f) => this.toggleFeature(f),
      onLayerSize: (l, n) => this.set({ hidden: this.state.hidden.map((h, i) => (i === l ? n : h)) }),
      onSetWeight: (layer, from, to, value) => this.sendCounted({
        type: CLIENT_MESSAGES.SET_WEIGHT, layer, from, to, value,
      }),
      onFocusNeuron: (neuron) => {
        this.focused = neuron;
        this.showHeatmap();
      },
    });
    $("add-layer").addEventListener("click", () => this.set({ hidden: [...this.state.hidden, NEW_LAYER_SIZE] }));
    $("remove-layer").addEventListener("click", () => this.set({ hidden: this.state.hidden.slice(0, -1) }));
    this.classroom = new Classroom(this); // before start: a room's student follows instead
    this.start();
  }

  /**
   * A data set belongs to one problem: a data set chosen alone brings its problem, a problem chosen
   * alone its first data set (the server does the same, docs/protocol.md).
   */
  constrain(changes) {
    const next = { ...this.state, ...changes };
    if (DATASETS[next.problem].includes(next.dataset)) return changes;
    if ("dataset" in changes && !("problem" in changes)) {
      return { ...changes, problem: PROBLEMS.find((p) => DATASETS[p].includes(next.dataset)) };
    }
    return { ...changes, dataset: DATASETS[next.problem][0] };
  }

  countsError(field) {
    return super.countsError(field) || SET_WEIGHT_FIELDS.includes(field);
  }

  toggleFeature(name) {
    const { features } = this.state;
    const on = features.includes(name);
    this.set({ features: on ? features.filter((f) => f !== name) : [...features, name] });
  }

  /** A new socket of the page's own session: an instructor's page hosts its room on it again. */
  onOpen() {
    if (this.classroom.projecting) return; // showing a student's run: its own waits until after
    super.onOpen();
    this.classroom.room.hostOnSession();
  }

  /** The page's own session's messages, or (`fromRoom`) the room's it follows or projects. */
  onMessage(message, bytes, fromRoom = false) {
    if (this.classroom.projecting && !fromRoom) return;
    super.onMessage(message, bytes);
  }

  resetViews() {
    this.lastStep = -1;
    this.grids = null;
    this.showUnstable(null);
    this.chart.reset();
    this.heatmap.reset();
    this.network.reset();
  }

  onData({ train, test, domain, problem }) {
    this.heatmap.update({ train, test, domain, problem });
  }

  onFrame(frame) {
    // A new run (a restart, or a change the server applied before training): a new history.
    if (frame.step === 0 || frame.step < this.lastStep) {
      this.chart.reset();
      this.showUnstable(null);
      this.lastStep = -1;
    }
    if (frame.step !== this.lastStep) {
      this.chart.append(frame.epoch, [frame.loss, frame.test_loss]);
      if (frame.diverged) this.chart.mark(frame.epoch, "diverged");
    }
    this.lastStep = frame.step;
    this.startLoss ??= frame.loss;
    // Before the loss becomes inf/NaN ("diverged"), a loss above its start says the same sooner.
    if (!frame.diverged && frame.loss > this.startLoss * UNSTABLE_RISE) this.showUnstable(frame.loss);
    if (frame.diverged) $("unstable-banner").hidden = true;
  }

  /** Shows the unstable warning for `loss` (it stays until a reset), or hides it and forgets the start. */
  showUnstable(loss) {
    if (loss === null) this.startLoss = null;
    else $("unstable-losses").textContent = `${formatLoss(this.startLoss)} → ${formatLoss(loss)}`;
    $("unstable-banner").hidden = loss === null;
  }

  draw(frame, bytes) {
    const { outputGrid, neuronGrids } = splitGrids(frame, bytes);
    this.network.update({
      ...frame, neuronGrids, outputGrid,
      neuronGridSize: frame.neuron_grid_size, gridSize: frame.grid_size,
    });
    // Until the server applies a change of features, its frames are for the old inputs.
    if (frame.layers[0] === this.state.features.length) {
      this.neuronLines = firstLayerLines(this.state.features, frame);
    }
    this.grids = { outputGrid, neuronGrids, size: frame.grid_size, neuronSize: frame.neuron_grid_size };
    this.showLines({ domain: frame.domain });
    this.showHeatmap();
    $("epoch").textContent = Math.floor(frame.epoch).toLocaleString("en");
    $("step-count").textContent = frame.step.toLocaleString("en");
    $("train-loss").textContent = frame.diverged ? "diverged" : formatLoss(frame.loss);
    $("test-loss").textContent = frame.diverged ? "diverged" : formatLoss(frame.test_loss);
    $("train-accuracy").textContent = frame.diverged ? "" : formatAccuracy(frame.accuracy);
    $("test-accuracy").textContent = frame.diverged ? "" : formatAccuracy(frame.test_accuracy);
  }

  /** The big heatmap: the output, or the picture of the neuron or feature the pointer is on. */
  showHeatmap() {
    const { grids, focused } = this;
    const neuron = focused && "layer" in focused ? grids?.neuronGrids[focused.layer]?.[focused.index] : null;
    let caption = "";
    if (focused?.feature) {
      const { featureGrids, featureGridSize } = this.network;
      this.heatmap.update({ grid: featureGrids[focused.feature], size: featureGridSize });
      caption = `feature ${FEATURE_LABELS[focused.feature]}`;
    } else if (neuron) {
      this.heatmap.update({ grid: neuron, size: grids.neuronSize });
      caption = `neuron ${focused.index + 1} of layer ${focused.layer + 1}`;
    } else if (grids) this.heatmap.update({ grid: grids.outputGrid, size: grids.size });
    else this.heatmap.reset();
    $("heatmap-shows").textContent = caption && `· ${caption}`;
  }

  showState() {
    const { hidden, problem } = this.state;
    this.network.setArchitecture(this.state);
    for (const button of document.querySelectorAll("[data-prop=dataset]")) {
      button.hidden = !DATASETS[problem].includes(button.dataset.value);
    }
    for (const el of document.querySelectorAll("[data-problem]")) el.hidden = el.dataset.problem !== problem;
    this.heatmap.update({ showTest: this.state.show_test });
    this.showLines();
    $("layer-count").value = `${hidden.length} hidden layer${hidden.length === 1 ? "" : "s"}`;
    $("add-layer").disabled = hidden.length >= MAX_LAYERS;
    $("remove-layer").disabled = hidden.length === 0;
  }

  /** Draws the first layer's lines (if shown) in one heatmap update with `heatmapData`. */
  showLines(heatmapData = {}) {
    const { lines, note } = this.neuronLines;
    this.heatmap.update({ ...heatmapData, lines: this.state.lines ? lines : [] });
    $("lines-note").textContent = note;
    $("lines-note").hidden = !this.state.lines || !note;
  }
}

new MlpLab();
