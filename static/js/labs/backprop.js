// The backpropagation lab's glue: inputs and buttons → /api/backprop → views. All math runs on the
// server (models/backprop.py); this module asks, keeps the page state, and tells the views to draw.

import { LossChart } from "../views/backpropLossChart.js";
import { ChainDiagram } from "../views/chainDiagram.js";
import { buildSteps, describeChain, formatValue, revealedValues } from "../views/chainSteps.js";
import { GradientDepthChart } from "../views/gradientDepthChart.js";
import { GradientTable } from "../views/gradientTable.js";
import { postJSON } from "../api.js";

const BASE_DEPTH = 3;
const MAX_DEPTH = 10;
const STEPS_PER_TICK = 5; // gradient steps per request while "keep stepping" runs
const TICK_MS = 150;
const MAX_HISTORY = 1000; // "keep stepping" pauses itself after this many steps
const TYPING_MS = 250;

/** Page state ⇄ URL hash, one row per property (as playground's State.PROPS): a link reproduces it. */
const PROPS = [
  { name: "x", type: "number", fallback: 1 },
  { name: "y", type: "number", fallback: 1 },
  { name: "w", type: "numbers", fallback: [0.5, -1, 2] },
  { name: "b", type: "numbers", fallback: null },
  { name: "activation", type: "choice", choices: ["sigmoid", "tanh", "relu"], fallback: "sigmoid" },
  { name: "loss", type: "choice", choices: ["cross_entropy", "squared_error"], fallback: "cross_entropy" },
  { name: "lr", type: "number", fallback: 0.5 },
  { name: "deep", type: "boolean", fallback: false },
];

function parseProp(prop, text) {
  if (text === null) return prop.fallback;
  if (prop.type === "number") return Number.isFinite(Number(text)) && text !== "" ? Number(text) : prop.fallback;
  if (prop.type === "numbers") {
    const list = text.split(",").map(Number);
    const ok = list.length >= 1 && list.length <= MAX_DEPTH && list.every(Number.isFinite);
    return ok ? list : prop.fallback;
  }
  if (prop.type === "choice") return prop.choices.includes(text) ? text : prop.fallback;
  return text === "1";
}

function readHash() {
  const query = new URLSearchParams(location.hash.slice(1));
  const params = Object.fromEntries(PROPS.map((p) => [p.name, parseProp(p, query.get(p.name))]));
  if (params.b) params.b = resized(params.b, params.w.length, 0);
  return params;
}

function writeHash(params) {
  const parts = PROPS.filter((p) => params[p.name] !== null).map((p) => {
    const v = params[p.name];
    return `${p.name}=${p.type === "numbers" ? v.join(",") : p.type === "boolean" ? Number(v) : v}`;
  });
  history.replaceState(null, "", `#${parts.join("&")}`);
}

const resized = (list, n, fill) => Array.from({ length: n }, (_, i) => list[i] ?? fill);
const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const views = {
  diagram: new ChainDiagram($("bp-diagram")),
  table: new GradientTable($("bp-grad-table")),
  lossChart: new LossChart($("bp-loss-chart")),
  depthChart: new GradientDepthChart($("bp-depth-chart")),
};
const state = { params: readHash(), result: null, steps: [], shown: 0, losses: [], running: false, asked: 0 };

function chainBody({ x, y, w, b, activation, loss }) {
  return { x, y, w, b, activation, loss };
}

function showError(message) {
  $("bp-error").textContent = message;
  $("bp-error").hidden = !message;
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
  if (params.deep) {
    const weights = result.gradients.filter((g) => g.param.startsWith("w"));
    views.depthChart.update({ labels: weights.map((g) => g.param), magnitudes: weights.map((g) => Math.abs(g.tape)) });
  }
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
  const { x, y, w, b, activation, loss, lr, deep } = state.params;
  $("bp-x").value = x;
  $("bp-y").value = y;
  $("bp-lr").value = lr;
  $("bp-bias").checked = b !== null;
  $("bp-bias-legend").hidden = b === null;
  $("bp-activation").value = activation;
  $("bp-loss").value = loss;
  $("bp-deep").checked = deep;
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
  writeHash(state.params);
  state.losses = [];
  views.lossChart.reset();
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
  views.lossChart.update({ losses: state.losses });
  writeHash(state.params);
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
  $("bp-x").addEventListener("input", (e) => edit(() => (state.params.x = Number(e.target.value)), true));
  $("bp-y").addEventListener("input", (e) => edit(() => (state.params.y = Number(e.target.value)), true));
  $("bp-lr").addEventListener("input", (e) => {
    state.params.lr = Number(e.target.value);
    writeHash(state.params);
  });
  $("bp-activation").addEventListener("change", (e) => edit(() => (state.params.activation = e.target.value)));
  $("bp-loss").addEventListener("change", (e) => edit(() => (state.params.loss = e.target.value)));
  $("bp-bias").addEventListener("change", (e) =>
    edit(() => {
      state.params.b = e.target.checked ? state.params.w.map(() => 0) : null;
      renderInputs();
    }),
  );
  $("bp-deep").addEventListener("change", (e) =>
    edit(() => {
      state.params.deep = e.target.checked;
      setDepth(e.target.checked ? MAX_DEPTH : BASE_DEPTH);
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
wire();
analyse();
