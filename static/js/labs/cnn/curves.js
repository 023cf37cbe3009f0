// The loss and accuracy curves of one or more training runs on two shared line charts: per batch
// (the epoch's running mean, thin) and per epoch (train solid, validation dashed), x in epochs. A
// race's runs are overlaid, one colour per model.
import { LineChart } from "../../views/lineChart.js";

const COLORS = { scratch: "#0072b2", transfer: "#e69f00", finetune: "#009e73" };
const REDRAW_MS = 150;
/** On a phone the legend wraps to a row per series: room for it under the axis. */
const NARROW = window.innerWidth < 700;

/** A run's series of one metric ("loss" or "accuracy"). */
function seriesOf(run, metric) {
  const color = COLORS[run.model] ?? "#1b1f24";
  const name = run.model;
  return [
    { name: `${name} · per batch`, color, width: 1.2, x: run.steps.map((s) => s.x), y: run.steps.map((s) => s[metric]) },
    { name: `${name} · train`, color, markers: 6, x: run.epochs.map((e) => e.epoch), y: run.epochs.map((e) => e[metric]) },
    { name: `${name} · validation`, color, dash: "dash", markers: 6, x: run.epochs.map((e) => e.epoch), y: run.epochs.map((e) => e[`val_${metric}`]) },
  ];
}

export class Curves {
  /** @param {HTMLElement} lossElement @param {HTMLElement} accuracyElement */
  constructor(lossElement, accuracyElement) {
    const common = { x: { title: "epoch", fromZero: true }, legend: "bottom", fontSize: 14, margin: { b: NARROW ? 150 : 90 } };
    this.loss = new LineChart(lossElement, { ...common, y: { title: "loss", fromZero: true }, hint: "loss: train to see it fall" });
    this.accuracy = new LineChart(accuracyElement, { ...common, y: { title: "accuracy", range: [0, 1.02] }, hint: "accuracy: train to see it rise" });
    this.runs = [];
    this.timer = null;
  }

  /** Draws these runs ({model, steps: [{x, loss, accuracy}], epochs: [EpochPoint]}) soon. */
  update(runs) {
    this.runs = runs;
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.loss.update({ series: this.runs.flatMap((r) => seriesOf(r, "loss")) });
      this.accuracy.update({ series: this.runs.flatMap((r) => seriesOf(r, "accuracy")) });
    }, REDRAW_MS);
  }
}
