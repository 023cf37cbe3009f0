// The backpropagation lab's glue: inputs and buttons → /api/backprop → views. All math runs on the
// server (models/backprop.py); this module asks, keeps the page state, and tells the views to draw.

import { postJSON } from "../lab/api.js";
import { $, choicesOf, errors } from "../lab/page.js";
import { LinkState, Type } from "../lab/state.js";
import { Controls } from "../views/controls.js";
import { LineChart } from "../views/lineChart.js";
import { ChainDiagram } from "./backprop/chainDiagram.js";
import { buildSteps, describeChain, formatValue, revealedValues } from "./backprop/chainSteps.js";
import { GradientTable } from "./backprop/gradientTable.js";

const BASE_DEPTH = 3;
const MAX_DEPTH = 10;
const STEPS_PER_TICK = 5; // gradient steps per request while "keep stepping" runs
const TICK_MS = 150;
const MAX_HISTORY = 1000; // "keep stepping" pauses itself after this many steps
const TYPING_MS = 250;
/** More steps than this are drawn as a bare line, fewer with a marker per step. */
const MARKED_STEPS = 40;

/** The page's state in the URL: a link reproduces the chain, its weights and the learning rate. */
const link = new LinkState([
  { name: "x", type: Type.NUMBER, default: 1 },
  { name: "y", type: Type.NUMBER, default: 1 },
  { name: "w", type: Type.NUMBERS, length: [1, MAX_DEPTH], default: [0.5, -1, 2] },
  { name: "b", type: Type.NUMBERS, length: [1, MAX_DEPTH], default: null },
  { name: "activation", type: Type.ENUM, options: choicesOf($("bp-activation")), default: "sigmoid" },
  { name: "loss", type: Type.ENUM, options: choicesOf($("bp-loss")), default: "cross_entropy" },
  { name: "lr", type: Type.NUMBER, default: 0.5 },
  { name: "deep", type: Type.BOOLEAN, default: false },
]);

const resized = (list, n, fill) => Array.from({ length: n }, (_, i) => list[i] ?? fill);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function readLink() {
  const { state, rejected } = link.read();
  if (state.b) state.b = resized(state.b, state.w.length, 0);
  if (rejected.length) errors.show(`Ignored in the link: ${rejected.join(", ")}`, "link");
  return state;
}

const views = {
  diagram: new ChainDiagram($("bp-diagram")),
  table: new GradientTable($("bp-grad-table")),
  lossChart: new LineChart($("bp-loss-chart"), {
    x: { title: "step", fromZero: true },
    y: { title: "loss", fromZero: true },
    height: 260,
    margin: { l: 70, r: 16, t: 8, b: 52 },
    hint: "Press “One step”<br>or “Keep stepping”",
  }),
  depthChart: new LineChart($("bp-depth-chart"), {
    x: { title: "weight (layer)", category: true },
    y: { title: "|∂loss/∂wi|", log: true },
    height: 280,
    margin: { l: 80, r: 16, t: 8, b: 52 },
  }),
};
const state = { params: readLink(), result: null, steps: [], shown: 0, losses: [], running: false, asked: 0 };
/** The learning rate the link holds: one the server accepts, not a rejected one being typed. */
state.linkedLr = allowedLr(state.params.lr) ? state.params.lr : link.props.find((p) => p.name === "lr").default;

function writeLink() {
  link.write({ ...state.params, lr: state.linkedLr });
}

/** Within the lr input's min and max, the server's range. */
function allowedLr(value) {
  const input = $("bp-lr");
  return Number.isFinite(value) && value >= Number(input.min) && value <= Number(input.max);
}
const controls = new Controls($("lab"), (name, value, final) => {
  if (name === "deep") {
    edit(() => {
      state.params.deep = value;
      setDepth(value ? MAX_DEPTH : BASE_DEPTH);
    });
  } else if (name === "lr") {
    state.params.lr = value;
    if (allowedLr(value)) state.linkedLr = value;
    writeLink();
  } else edit(() => (state.params[name] = value), !final);
});

function chainBody({ x, y, w, b, activation, loss }) {
  return { x, y, w, b, activation, loss };
}

function showError(message) {
  errors.show(message, "backprop");
}

/** Asks the server about the current parameters; `revealAll` after a gradient step. */
async function analyse({ revealAll = false } = {}) {
  const asked = ++state.asked;
  try {
    const result = await postJSON("/api/backprop", chainBody(state.params));
    if (asked !== state.asked) return; // a newer question is on its way
    const steps = buildSteps(state.params, result);
    const sameShape = steps.length === state.steps.length;
    state.result = result;
    state.steps = steps;
    state.shown = revealAll ? steps.length : sameShape ? state.shown : 0;
    showError("");
    render();
  } catch (error) {
    if (asked === state.asked) showError(error.message);
  }
}

function setFormula(node, text) {
  // ⟦…⟧ marks a product computed earlier and reused here.
  node.replaceChildren(
    ...text.split(/(⟦[^⟧]*⟧)/).filter(Boolean).map((part) => {
      if (!part.startsWith("⟦")) return part;
      const mark = document.createElement("mark");
      mark.textContent = part.slice(1, -1);
      mark.title = "computed once, earlier, and reused";
      return mark;
    }),
  );
}

function render() {
  const { params, result, steps, shown } = state;
  const current = steps[shown - 1];
  const next = steps[shown];
  const values = revealedValues(steps, shown);
  views.diagram.update({ ...params, values, active: current?.key ?? null, uses: current?.uses ?? [] });
  views.table.update({
    rows: result.gradients.map((g) => ({ ...g, derived: `g${g.param}` in values })),
    tolerance: result.tolerance,
  });
  $("bp-chain-formula").textContent = describeChain(params);
  setFormula($("bp-formula"), current ? current.formula : "Press “Forward step” to compute L1.");
  $("bp-detail").textContent = current ? current.detail : "";
  const forwardCount = steps.filter((s) => s.phase === "forward").length;
  $("bp-progress").textContent =
    shown <= forwardCount
      ? `forward ${shown} / ${forwardCount}`
      : `backward ${shown - forwardCount} / ${steps.length - forwardCount}`;
  $("bp-forward").disabled = next?.phase !== "forward";
  $("bp-backward").disabled = next?.phase !== "backward";
  $("bp-undo").disabled = shown === 0;
  $("bp-reset").disabled = shown === 0;
  $("bp-all").disabled = shown === steps.length;
  $("bp-vanish").hidden = !params.deep;
  document.querySelector(".bp").classList.toggle("is-deep", params.deep);
  if (params.deep) showGradientDepth(result.gradients.filter((g) => g.param.startsWith("w")));
}

/** The loss after every gradient-descent step so far. */
function showLosses() {
  const { losses } = state;
  views.lossChart.update({
    series: [{
      x: losses.map((_, i) => i), y: losses, color: "#0072b2", width: 3, markers: losses.length <= MARKED_STEPS,
      hover: "step %{x}: loss %{y:.6g}<extra></extra>",
    }],
  });
}

/**
 * |∂loss/∂wi| per layer on a log axis: how the gradient shrinks (or not) on its way back to the
 * first layer. A log axis cannot show 0: an exact 0 (underflow, or a dead relu) is an orange bar at
 * the floor, labelled 0.
 */
function showGradientDepth(weights) {
  const magnitudes = weights.map((g) => Math.abs(g.tape));
  const floor = Math.min(...magnitudes.filter((m) => m > 0), 1) / 10;
  views.depthChart.update({
    series: [{
      bars: true, x: weights.map((g) => g.param), y: magnitudes.map((m) => (m > 0 ? m : floor)),
      colors: magnitudes.map((m) => (m > 0 ? "#0072b2" : "#e69f00")),
      labels: magnitudes.map((m) => (m > 0 ? m.toExponential(1) : "0")),
      hover: "%{x}: %{text}<extra></extra>",
    }],
  });
}

function numberInput(id, label, value, onInput) {
  const wrap = document.createElement("label");
  wrap.htmlFor = id;
  wrap.textContent = `${label} `;
  const input = document.createElement("input");
  // Shown to 6 digits after a gradient step; the state keeps every digit.
  Object.assign(input, { id, type: "number", step: "0.1", min: "-1000", max: "1000", value: Number(value.toPrecision(6)) });
  input.addEventListener("input", () => onInput(Number(input.value)));
  wrap.append(input);
  return wrap;
}

function renderInputs() {
  const { w, b, deep } = state.params;
  controls.update(state.params);
  $("bp-bias").checked = b !== null;
  $("bp-bias-legend").hidden = b === null;
  $("bp-depth-label").hidden = !deep;
  $("bp-depth").value = w.length;
  $("bp-depth-out").value = w.length;
  const rows = w.flatMap((wi, i) => [
    numberInput(`bp-w${i + 1}`, `w${i + 1}`, wi, (v) => edit(() => (state.params.w[i] = v), true)),
    ...(b ? [numberInput(`bp-b${i + 1}`, `b${i + 1}`, b[i], (v) => edit(() => (state.params.b[i] = v), true))] : []),
  ]);
  $("bp-weights").replaceChildren(...rows);
  $("bp-weights").style.gridTemplateColumns = b || w.length > BASE_DEPTH ? "1fr 1fr" : "1fr 1fr 1fr";
}

let typing = null;
/** Applies a change to the parameters; a new chain starts a new loss history. */
function edit(change, debounce = false) {
  change();
  writeLink();
  state.losses = [];
  showLosses();
  $("bp-loss-before").textContent = $("bp-loss-after").textContent = "—";
  clearTimeout(typing);
  if (debounce) typing = setTimeout(analyse, TYPING_MS);
  else analyse();
}

function setDepth(n) {
  const { params } = state;
  params.w = resized(params.w, n, 1);
  if (params.b) params.b = resized(params.b, n, 0);
  renderInputs();
}

/** `count` gradient-descent steps on the server; returns false when the run had to stop early. */
async function descend(count) {
  // One run at a time: a second click must start from the weights the first one returns.
  $("bp-step").disabled = true;
  let run;
  try {
    run = await postJSON("/api/backprop/train", { ...chainBody(state.params), lr: state.params.lr, steps: count });
  } finally {
    $("bp-step").disabled = state.running;
  }
  state.losses = state.losses.length ? state.losses.concat(run.loss.slice(1)) : run.loss;
  state.params.w = run.w.at(-1);
  if (run.b) state.params.b = run.b.at(-1);
  $("bp-loss-before").textContent = formatValue(run.loss[0], 6);
  $("bp-loss-after").textContent = formatValue(run.loss.at(-1), 6);
  $("bp-stopped").textContent = run.stopped ? `Stopped: ${run.stopped}. Try a smaller learning rate.` : "";
  $("bp-stopped").hidden = !run.stopped;
  state.linkedLr = state.params.lr;
  showLosses();
  writeLink();
  renderInputs();
  await analyse({ revealAll: true });
  return run.stopped === null;
}

function setRunning(running) {
  state.running = running;
  $("bp-step").disabled = running;
  $("bp-run").textContent = running ? "Pause ⏸" : "Keep stepping ▶";
  $("bp-run").setAttribute("aria-pressed", String(running));
}

async function keepStepping() {
  setRunning(!state.running);
  try {
    while (state.running && state.losses.length <= MAX_HISTORY) {
      if (!(await descend(STEPS_PER_TICK))) break;
      await sleep(TICK_MS);
    }
  } catch (error) {
    showError(error.message);
  }
  setRunning(false);
}

function move(shown) {
  if (!state.result) return; // the first answer is still on its way
  state.shown = Math.max(0, Math.min(shown, state.steps.length));
  render();
}

function wire() {
  $("bp-bias").addEventListener("change", (e) =>
    edit(() => {
      state.params.b = e.target.checked ? state.params.w.map(() => 0) : null;
      renderInputs();
    }),
  );
  $("bp-depth").addEventListener("input", (e) => edit(() => setDepth(Number(e.target.value)), true));
  $("bp-forward").addEventListener("click", () => move(state.shown + 1));
  $("bp-backward").addEventListener("click", () => move(state.shown + 1));
  $("bp-undo").addEventListener("click", () => move(state.shown - 1));
  $("bp-reset").addEventListener("click", () => move(0));
  $("bp-all").addEventListener("click", () => move(state.steps.length));
  $("bp-step").addEventListener("click", () => descend(1).catch((error) => showError(error.message)));
  $("bp-run").addEventListener("click", keepStepping);
}

renderInputs();
showLosses();
wire();
analyse();
