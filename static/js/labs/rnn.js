// The "Recurrent networks" lab page: the LiveLab base with this lab's props and views — the network
// unrolled in time with a time scrubber, the states over time, prediction vs target (teacher-forced
// and free-running), generated text, the losses, gradients through time, the recurrent matrix's
// eigenvalues, and the memory curve of the three cells.
import { LiveLab } from "../lab/liveLab.js";
import { $, errors } from "../lab/page.js";
import { Type, configProps } from "../lab/state.js";
import * as protocol from "../protocol/rnn.js";
import { LineChart, lossChart } from "../views/lineChart.js";
import { readArrays } from "./rnn/arrays.js";
import { EigenPlot } from "./rnn/eigen.js";
import { GradientHistory, StateHeatmap, scaleOf, stateScales } from "./rnn/heatmaps.js";
import { GATE_LABELS, UnrolledView } from "./rnn/unrolled.js";

const { CELLS, GATES, LIMITS, MAX_TEXT_BYTES, OPTIMIZERS, SERVER_MESSAGES, TASKS } = protocol;
const MAX_T = LIMITS.length[1] - 1;
/** What the states heatmap can show: h, an LSTM's c, any cell's gates. */
const STATE_ARRAYS = ["h", "c", ...new Set(Object.values(GATES).flat())];
const ARRAY_LABELS = { h: "hidden state h", c: "cell state c", ...GATE_LABELS };
const DELAY_TASKS = ["recall", "parity"];

/** Every RnnConfig field, then what only the page (and the link) holds: the step looked at. */
const PROPS = configProps(protocol, [
  { name: "task", type: Type.ENUM, options: TASKS },
  { name: "cell", type: Type.ENUM, options: CELLS },
  { name: "units", type: Type.INT },
  { name: "length", type: Type.INT },
  { name: "period", type: Type.NUMBER },
  { name: "noise", type: Type.NUMBER },
  { name: "delay", type: Type.INT },
  // The nursery rhyme stays out of the link; a pasted text travels in it.
  { name: "text", type: Type.STRING, omitDefault: true },
  { name: "temperature", type: Type.NUMBER },
  { name: "learning_rate", type: Type.NUMBER },
  { name: "optimizer", type: Type.ENUM, options: OPTIMIZERS },
  { name: "clip_norm", type: Type.NUMBER },
  { name: "recurrent_scale", type: Type.NUMBER },
  { name: "seed", type: Type.INT },
  { name: "speed", type: Type.INT },
  { name: "memory_curve", type: Type.BOOLEAN },
  { name: "t", type: Type.INT, range: [0, MAX_T], default: 0, omitDefault: true },
  { name: "show", type: Type.ENUM, options: STATE_ARRAYS, default: "h", omitDefault: true },
]);

/** Cell colours and dashes, so the three curves differ without colour vision too. */
const CELL_SERIES = {
  simple_rnn: { name: "SimpleRNN", color: "#d55e00", dash: "dot" },
  gru: { name: "GRU", color: "#009e73", dash: "dash" },
  lstm: { name: "LSTM", color: "#0072b2", dash: "solid" },
};
/** How long a control the server refused stays outlined. */
const FIELD_ERROR_MS = 6000;

const utf8Bytes = (text) => new TextEncoder().encode(text).length;
const fmt = (v, digits = 3) => (v === null || v === undefined ? "–" : Number(v).toPrecision(digits));
const range = (n) => Array.from({ length: n }, (_, i) => i);
const formatBytes = (n) => n.toLocaleString("en");

/** Why a text cannot be sent, or "" (the server checks the rest and says so in an `error`). */
function textProblem(text) {
  const bytes = utf8Bytes(text);
  if (bytes <= MAX_TEXT_BYTES) return "";
  return `Invalid text: it is ${formatBytes(bytes)} bytes of UTF-8; at most ${formatBytes(MAX_TEXT_BYTES)} ` +
    "are allowed. Shorten it: nothing was sent.";
}

class RnnLab extends LiveLab {
  constructor() {
    super({ slug: "rnn", props: PROPS, protocol });
    // A link may hold a text the server would refuse, or one too large for the socket: not sent.
    if (textProblem(this.state.text)) {
      this.rejected.push(`text (${formatBytes(utf8Bytes(this.state.text))} bytes)`);
      this.state.text = protocol.CONFIG_DEFAULTS.text;
    }
    this.data = null;
    this.model = null; // the last figures: arrays and what they mean
    this.lastStep = -1;
    this.textDirty = false;
    this.scales = stateScales();
    const chart = (id, options) => new LineChart($(id), { fontSize: 14, margin: { l: 56, r: 12, t: 30, b: 42 }, ...options });
    this.lossChart = lossChart($("loss-chart"), {
      x: "training step",
      names: ["train", "validation"],
      hint: "Press Step or Play",
    });
    this.predictionChart = chart("prediction-chart", {
      x: { title: "time step t" }, y: { title: "" }, legend: "top", hint: "Waiting for the first frame",
    });
    this.gradientChart = chart("gradient-chart", {
      x: { title: "time step t" }, y: { title: "‖∂ℓ/∂hₜ‖", log: true },
      hint: "Press Step or Play",
    });
    this.memoryChart = chart("memory-chart", {
      x: { title: "delay k", category: true }, y: { title: "accuracy", range: [0, 1.05] }, legend: "top",
      hint: "Measured as the session trains",
    });
    this.unrolled = new UnrolledView($("unrolled"), $("step-detail"), (t) => this.set({ t }));
    this.stateHeatmap = new StateHeatmap($("state-heatmap"), $("state-cursor"), (t) => this.set({ t }));
    this.gradients = new GradientHistory($("gradient-heatmap"));
    this.eigen = new EigenPlot($("eigenvalues"));
    this.bindText();
    $("heatmap-of").addEventListener("change", (e) => this.set({ show: e.target.value }));
    this.start();
  }

  bindText() {
    const area = $("text");
    area.addEventListener("input", () => {
      this.textDirty = true;
      this.showTextBytes();
    });
    $("use-text").addEventListener("click", () => this.useText());
  }

  /** Sends the pasted text, unless it is too long for the server (said here, not sent). */
  useText() {
    const text = $("text").value;
    const problem = textProblem(text);
    if (problem) {
      this.markField("text");
      errors.show(problem, "text");
      return;
    }
    errors.clear("text");
    this.textDirty = false;
    this.set({ text, task: "text" });
  }

  showTextBytes() {
    const bytes = utf8Bytes($("text").value);
    const over = bytes > MAX_TEXT_BYTES;
    $("text-bytes").textContent = `${formatBytes(bytes)} / ${formatBytes(MAX_TEXT_BYTES)} bytes${over ? " — too long" : ""}`;
    $("text-bytes").classList.toggle("over", over);
  }

  /** Mirrors the server's rule: a delay not below the length comes down with it; t stays inside. */
  constrain(changes) {
    const next = { ...this.state, ...changes };
    const fixed = { ...changes };
    if (DELAY_TASKS.includes(next.task) && next.delay >= next.length) fixed.delay = next.length - 1;
    if (next.t >= next.length) fixed.t = next.length - 1;
    return fixed;
  }

  onMessage(message, bytes) {
    if (message.type === SERVER_MESSAGES.ERROR && message.field) this.markField(message.field);
    return super.onMessage(message, bytes);
  }

  /** Outlines the control of a field the server (or this page) refused, for a while. */
  markField(field) {
    const control = field === "text" ? $("text") : document.querySelector(`[data-prop="${CSS.escape(field)}"]`);
    if (!control) return;
    control.classList.add("field-error");
    setTimeout(() => control.classList.remove("field-error"), FIELD_ERROR_MS);
  }

  resetViews() {
    this.model = null;
    this.lastStep = -1;
    this.gradientStep = this.curveStep = undefined;
    this.lossChart.reset();
    this.gradients.reset();
    this.unrolled.reset();
    this.stateHeatmap.reset();
  }

  onData(message) {
    this.data = message;
    this.model = null;
    this.lastStep = -1;
    this.gradientStep = undefined;
    this.lossChart.reset();
    this.gradients.reset();
    this.stateHeatmap.reset();
    this.showState();
  }

  /**
   * Frames before the first data have nothing to be read against; those before the server applied
   * our config (the first one is the default session's) would draw another network than the one set.
   */
  isStale(frame) {
    return super.isStale(frame) || !this.data || frame.version < this.session.sent;
  }

  onFrame(frame) {
    if (frame.step === 0 || frame.step < this.lastStep) {
      this.chartedStep = undefined;
      this.lossChart.reset();
      this.gradients.reset();
    }
    this.lastStep = frame.step;
    // Validation losses come with the figures; a paused session's frames repeat a step: one point.
    if (!frame.figures || frame.diverged || frame.step === this.chartedStep) return;
    this.chartedStep = frame.step;
    this.lossChart.append(frame.step, [frame.loss, frame.val_loss]);
  }

  draw(frame, bytes) {
    $("step-count").textContent = frame.step.toLocaleString("en");
    // Under load (or for a large network) the server trains fewer steps than chosen; frames keep coming.
    if (frame.running) {
      const n = frame.steps_per_frame;
      $("steps-per-frame").textContent = n < this.state.speed ? `${n} of ${this.state.speed}` : `${n}`;
    }
    $("train-loss").textContent = frame.diverged ? "diverged" : fmt(frame.loss);
    if (frame.figures) {
      $("val-loss").textContent = fmt(frame.val_loss);
      $("val-accuracy").textContent = frame.val_accuracy === null ? "–" : `${Math.round(frame.val_accuracy * 100)} %`;
    }
    if (frame.sample !== null) $("sample").textContent = frame.sample;
    this.showMemoryCurve(frame.memory_curve);
    if (!frame.figures || !bytes.length) return;
    const arrays = readArrays(frame, bytes);
    const { kind, vocabulary, chance, warmup } = this.data;
    this.model = {
      arrays, kind, vocabulary, chance, warmup, cell: frame.cell, units: frame.units,
      gates: frame.gates, scales: this.scales, step: frame.step,
    };
    if (this.model.step !== this.gradientStep) {
      this.gradientStep = this.model.step;
      const span = this.gradients.push(arrays.grad_norm.values);
      $("gradient-legend").textContent = "‖∂ℓ/∂hₜ‖ for the loss ℓ at the last step, one row per moment of " +
        `training (newest at the bottom); colour: 1e${span[0].toFixed(1)} (pale) to 1e${span[1].toFixed(1)} (dark).`;
    }
    $("spectral-radius").textContent = fmt(frame.spectral_radius);
    this.eigen.update(arrays.eigenvalues);
    this.showHeatmapChoices();
    this.drawFigures();
  }

  /** Everything drawn from the last figures that also depends on the step chosen. */
  drawFigures() {
    const m = this.model;
    if (!m) return;
    const t = Math.min(this.state.t, m.arrays.x.values.length - 1);
    this.unrolled.update(m, t);
    const shown = m.arrays[this.state.show] ? this.state.show : "h";
    const array = m.arrays[shown];
    this.stateHeatmap.update(array, scaleOf(array, m.scales));
    this.stateHeatmap.setCursor(t);
    $("state-legend").textContent = `${ARRAY_LABELS[shown]}: one row per unit, one column per step ` +
      `(click one). Colour: ${array.lo === 0 ? "white 0 → green 1" : `orange ${fmt(array.lo, 2)} → pale 0 → blue ${fmt(array.hi, 2)}`}.`;
    this.drawPrediction(m, t);
    const steps = range(m.arrays.grad_norm.values.length);
    this.gradientChart.update({
      series: [{ x: steps, y: Array.from(m.arrays.grad_norm.values), color: "#7b3294", markers: 4 }],
      marks: [{ x: t }],
    });
  }

  drawPrediction(m, t) {
    const { arrays, kind } = m;
    const steps = range(arrays.x.values.length);
    if (kind === "forecast") {
      this.predictionChart.update({
        series: [
          { name: "target", x: steps, y: Array.from(arrays.target.values), color: "#1b1f24", width: 2 },
          { name: "teacher-forced", x: steps, y: Array.from(arrays.prediction.values), color: "#0072b2" },
          { name: "free-running", x: steps, y: Array.from(arrays.free_running.values), color: "#d55e00", dash: "dash" },
        ],
        marks: [{ x: m.warmup - 0.5, dash: "dash", width: 1.5 }, { x: t }],
        y: { title: "value", range: undefined },
      });
      $("prediction-note").textContent = `Teacher-forced: each step is fed the true value. Free-running: after ` +
        `${m.warmup} steps (the dashed line) it is fed its own predictions, and its errors compound.`;
      return;
    }
    const scored = arrays.scored.values;
    const p = steps.map((s) => (scored[s] > 0 ? arrays.probability.values[s] : null));
    const series = [{ name: "p(target)", x: steps, y: p, color: "#0072b2", markers: 6 }];
    if (m.chance !== null) series.push({ name: "chance", x: steps, y: steps.map(() => m.chance), color: "#57606a", dash: "dot", width: 1.5 });
    this.predictionChart.update({ series, marks: [{ x: t }], y: { title: "p(target)", range: [0, 1.05] } });
    $("prediction-note").textContent = kind === "text"
      ? "The probability the network gave the right next character, at each step."
      : "The probability the network gave the right answer, at each step whose answer is scored.";
  }

  showHeatmapChoices() {
    const select = $("heatmap-of");
    const names = STATE_ARRAYS.filter((n) => this.model.arrays[n]);
    if (select.dataset.names !== names.join()) {
      select.replaceChildren(...names.map((n) => new Option(ARRAY_LABELS[n], n)));
      select.dataset.names = names.join();
    }
    select.value = names.includes(this.state.show) ? this.state.show : "h";
  }

  showMemoryCurve(curve) {
    $("memory-note").textContent = curve
      ? `${curve.task.replace("_", " ")} task, ${curve.units} units, trained ${curve.step} of ${curve.steps} steps` +
        `${curve.done ? " (done)" : " so far"}. Chance: ${Math.round(curve.chance * 100)} %.`
      : "";
    if (!curve) this.curveStep = undefined; // one turned on again starts drawing afresh
    if (!curve || curve.step === this.curveStep) return;
    this.curveStep = curve.step;
    const delays = curve.delays.map(String); // evenly spaced: they double
    const series = curve.cells.map((cell, i) => ({
      ...CELL_SERIES[cell], x: delays, y: curve.accuracy[i], markers: 7,
    }));
    series.push({ name: "chance", x: delays, y: delays.map(() => curve.chance), color: "#57606a", dash: "dot", width: 1.5 });
    this.memoryChart.update({ series });
  }

  /** Shows the local state in the parts of the page that depend on it only. */
  showState() {
    const s = this.state;
    const root = $("lab");
    root.querySelectorAll("[data-task]").forEach((el) => { el.hidden = !el.dataset.task.split(" ").includes(s.task); });
    const kind = this.data?.kind;
    root.querySelectorAll("[data-kind]").forEach((el) => { el.hidden = !el.dataset.kind.split(" ").includes(kind); });
    root.querySelector("[data-show-curve]").hidden = !s.memory_curve;
    $("delay").max = String(s.length - 1);
    // The slider clamped t to its old range when the controls showed it: set it again.
    const t = Math.min(s.t, (this.model?.arrays.x.values.length ?? s.length) - 1);
    Object.assign($("time"), { max: String(s.length - 1), value: String(t) });
    $("time-value").value = `t = ${t}`;
    if (!this.textDirty) $("text").value = s.text;
    this.showTextBytes();
    this.drawFigures();
  }
}

new RnnLab();
