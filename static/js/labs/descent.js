// The gradient-descent lab's glue: controls → /api/descent (+ /sweep) → views. All math runs on the
// server (models/descent.py); this module keeps the page state, the URL hash and the rate rows.

import { DescentContour } from "../views/descentContour.js";
import { DescentLossChart } from "../views/descentLossChart.js";
import { DescentSweep } from "../views/descentSweep.js";
import { postJSON } from "../api.js";

const COLORS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00"];
const DEFAULT_MULTIPLES = [0.01, 0.1, 0.5, 1.05]; // × the critical rate 2/λmax: slow, good, zig-zag, overshoot
const LOG_LR = { min: -4, max: 3 }; // the sliders' range, log10 η (the server accepts 1e-6 … 1e3)
const SWEEP = { below: 1e-3, above: 20, count: 24 };
const TYPING_MS = 120;

/** Page state ⇄ URL hash, one row per property (as playground's State.PROPS): a link reproduces it. */
const PROPS = [
  { name: "surface", type: "choice", choices: ["quadratic", "linear_regression", "nonconvex"], fallback: "quadratic" },
  { name: "condition", type: "number", fallback: 10 },
  { name: "angle", type: "number", fallback: 30 },
  { name: "optimizer", type: "choice", choices: ["sgd", "momentum", "rmsprop", "adam"], fallback: "sgd" },
  { name: "steps", type: "number", fallback: 100 },
  { name: "lrs", type: "numbers", fallback: null },
  { name: "start", type: "numbers", fallback: null },
  { name: "step", type: "number", fallback: 0 },
  { name: "sel", type: "number", fallback: 0 },
  { name: "log", type: "boolean", fallback: true },
  { name: "view3d", type: "boolean", fallback: false },
];

function parseProp(prop, text) {
  if (text === null) return prop.fallback;
  if (prop.type === "number") return text !== "" && Number.isFinite(Number(text)) ? Number(text) : prop.fallback;
  if (prop.type === "numbers") {
    const list = text.split(",").map(Number);
    return list.length >= 1 && list.every(Number.isFinite) ? list : prop.fallback;
  }
  if (prop.type === "choice") return prop.choices.includes(text) ? text : prop.fallback;
  return text === "1";
}

function readHash() {
  const query = new URLSearchParams(location.hash.slice(1));
  return Object.fromEntries(PROPS.map((p) => [p.name, parseProp(p, query.get(p.name))]));
}

function writeHash(params) {
  const parts = PROPS.filter((p) => params[p.name] !== null).map((p) => {
    const v = params[p.name];
    const text = p.type === "numbers" ? v.map((x) => +x.toPrecision(4)).join(",") : p.type === "boolean" ? Number(v) : v;
    return `${p.name}=${text}`;
  });
  history.replaceState(null, "", `#${parts.join("&")}`);
}

const $ = (id) => document.getElementById(id);
const num = (x, digits = 3) => (x === null || x === undefined ? "—" : (+x.toPrecision(digits)).toString().replace("-", "−"));
const vec = (v) => `(${num(v[0])}, ${num(v[1])})`;

const state = { params: readHash(), surface: null, runs: null, sweep: null, asked: 0 };
const views = {
  contour: new DescentContour($("gd-contour"), (w0, w1) => {
    state.params.start = [+w0.toFixed(2), +w1.toFixed(2)];
    state.params.step = 0;
    schedule();
  }),
  loss: new DescentLossChart($("gd-loss-chart")),
  sweep: new DescentSweep($("gd-sweep-chart")),
};

function showError(message) {
  $("gd-error").textContent = message;
  $("gd-error").hidden = !message;
}

function surfaceBody() {
  const { surface, condition, angle, optimizer, steps } = state.params;
  return { surface, condition, angle, optimizer, steps, start: state.params.start ?? [0, 0] };
}

/** Asks for the runs and the sweep; a first visit or a new surface learns 2/λmax and the default start first. */
async function compute({ fresh = false } = {}) {
  const asked = ++state.asked;
  const params = state.params;
  try {
    if (fresh || !params.lrs || !params.start || !state.surface) {
      // (0, 0) lies in every surface's window; the old start may not.
      const probe = await postJSON("/api/descent", { ...surfaceBody(), start: [0, 0], learning_rates: [0.1], steps: 1 });
      if (asked !== state.asked) return;
      state.surface = probe.surface;
      if (fresh || !params.lrs) params.lrs = DEFAULT_MULTIPLES.map((m) => m * probe.surface.critical_lr);
      if (fresh || !params.start) params.start = probe.surface.default_start;
    }
    const critical = state.surface.critical_lr;
    const [result, sweep] = await Promise.all([
      postJSON("/api/descent", { ...surfaceBody(), learning_rates: params.lrs }),
      postJSON("/api/descent/sweep", {
        ...surfaceBody(),
        lr_min: Math.max(critical * SWEEP.below, 1e-6),
        lr_max: Math.min(critical * SWEEP.above, 1e3),
        count: SWEEP.count,
      }),
    ]);
    if (asked !== state.asked) return; // a newer question is on its way
    Object.assign(state, { surface: result.surface, runs: result.runs, sweep, divergence: result.divergence_factor });
    showError("");
    writeHash(params);
    render();
  } catch (error) {
    if (asked === state.asked) showError(error.message);
  }
}

let timer = null;
function schedule(options) {
  writeHash(state.params);
  clearTimeout(timer);
  timer = setTimeout(() => compute(options), TYPING_MS);
}

/** One row per learning rate: a log-scale slider, its value as η and as a multiple of 2/λmax. */
function buildRateRows() {
  state.rowsFor = state.params.lrs;
  const rows = $("gd-rates");
  rows.replaceChildren(
    ...state.params.lrs.map((lr, i) => {
      const row = document.createElement("div");
      row.className = "gd-rate";
      row.dataset.run = i;
      row.style.setProperty("--run", COLORS[i]);
      row.innerHTML = `
        <input type="radio" name="gd-sel" aria-label="show the update rule of run ${i + 1}">
        <label class="gd-rate-label"><span class="gd-swatch"></span><span class="gd-rate-value"></span>
          <input type="range" min="${LOG_LR.min}" max="${LOG_LR.max}" step="0.01" aria-label="learning rate ${i + 1} (log scale)">
        </label>
        <button type="button" class="gd-remove" aria-label="remove learning rate ${i + 1}">×</button>
        <span class="gd-status" aria-live="polite"></span>`;
      const slider = row.querySelector("input[type=range]");
      slider.value = Math.log10(lr);
      slider.addEventListener("input", () => {
        state.params.lrs[i] = 10 ** Number(slider.value);
        labelRate(row, state.params.lrs[i]);
        schedule();
      });
      row.querySelector("input[type=radio]").addEventListener("change", () => {
        state.params.sel = i;
        writeHash(state.params);
        render();
      });
      row.querySelector(".gd-remove").addEventListener("click", () => {
        state.params.lrs.splice(i, 1);
        state.params.sel = Math.min(state.params.sel, state.params.lrs.length - 1);
        buildRateRows();
        schedule();
      });
      labelRate(row, lr);
      return row;
    }),
  );
  $("gd-add").disabled = state.params.lrs.length >= COLORS.length;
  rows.querySelectorAll(".gd-remove").forEach((b) => {
    b.disabled = state.params.lrs.length === 1;
  });
}

function labelRate(row, lr) {
  const critical = state.surface?.critical_lr;
  const times = critical ? ` · ${num(lr / critical, 3)}× crit` : "";
  row.querySelector(".gd-rate-value").textContent = `η = ${num(lr)}${times}`;
}

function updateRule(run, k) {
  const opt = state.params.optimizer;
  if (run.diverged_at !== null && k >= run.diverged_at - 1) {
    const factor = state.divergence.toExponential(0).replace("e+", "e");
    return `Diverged at step ${run.diverged_at}: the loss ${run.loss[run.diverged_at] === null ? "became inf/NaN" : `reached ${num(run.loss[run.diverged_at])}, over ${factor} × the start loss`}. The run stops there.`;
  }
  const w = run.path[k];
  const next = run.path[k + 1];
  if (!next) return `Step ${k} of ${run.path.length - 1}: the run is over, loss ${num(run.loss[k], 4)}.`;
  const g = run.grad[k];
  const lr = run.lr;
  const loss = `loss ${num(run.loss[k], 4)} → ${num(run.loss[k + 1], 4)}`;
  if (opt === "sgd") {
    return `w${sub(k + 1)} = w${sub(k)} − η·∇loss(w${sub(k)}) = ${vec(w)} − ${num(lr)}·${vec(g)} = ${vec(next)};  ${loss}`;
  }
  const dw = [next[0] - w[0], next[1] - w[1]];
  return `∇loss(w${sub(k)}) = ${vec(g)};  ${opt} step: w${sub(k + 1)} = w${sub(k)} + Δw = ${vec(w)} + ${vec(dw)} = ${vec(next)};  ${loss}`;
}

const sub = (k) => String(k).replace(/\d/g, (d) => "₀₁₂₃₄₅₆₇₈₉"[d]);

function render() {
  const { params, surface, runs, sweep } = state;
  if (!runs || runs.length !== params.lrs.length) return;
  const colors = COLORS.slice(0, runs.length);
  if (state.rowsFor !== params.lrs) buildRateRows(); // new defaults after a change of surface
  params.step = Math.min(params.step, params.steps);
  params.sel = Math.min(Math.max(params.sel, 0), runs.length - 1);
  views.contour.update({ surface, runs, colors, step: params.step, selected: params.sel, show3d: params.view3d });
  views.loss.update({ runs, colors, step: params.step, log: params.log });
  views.sweep.update({
    rates: sweep.learning_rates,
    finalLoss: sweep.final_loss,
    critical: sweep.critical_lr,
    criticalExact: surface.critical_exact,
    marks: params.lrs,
    colors,
  });
  document.querySelectorAll(".gd-rate").forEach((row, i) => {
    const run = runs[i];
    row.querySelector("input[type=radio]").checked = i === params.sel;
    labelRate(row, run.lr);
    const status = row.querySelector(".gd-status");
    status.textContent = run.diverged_at !== null ? `✕ diverged at step ${run.diverged_at}` : `final loss ${num(run.final_loss, 3)}`;
    row.classList.toggle("is-diverged", run.diverged_at !== null);
  });
  $("gd-critical").textContent =
    `${surface.critical_exact ? "" : "≈ "}2/λmax = ${num(surface.critical_lr, 4)} (λ = ${surface.eigenvalues.map((v) => num(v, 3)).join(", ")} at the minimum)`;
  $("gd-step").max = params.steps;
  $("gd-step").value = params.step;
  $("gd-step-out").textContent = `${params.step} / ${params.steps}`;
  $("gd-rule").textContent = updateRule(runs[params.sel], params.step);
  $("gd-rule").style.setProperty("--run", colors[params.sel]);
}

function syncControls() {
  const p = state.params;
  $("gd-surface").value = p.surface;
  $("gd-optimizer").value = p.optimizer;
  $("gd-condition").value = Math.log10(p.condition);
  $("gd-condition-out").textContent = num(p.condition, 3);
  $("gd-angle").value = p.angle;
  $("gd-angle-out").textContent = `${p.angle}°`;
  $("gd-steps").value = p.steps;
  $("gd-steps-out").textContent = p.steps;
  $("gd-log").checked = p.log;
  $("gd-3d").checked = p.view3d;
  $("gd-quadratic").hidden = p.surface !== "quadratic";
}

function bind() {
  const p = state.params;
  $("gd-surface").addEventListener("change", (e) => {
    p.surface = e.target.value;
    p.step = 0;
    syncControls();
    schedule({ fresh: true });
  });
  $("gd-optimizer").addEventListener("change", (e) => {
    p.optimizer = e.target.value;
    schedule();
  });
  $("gd-condition").addEventListener("input", (e) => {
    p.condition = +(10 ** Number(e.target.value)).toPrecision(3);
    $("gd-condition-out").textContent = num(p.condition, 3);
    schedule();
  });
  $("gd-angle").addEventListener("input", (e) => {
    p.angle = Number(e.target.value);
    $("gd-angle-out").textContent = `${p.angle}°`;
    schedule();
  });
  $("gd-steps").addEventListener("input", (e) => {
    p.steps = Number(e.target.value);
    $("gd-steps-out").textContent = p.steps;
    schedule();
  });
  $("gd-step").addEventListener("input", (e) => {
    p.step = Number(e.target.value);
    writeHash(p);
    render();
  });
  $("gd-log").addEventListener("change", (e) => {
    p.log = e.target.checked;
    writeHash(p);
    render();
  });
  $("gd-3d").addEventListener("change", (e) => {
    p.view3d = e.target.checked;
    writeHash(p);
    render();
  });
  $("gd-add").addEventListener("click", () => {
    const last = p.lrs[p.lrs.length - 1];
    p.lrs.push(Math.min(last * 2, 10 ** LOG_LR.max));
    buildRateRows();
    schedule();
  });
  $("gd-defaults").addEventListener("click", () => {
    p.lrs = DEFAULT_MULTIPLES.map((m) => m * state.surface.critical_lr);
    buildRateRows();
    schedule();
  });
}

syncControls();
bind();
compute();
