// The lesson as a list of steps: the forward pass node by node, then the backward pass factor by
// factor. Pure functions over the parameters and the server's /api/backprop answer; no DOM.
//
// A step is { key, phase, formula, detail, value, uses }. `key` names the value it reveals (L2,
// loss, dloss, dL2, delta2, gw2, gb2); `uses` lists the keys it reads, so views can highlight the
// factors backprop reuses. In `formula`, ⟦…⟧ marks a product that was computed once, earlier.

const ACT = { sigmoid: "σ", tanh: "tanh", relu: "relu" };
const MINUS = "\u2212";

/** A number as the page shows it: `digits` significant digits, typographic minus, null = overflow. */
export function formatValue(v, digits = 4) {
  if (v === null || v === undefined) return "overflow";
  if (v === 0) return "0";
  const a = Math.abs(v);
  const text = a < 1e-3 || a >= 1e5 ? v.toExponential(digits - 1) : String(Number(v.toPrecision(digits)));
  return text.replaceAll("-", MINUS);
}

const f = (v) => formatValue(v);
/** A factor inside a product, in brackets when negative so "× −1" reads clearly. */
const factor = (v) => (v !== null && v < 0 ? `(${f(v)})` : f(v));

/** Name of layer i's input (0-based i): x for the first layer, else the layer before. */
const inputName = (i) => (i === 0 ? "x" : `L${i}`);

/** The symbolic product loss′·Ln′·w_n·L_(n−1)′ … down to layer i (0-based), split at the reused part. */
function expandDelta(i, n) {
  const factors = ["loss′", `L${n}′`];
  for (let k = n - 1; k > i; k--) factors.push(`w${k + 1}`, `L${k}′`);
  return factors;
}

function forwardSteps(params, result) {
  const { w, b, activation } = params;
  const n = w.length;
  const steps = [];
  for (let i = 0; i < n; i++) {
    const act = i === n - 1 ? "σ" : ACT[activation];
    const { z, L } = result.layers[i];
    const prev = i === 0 ? params.x : result.layers[i - 1].L;
    const bias = b ? ` + b${i + 1}` : "";
    const biasValue = b ? ` + ${factor(b[i])}` : "";
    steps.push({
      key: `L${i + 1}`,
      phase: "forward",
      formula: `L${i + 1} = ${act}(w${i + 1}·${inputName(i)}${bias})`,
      detail: `= ${act}(${factor(w[i])} × ${factor(prev)}${biasValue}) = ${act}(${f(z)}) = ${f(L)}`,
      value: L,
      uses: [inputName(i)],
    });
  }
  const out = result.layers[n - 1].L;
  const y = params.y;
  const ce = params.loss === "cross_entropy";
  steps.push({
    key: "loss",
    phase: "forward",
    formula: ce
      ? `loss = −[y·log L${n} + (1 − y)·log(1 − L${n})]`
      : `loss = (L${n} − y)²`,
    detail: ce
      ? `= −[${f(y)}·log ${f(out)} + ${f(1 - y)}·log ${f(1 - out)}] = ${f(result.forward.loss)}`
      : `= (${f(out)} − ${f(y)})² = ${f(result.forward.loss)}`,
    value: result.forward.loss,
    uses: [`L${n}`],
  });
  return steps;
}

function derivativeStep(params, result, i) {
  const n = params.w.length;
  const name = `L${i + 1}`;
  const { L, dL } = result.layers[i];
  const act = i === n - 1 ? "sigmoid" : params.activation;
  const rules = {
    sigmoid: [`σ′(z${i + 1}) = ${name}·(1 − ${name})`, `= ${f(L)} × ${f(1 - L)} = ${f(dL)}`],
    tanh: [`tanh′(z${i + 1}) = 1 − ${name}²`, `= 1 − ${factor(L)}² = ${f(dL)}`],
    relu: [`relu′(z${i + 1}) = 1 if z${i + 1} > 0 else 0`, `= ${f(dL)}`],
  };
  const [formula, detail] = rules[act];
  return { key: `dL${i + 1}`, phase: "backward", formula: `${name}′ = ${formula}`, detail, value: dL, uses: [name] };
}

function backwardSteps(params, result) {
  const n = params.w.length;
  const out = result.layers[n - 1].L;
  const y = params.y;
  const ce = params.loss === "cross_entropy";
  const dloss = result.loss_derivative;
  const steps = [
    {
      key: "dloss",
      phase: "backward",
      formula: ce ? `loss′ = ∂loss/∂L${n} = (L${n} − y) / (L${n}·(1 − L${n}))` : `loss′ = ∂loss/∂L${n} = 2·(L${n} − y)`,
      detail: ce
        ? `= (${f(out)} − ${f(y)}) / (${f(out)} × ${f(1 - out)}) = ${dloss === null ? "overflow: too large for float64" : f(dloss)}`
        : `= 2 × (${f(out)} − ${f(y)}) = ${f(dloss)}`,
      value: dloss,
      uses: [`L${n}`, "loss"],
    },
  ];
  for (let i = n - 1; i >= 0; i--) {
    const delta = result.deltas[i];
    steps.push(derivativeStep(params, result, i));
    if (i === n - 1) {
      const simplified = ce ? ` = L${n} − y` : "";
      const detail =
        dloss === null
          ? `= L${n} − y = ${f(delta)} (the product is finite where loss′ alone overflows)`
          : `= ${factor(dloss)} × ${factor(result.layers[i].dL)} = ${f(delta)}`;
      steps.push({
        key: `delta${n}`,
        phase: "backward",
        formula: `δ${n} = loss′·L${n}′${simplified}  (computed once, reused below)`,
        detail,
        value: delta,
        uses: ["dloss", `dL${n}`],
      });
    } else {
      steps.push({
        key: `delta${i + 1}`,
        phase: "backward",
        formula: `δ${i + 1} = ⟦δ${i + 2}⟧·w${i + 2}·L${i + 1}′`,
        detail: `= ${factor(result.deltas[i + 1])} × ${factor(params.w[i + 1])} × ${factor(result.layers[i].dL)} = ${f(delta)}`,
        value: delta,
        uses: [`delta${i + 2}`, `w${i + 2}`, `dL${i + 1}`],
      });
    }
    const gradient = result.gradients.find((g) => g.param === `w${i + 1}`);
    const expanded = expandDelta(i, n);
    const reused = i === n - 1 ? "" : `⟦${expanded.slice(0, -2).join("·")}⟧·`;
    const own = i === n - 1 ? expanded.join("·") : expanded.slice(-2).join("·");
    const prev = i === 0 ? params.x : result.layers[i - 1].L;
    steps.push({
      key: `gw${i + 1}`,
      phase: "backward",
      formula: `∂loss/∂w${i + 1} = δ${i + 1}·${inputName(i)} = ${reused}${own}·${inputName(i)}`,
      detail: `= ${factor(delta)} × ${factor(prev)} = ${f(gradient.chain)}`,
      value: gradient.chain,
      uses: [`delta${i + 1}`, inputName(i)],
    });
    if (params.b) {
      const g = result.gradients.find((r) => r.param === `b${i + 1}`);
      steps.push({
        key: `gb${i + 1}`,
        phase: "backward",
        formula: `∂loss/∂b${i + 1} = δ${i + 1}`,
        detail: `= ${f(g.chain)}`,
        value: g.chain,
        uses: [`delta${i + 1}`],
      });
    }
  }
  return steps;
}

/** The chain in one line, as the course writes it: "L1 = σ(w1·x), …, loss = cross-entropy(L3, y)". */
export function describeChain({ w, b, activation, loss }) {
  const n = w.length;
  const layer = (i) => `L${i + 1} = ${i === n - 1 ? "σ" : ACT[activation]}(w${i + 1}·${inputName(i)}${b ? ` + b${i + 1}` : ""})`;
  const layers = n <= 4 ? w.map((_, i) => layer(i)) : [layer(0), layer(1), "…", layer(n - 1)];
  const head = loss === "cross_entropy" ? `cross-entropy(L${n}, y)` : `(L${n} − y)²`;
  return `${layers.join(", ")}, loss = ${head}.`;
}

/** Every step of the lesson for these parameters and the server's analysis of them. */
export function buildSteps(params, result) {
  return [...forwardSteps(params, result), ...backwardSteps(params, result)];
}

/** The values revealed by the first `count` steps, as { key: value }. */
export function revealedValues(steps, count) {
  return Object.fromEntries(steps.slice(0, count).map((s) => [s.key, s.value]));
}
