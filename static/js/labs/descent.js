// The gradient-descent lab's glue: controls → /api/descent (+ /sweep) → views. All math runs on the
// server (models/descent.py); this module keeps the page state, its link and the rate rows.

import { postJSON } from "../lab/api.js";
import { $, choicesOf, errors } from "../lab/page.js";
import { LinkState, Type } from "../lab/state.js";
import { Controls } from "../views/controls.js";
import { LineChart } from "../views/lineChart.js";
import { DescentContour, hasWebGL } from "./descent/contour.js";

const COLORS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00"];
const DEFAULT_MULTIPLES = [0.01, 0.1, 0.5, 1.05]; // × the critical rate 2/λmax: slow, good, zig-zag, overshoot
const LOG_LR = { min: -4, max: 3 }; // the sliders' range, log10 η (the server accepts 1e-6 … 1e3)
const SWEEP = { below: 1e-3, above: 20, count: 24 };
const TYPING_MS = 120;
const BUSY_MS = 400;
const DIVERGED_MARK = 1.5; // a linear axis tops out at 1.6 × the start loss; a diverged ✕ sits below

/** The page's state in the URL: a link reproduces the runs. Rates and the start are asked from the
 *  server (2/λmax, the surface's start) when the link has none. */
const link = new LinkState([
  { name: "surface", type: Type.ENUM, options: choicesOf($("gd-surface")), default: "quadratic" },
  { name: "condition", type: Type.NUMBER, default: 10 },
  { name: "angle", type: Type.NUMBER, default: 30 },
  { name: "optimizer", type: Type.ENUM, options: choicesOf($("gd-optimizer")), default: "sgd" },
  { name: "steps", type: Type.INT, default: 100 },
  { name: "lrs", type: Type.NUMBERS, digits: 4, default: null },
  { name: "start", type: Type.NUMBERS, length: [2, 2], digits: 4, default: null },
  { name: "step", type: Type.INT, default: 0 },
  { name: "sel", type: Type.INT, default: 0 },
  { name: "log", type: Type.BOOLEAN, default: true },
  { name: "view3d", type: Type.BOOLEAN, default: false },
]);

function readLink() {
  const { state: params, rejected } = link.read();
  if (rejected.length) errors.show(`Ignored in the link: ${rejected.join(", ")}`, "link");
  return params;
}

const writeLink = () => link.write(state.params);
const num = (x, digits = 3) => (x === null || x === undefined ? "—" : (+x.toPrecision(digits)).toString().replace("-", "−"));
const vec = (v) => `(${num(v[0])}, ${num(v[1])})`;

const state = { params: readLink(), surface: null, runs: null, sweep: null, asked: 0 };
const views = {
  contour: new DescentContour($("gd-contour"), (w0, w1) => {
    state.params.start = [+w0.toFixed(2), +w1.toFixed(2)];
    state.params.step = 0;
    schedule();
  }),
  loss: new LineChart($("gd-loss-chart"), {
    x: { title: "step" },
    y: { title: "loss" },
    height: 360,
    legend: "top",
    margin: { l: 72, r: 16, b: 44 },
  }),
  sweep: new LineChart($("gd-sweep-chart"), {
    x: { title: "learning rate η (log)", log: true },
    y: { title: "final loss (log)", log: true },
    height: 320,
    margin: { l: 72, r: 16, t: 28, b: 52 },
  }),
};
const controls = new Controls($("lab"), (name, value) => {
  const p = state.params;
  p[name] = value;
  controls.update(p);
  if (name === "surface") {
    p.step = 0;
    syncControls();
    schedule({ fresh: true });
  } else if (["step", "log", "view3d"].includes(name)) {
    writeLink();
    render();
  } else schedule();
});

function showError(message) {
  errors.show(message, "descent");
}

function surfaceBody() {
  const { surface, condition, angle, optimizer, steps } = state.params;
  return { surface, condition, angle, optimizer, steps, start: state.params.start ?? [0, 0] };
}

/** Asks for the runs and the sweep; a first visit or a new surface learns 2/λmax and the default start first. */
async function compute({ fresh = false } = {}) {
  const asked = ++state.asked;
  const params = state.params;
  // Most answers take milliseconds; a surface's first use compiles it, so say so if it is slow.
  const busy = setTimeout(() => { $("gd-busy").hidden = false; }, BUSY_MS);
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
    writeLink();
    render();
  } catch (error) {
    if (asked === state.asked) showError(error.message);
  } finally {
    clearTimeout(busy);
    if (asked === state.asked) $("gd-busy").hidden = true;
  }
}

let timer = null;
function schedule(options) {
  writeLink();
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
        writeLink();
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
  $("gd-step").max = params.steps;
  controls.update(params);
  explainNo3d();
  views.contour.update({ surface, runs, colors, step: params.step, selected: params.sel, show3d: params.view3d });
  showLosses(runs, colors);
  showSweep(sweep, colors);
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
  $("gd-step-out").textContent = `${params.step} / ${params.steps}`;
  $("gd-rule").textContent = updateRule(runs[params.sel], params.step);
  $("gd-rule").style.setProperty("--run", colors[params.sel]);
}

/**
 * Loss against step, one line per learning rate, optionally on a log axis; a diverged run ends in a
 * red ✕ labelled with its step, and a dotted line marks the step shown.
 */
function showLosses(runs, colors) {
  const { log, step } = state.params;
  const finite = runs.flatMap((r) => r.loss.filter((v) => v !== null && (!log || v > 0)));
  const high = Math.max(...runs.map((r) => r.loss[0]));
  const lr = (run) => `η = ${run.lr.toPrecision(3)}`;
  views.loss.update({
    series: runs.map((run, i) => ({
      name: lr(run),
      x: run.loss.map((_, k) => k),
      y: run.loss.map((v) => (v !== null && log && v <= 0 ? null : v)),
      color: colors[i],
      width: 3,
      hover: `${lr(run)}<br>step %{x}: loss %{y:.4g}<extra></extra>`,
    })),
    crosses: runs.filter((run) => run.diverged_at !== null).map((run) => {
      const k = run.diverged_at;
      const last = run.loss[k] ?? run.loss[k - 1];
      return {
        x: k, y: log ? last : Math.min(last, high * DIVERGED_MARK),
        label: `diverged at step ${k}`, hover: `diverged at step ${k}`,
        side: k > run.loss.length / 2 ? "left" : "right",
      };
    }),
    marks: [{ x: step }],
    x: { range: [0, runs[0].loss.length - 1] },
    // Linear axis: the start loss sets the top, so a blown-up run cannot flatten the others to zero.
    y: log ? { title: "loss (log)", log: true } : { range: [Math.min(0, ...finite), high * 1.6] },
  });
}

/**
 * Final loss after N steps against the learning rate (both axes log): the good band, and the cliff
 * where descent overshoots. Diverged rates are red ✕ along the top; a dashed line marks 2/λmax and
 * thin coloured lines the rates being compared.
 */
function showSweep(sweep, colors) {
  const { learning_rates: rates, final_loss: finalLoss, critical_lr: critical } = sweep;
  const shown = finalLoss.filter((v) => v !== null && v > 0);
  const top = shown.length ? Math.max(...shown) * 10 : 1;
  const floor = shown.length ? Math.min(...shown) : 1e-12;
  const diverged = rates.filter((_, i) => finalLoss[i] === null);
  views.sweep.update({
    series: [{
      x: rates,
      // An exact 0 cannot sit on a log axis: drawn at the lowest positive value.
      y: finalLoss.map((v) => (v === null ? null : Math.max(v, floor))),
      color: "#0b2942", width: 3, markers: 8,
      hover: "η = %{x:.3g}: loss %{y:.3g}<extra></extra>",
    }],
    crosses: diverged.map((x, i) => ({
      x, y: top, size: 16, hover: "η = %{x:.3g}: diverged", ...(i === 0 ? { label: "diverged", side: "left" } : {}),
    })),
    marks: [
      { x: critical, color: "#000", dash: "dash", labelAt: "top",
        label: `${state.surface.critical_exact ? "" : "≈ "}2/λmax = ${critical.toPrecision(3)}` },
      ...state.params.lrs.map((x, i) => ({ x, color: colors[i], dash: "solid" })),
    ],
  });
}

function syncControls() {
  controls.update(state.params);
  $("gd-quadratic").hidden = state.params.surface !== "quadratic";
}

function bind() {
  const p = state.params;
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

/** Without WebGL the 3-D box turns off, and one line says why (a link asking for 3-D gets the map). */
function explainNo3d() {
  const box = $("gd-3d");
  if (!box.checked || hasWebGL()) return;
  box.checked = false;
  if (box.disabled) return; // said already
  box.disabled = true;
  const note = document.createElement("span");
  note.id = "gd-3d-note";
  note.className = "gd-note";
  note.textContent = "3-D view needs WebGL, which this browser does not offer: showing the 2-D map.";
  box.closest("label").after(note);
}

syncControls();
bind();
compute();
