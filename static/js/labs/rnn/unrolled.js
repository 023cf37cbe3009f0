// The network unrolled in time: one cell per step, each fed x_t and the state h_{t−1} its neighbour
// hands on, all with the same weights (drawn once, above the chain); and, for the chosen step, what
// the cell holds: x_t, h_t, and for an LSTM or GRU c_t and every gate's activations.
import { paintGrid } from "../../views/grid.js";
import { htmlElement } from "../../views/svg.js";
import { row } from "./arrays.js";
import { scaleOf } from "./heatmaps.js";

/** Width a cell of the chain takes with its arrow, and what its two ends take, in CSS pixels. */
const CELL_PX = 58;
const ENDS_PX = 150;
const MAX_CELLS = 15;
const CELL_NAMES = { simple_rnn: "SimpleRNN", gru: "GRU", lstm: "LSTM" };
/** What each cell's step computes, with its weights named once. */
const FORMULAS = {
  simple_rnn: "hₜ = tanh(W xₜ + U hₜ₋₁ + b)",
  gru: "gates z, r; hₜ = z ⊙ hₜ₋₁ + (1 − z) ⊙ h̃ₜ",
  lstm: "gates i, f, o; cₜ = f ⊙ cₜ₋₁ + i ⊙ gₜ; hₜ = o ⊙ tanh(cₜ)",
};
export const GATE_LABELS = {
  input_gate: "input gate i",
  forget_gate: "forget gate f",
  output_gate: "output gate o",
  update_gate: "update gate z",
  reset_gate: "reset gate r",
  candidate: "candidate",
};
const CANDIDATE = { lstm: "candidate g", gru: "candidate h̃" };

/** A symbol of the vocabulary as it can be read in a cell (space and newline made visible). */
export const symbol = (vocabulary, index) => {
  const s = vocabulary[Math.round(index)] ?? "?";
  return { " ": "␣", "\n": "↵", "\t": "⇥" }[s] ?? s;
};

/** How a frame's input, target and prediction at step t are written, per kind of task. */
export function stepValues({ arrays, kind, vocabulary }, t, digits = 2) {
  // -0.004 is written 0.00, not -0.00.
  const num = (v) => (Math.abs(v) >= 100 ? v.toExponential(0) : (Number(v.toFixed(digits)) || 0).toFixed(digits));
  const x = arrays.x.values[t];
  const target = arrays.target.values[t];
  const prediction = arrays.prediction.values[t];
  const scored = arrays.scored.values[t] > 0;
  if (kind === "forecast") {
    return { x: num(x), target: num(target), prediction: num(prediction), scored, right: null };
  }
  return {
    x: symbol(vocabulary, x),
    target: symbol(vocabulary, target),
    prediction: symbol(vocabulary, prediction),
    probability: arrays.probability.values[t],
    scored,
    right: Math.round(prediction) === Math.round(target),
  };
}

export class UnrolledView {
  /**
   * @param {HTMLElement} chain Where the unrolled cells go.
   * @param {HTMLElement} detail Where the chosen step's vectors go.
   * @param {(t: number) => void} onPick A cell was clicked.
   */
  constructor(chain, detail, onPick) {
    this.chain = chain;
    this.detail = detail;
    this.onPick = onPick;
    chain.addEventListener("click", (e) => {
      const cell = e.target.closest("[data-t]");
      if (cell) onPick(Number(cell.dataset.t));
    });
    this.reset();
  }

  reset() {
    this.chain.replaceChildren(htmlElement("p", "hint", "Waiting for the server's first frame (a network of a new shape takes a few seconds to build)."));
    this.detail.replaceChildren();
  }

  /**
   * @param {{arrays: object, kind: string, vocabulary: string[], cell: string, units: number,
   *   gates: string[], scales: object}} model A frame's figures and what they mean.
   * @param {number} t The chosen step.
   */
  update(model, t) {
    const steps = model.arrays.x.values.length;
    t = Math.min(t, steps - 1);
    this.drawChain(model, t, steps);
    this.drawDetail(model, t);
  }

  drawChain(model, t, steps) {
    const { arrays, cell, units, scales } = model;
    const fit = Math.floor((this.chain.clientWidth - ENDS_PX) / CELL_PX);
    const count = Math.max(1, Math.min(steps, MAX_CELLS, Math.max(3, fit)));
    const first = Math.max(0, Math.min(steps - count, t - Math.floor(count / 2)));
    const shared = htmlElement("div", "shared");
    shared.append(
      htmlElement("strong", "", `${CELL_NAMES[cell]} cell, ${units} unit${units === 1 ? "" : "s"}`),
      htmlElement("span", "", ` — one set of weights W, U, b, drawn once, used at every step. ${FORMULAS[cell]}`),
    );
    const row_ = htmlElement("div", "chain-row");
    row_.append(htmlElement("span", "chain-end", first === 0 ? "h₀ = 0" : `… ${first} step${first === 1 ? "" : "s"}`));
    for (let s = first; s < first + count; s++) {
      const v = stepValues(model, s, 1); // a cell is narrow
      const box = htmlElement("button", "cell-step");
      Object.assign(box, { type: "button", title: `Step ${s}: click to look inside` });
      box.dataset.t = String(s);
      if (s === t) box.setAttribute("aria-current", "step");
      if (v.scored) box.classList.add("scored");
      if (v.right !== null && v.scored) box.classList.add(v.right ? "right" : "wrong");
      const out = htmlElement("span", "out", v.prediction);
      out.title = `prediction ${v.prediction}, target ${v.target}`;
      const strip = document.createElement("canvas");
      strip.className = "h-strip";
      const { q } = arrays.h;
      paintGrid(strip, 1, (j) => scales.signed[q[s * units + j]], null, units);
      box.append(out, htmlElement("span", "tgt", v.target), strip,
        htmlElement("span", "tlabel", `t=${s}`), htmlElement("span", "in", v.x));
      row_.append(htmlElement("span", "arrow", "→"), box);
    }
    const rest = steps - first - count;
    row_.append(htmlElement("span", "arrow", "→"), htmlElement("span", "chain-end", rest ? `${rest} more …` : "h_T"));
    const legend = htmlElement("p", "hint chain-legend",
      "Each box: the output on top (target below it), hₜ as a column of units, the input at the bottom.");
    this.chain.replaceChildren(shared, row_, legend);
  }

  drawDetail(model, t) {
    const { arrays, cell, gates, scales, kind } = model;
    const v = stepValues(model, t);
    const head = htmlElement("p", "step-values");
    const parts = [`t = ${t}`, `input xₜ ${v.x}`, `target ${v.target}`, `prediction ${v.prediction}`];
    if (kind !== "forecast") parts.push(`p(target) ${Math.round(v.probability * 100)} %`);
    if (!v.scored) parts.push("(not scored)");
    head.textContent = parts.join(" · ");
    const rows = [["h", "hidden state hₜ"], ...(arrays.c ? [["c", "cell state cₜ"]] : []),
      ...gates.map((g) => [g, g === "candidate" ? CANDIDATE[cell] : GATE_LABELS[g]])];
    const list = htmlElement("div", "vectors");
    for (const [name, label] of rows) {
      const array = arrays[name];
      if (!array) continue;
      const values = row(array, t);
      const strip = document.createElement("canvas");
      strip.className = "vec-strip";
      strip.dataset.array = name;
      const scale = scaleOf(array, scales);
      const units = values.length;
      paintGrid(strip, units, (j) => scale[array.q[t * units + j]], null, 1);
      const mean = values.reduce((a, b) => a + b, 0) / units;
      list.append(htmlElement("span", "vec-name", label), strip, htmlElement("span", "vec-mean", `mean ${mean.toFixed(2)}`));
    }
    this.detail.replaceChildren(head, list);
  }
}
