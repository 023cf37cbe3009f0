// The convolution lab page: controls -> URL hash state -> JSON endpoints -> views.

import { getJSON, postFile, postJSON } from "../lab/api.js";
import { $, choicesOf, errors, THEME_CHANGE } from "../lab/page.js";
import { LinkState, Type } from "../lab/state.js";
import { Controls } from "../views/controls.js";
import { ActivationChart } from "./convolution/activationChart.js";
import { FeatureMap, maxAbs } from "./convolution/featureMap.js";
import { KernelEditor, renderKernelTable } from "./convolution/kernelEditor.js";
import { PipelineView } from "./convolution/pipelineView.js";
import { PoolingView } from "./convolution/poolingView.js";
import { Signal1D } from "./convolution/signal1d.js";
import { SumExplainer } from "./convolution/sumExplainer.js";

/** Page state, each property a URL-hash key: a URL is an experiment. */
const link = new LinkState([
  { name: "sample", type: Type.STRING, default: "checkerboard" },
  { name: "image", type: Type.STRING, default: "" }, // an upload's id; uploads expire, samples do not
  { name: "color", type: Type.ENUM, options: choicesOf($("color")), default: "gray" },
  { name: "size", type: Type.INT, default: 64 },
  // "sobel_x;gaussian_blur@5;c:1,0,-1,...": presets (@5 for 5×5), or "c:" and weights by row.
  { name: "kernels", type: Type.STRING, default: "identity;sobel_x;sobel_y" },
  { name: "stride", type: Type.INT, default: 1 },
  { name: "padding", type: Type.ENUM, options: choicesOf($("padding")), default: "SAME" },
  { name: "mode", type: Type.ENUM, options: choicesOf($("mode")), default: "correlation" },
  { name: "compare", type: Type.INT, default: 2 },
  { name: "map", type: Type.INT, default: 2 },
  { name: "activation", type: Type.STRING, default: "relu" },
  { name: "pool", type: Type.ENUM, options: choicesOf($("pool")), default: "max" },
  { name: "pool_window", type: Type.INT, default: 2 },
  { name: "pool_stride", type: Type.INT, default: 2 },
  { name: "f", type: Type.STRING, default: "spiky" },
  { name: "g", type: Type.STRING, default: "box" },
]);
const DEFAULTS = Object.fromEntries(link.props.map((p) => [p.name, p.default]));
const DISPLAY_SIZE = 128;
const MAP_MIN = 110; // CSS pixels of a feature map's side
const MAP_MAX = 240;
const INPUT_MAX = 256;
const GAP = 13; // .map-grid gap
const EDIT_DELAY_MS = 120;

let catalog;
const state = {};
const controls = new Controls($("lab"), (name, value, final) => {
  onControl(name, value, final, document.querySelector(`[data-prop="${name}"]`));
});
const views = {
  explainer: new SumExplainer($("explain")),
  signal: new Signal1D($("signal-chart"), { onFrame: showFrame }),
  activations: new ActivationChart($("activation-chart")),
  pooling: new PoolingView($("pooling")),
  pipeline: new PipelineView($("pipeline")),
  activationMaps: null,
  inputs: [],
  maps: [],
  compare: [],
};
const editors = [];
const latest = {}; // request counter per endpoint: only the newest answer is drawn
let result = null; // the last /api/convolve answer, for hover explanations
let pipelineResult = null;
let curves = null;
let editTimer = null;

// ---- state <-> URL hash -------------------------------------------------------------------

function readLink() {
  const { state: read, rejected } = link.read();
  Object.assign(state, read);
  state.kernels = parseKernels(state.kernels) ?? parseKernels(DEFAULTS.kernels);
  if (rejected.length) showError("link", `Ignored in the link: ${rejected.join(", ")}`);
}

function writeLink() {
  link.write({ ...state, kernels: serializeKernels() });
}

/** "sobel_x;gaussian_blur@5;c:1,0,-1,...": presets (@5 for 5×5), or "c:" and weights by row. */
function parseKernels(text) {
  const size = (w) => Math.round(Math.sqrt(w.length));
  const kernels = text.split(";").map((item) => {
    if (!item.startsWith("c:")) {
      const [name, n = "3"] = item.split("@");
      return catalog.kernels.find((p) => p.name === name)?.weights[n];
    }
    const w = item.slice(2).split(",").map(Number);
    const n = size(w);
    if (n * n !== w.length || !w.every(Number.isFinite)) return undefined;
    return Array.from({ length: n }, (_, r) => w.slice(r * n, (r + 1) * n));
  });
  return kernels.length && kernels.every(Boolean) ? kernels : null;
}

function serializeKernels() {
  return editors.map((e) => {
    const name = e.presetName();
    if (name !== "custom") return e.size === 3 ? name : `${name}@${e.size}`;
    return `c:${(e.weights() ?? []).flat().join(",")}`;
  }).join(";");
}

// ---- requests -----------------------------------------------------------------------------

/** Runs a request and hands its answer on only if no newer one of the same kind was sent. */
async function newest(kind, request, draw) {
  const ticket = (latest[kind] = (latest[kind] ?? 0) + 1);
  try {
    const data = await request();
    if (ticket === latest[kind]) {
      draw(data);
      showError(kind, "");
    }
  } catch (err) {
    if (ticket !== latest[kind]) return;
    if (err.status === 404 && state.image) { // the upload expired: back to the sample
      state.image = "";
      fillSamples();
      showError("upload", err.message);
      refresh();
      return;
    }
    showError(kind, kernelMessage(err.message));
  }
}

/**
 * The server names a refused kernel weight by its place in the request ("kernels[0][2][1] must be
 * a finite number in [-1000, 1000]. Received: kernels[0][2][1]=1e9"); a student reads it as the
 * cell they typed in, which is also marked. Any other message is shown as it is.
 */
function kernelMessage(message) {
  const refused = /^kernels\[(\d+)\]\[(\d+)\]\[(\d+)\] must be a finite number in \[(\S+), (\S+)\]\. Received: \S+=(\S+)/
    .exec(message);
  if (!refused) return message;
  const [k, r, c] = refused.slice(1, 4).map(Number);
  const [low, high, value] = refused.slice(4);
  editors[k]?.markInvalid(r, c);
  return `Kernel ${k + 1}, row ${r + 1}, column ${c + 1}: a weight must be a number from ` +
    `${low.replace("-", "−")} to ${high}, not ${value}.`;
}

/** Shows the latest problem of every source (request kind or control) until that source succeeds. */
function showError(source, message) {
  errors.show(message, source);
}

function inputSpec() {
  const source = state.image ? { image_id: state.image } : { sample: state.sample };
  return { ...source, color: state.color, size: state.size };
}

function filterBank() {
  const kernels = editors.map((e) => e.weights());
  const bad = kernels.findIndex((k) => k === null);
  showError("kernels", bad < 0 ? "" : `Kernel ${bad + 1}: every cell needs a number.`);
  if (bad >= 0) return null;
  return { input: inputSpec(), kernels, stride: state.stride, padding: state.padding, mode: state.mode };
}

/** Recomputes everything that depends on the input or the kernels. */
function refresh() {
  const bank = filterBank();
  if (!bank) return;
  // The link takes the kernels once the server accepted them: a refused weight never travels in it.
  newest("convolve", () => postJSON("/api/convolve", { ...bank, display_size: DISPLAY_SIZE }), (r) => {
    drawConvolution(r);
    writeLink();
  });
  refreshCompare();
  refreshPipeline();
}

function refreshCompare() {
  const bank = filterBank();
  if (!bank) return;
  const k = state.compare - 1;
  const one = { ...bank, kernels: [bank.kernels[k]], display_size: DISPLAY_SIZE };
  newest("compare", () => Promise.all(["correlation", "convolution"].map(
    (mode) => postJSON("/api/convolve", { ...one, mode }),
  )), (answers) => drawCompare(bank.kernels[k], answers));
}

function refreshPipeline() {
  const bank = filterBank();
  if (!bank) return;
  const body = {
    ...bank, activation: state.activation, pool: state.pool,
    pool_window: state.pool_window, pool_stride: state.pool_stride,
  };
  newest("pipeline", () => postJSON("/api/convolution/pipeline", body), (data) => {
    writeLink();
    pipelineResult = data;
    drawPipeline();
  });
}

// ---- drawing ------------------------------------------------------------------------------

/** Keeps `list` holding `count` views made by `make`, rebuilt when `layout` changes. */
function ensureViews(list, container, count, make, layout = count) {
  if (list.length === count && list.layout === layout) return list;
  container.replaceChildren();
  list.length = 0;
  list.layout = layout;
  for (let i = 0; i < count; i++) list.push(make(i));
  return list;
}

function drawConvolution(r) {
  result = r;
  const [batch, , , channels] = r.input_shape;
  const kernels = r.output_shape[3];
  $("input-shape").textContent = `(${r.input_shape.join(", ")})`;
  $("output-shape").textContent = `(${r.output_shape.join(", ")})`;
  $("filter-shape").textContent = `(${r.filter_shape.join(", ")})`;
  $("timing").textContent = `server time ${r.compute_ms.toFixed(1)} ms`;
  const inputSize = Math.min(INPUT_MAX, $("input-view").clientWidth - 4);
  ensureViews(views.inputs, $("input-view"), batch, (b) =>
    new FeatureMap($("input-view"), { size: inputSize, label: `input image ${b + 1}` }), inputSize);
  views.inputs.forEach((v, b) => v.update({
    values: r.image[b], height: r.image_height, width: r.image_width, channels, kind: "image",
    caption: batch > 1 ? `image ${b + 1} of the batch` : "",
  }));
  // As large as the panel allows, one column per kernel until they no longer fit.
  const room = $("maps").clientWidth;
  const size = Math.max(MAP_MIN, Math.min(MAP_MAX, Math.floor((room - (kernels - 1) * GAP) / kernels)));
  $("maps").style.gridTemplateColumns =
    `repeat(${Math.min(kernels, Math.floor((room + GAP) / (size + GAP)) || 1)}, auto)`;
  ensureViews(views.maps, $("maps"), batch * kernels, (i) => {
    const b = Math.floor(i / kernels);
    const k = i % kernels;
    const v = new FeatureMap($("maps"), { size, label: `feature map ${k + 1}` });
    v.onHover = (cell) => cell && explain(b, k, cell);
    return v;
  }, `${batch}×${kernels}@${size}`);
  views.maps.forEach((v, i) => {
    const b = Math.floor(i / kernels);
    const k = i % kernels;
    const title = catalog.kernels.find((p) => p.name === editors[k]?.presetName())?.title ?? "custom";
    v.update({
      values: r.feature_maps[b][k], height: r.map_height, width: r.map_width, scale: r.max_abs[k],
      caption: `${k + 1} · ${title}${batch > 1 ? ` · image ${b + 1}` : ""} · ±${r.max_abs[k]}`,
    });
  });
  views.explainer.reset();
  editors.forEach((e) => e.highlight(false));
  views.inputs.forEach((v) => v.highlight([]));
}

/** Highlights the patch under kernel k for output (y, x) and writes out its multiply-and-sum. */
function explain(b, k, { y, x }) {
  const r = result;
  views.maps.forEach((v, i) => v.highlight(i === b * r.output_shape[3] + k
    ? [{ top: y, left: x, height: 1, width: 1 }] : []));
  editors.forEach((e, i) => e.highlight(i === k));
  if (r.image_factor !== 1 || r.map_factor !== 1) {
    views.explainer.element.textContent = `At this working size the maps are shown averaged ` +
      `${r.map_factor}×${r.map_factor}; choose ${DISPLAY_SIZE} px or less to see single sums.`;
    return;
  }
  const kernel = r.applied_kernels[k];
  const [, height, width, channels] = r.input_shape;
  const top = y * r.stride - r.pad_top;
  const left = x * r.stride - r.pad_left;
  const patch = Array.from({ length: channels }, (_, c) => kernel.map((row, i) => row.map((_, j) => {
    const yy = top + i;
    const xx = left + j;
    const inside = yy >= 0 && xx >= 0 && yy < height && xx < width;
    return inside ? r.image[b][(yy * width + xx) * channels + c] : null;
  })));
  views.inputs.forEach((v, i) => v.highlight(i === b
    ? [{ top, left, height: kernel.length, width: kernel[0].length }] : []));
  views.explainer.update({
    title: `Map ${k + 1}, output row ${y + 1}, column ${x + 1}: input patch at row ${top + 1}, ` +
      `column ${left + 1}`,
    patch,
    kernel,
    result: r.feature_maps[b][k][y * r.map_width + x],
    note: r.mode === "convolution"
      ? "Convolution: the weights shown are the kernel flipped by 180°, as slid over the input." : "",
  });
}

function drawCompare(kernel, [corr, convo]) {
  const flipped = kernel.map((row) => [...row].reverse()).reverse();
  renderKernelTable($("kernel-given"), kernel);
  renderKernelTable($("kernel-flipped"), flipped);
  ensureViews(views.compare, $("compare-maps"), 2, (i) =>
    new FeatureMap($("compare-maps"), { size: 220, label: i ? "convolution" : "correlation" }));
  const a = corr.feature_maps[0][0];
  const b = convo.feature_maps[0][0];
  const scale = Math.max(maxAbs(a), maxAbs(b));
  const dims = { height: corr.map_height, width: corr.map_width, scale };
  views.compare[0].update({ values: a, ...dims, caption: "correlation (tf.nn.conv2d)" });
  views.compare[1].update({ values: b, ...dims, caption: "convolution (flipped kernel)" });
  const diff = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
  const symmetric = JSON.stringify(kernel) === JSON.stringify(flipped);
  $("compare-verdict").textContent = diff < 1e-3
    ? `They agree (largest difference ${diff.toFixed(4)}): ${symmetric
      ? "this kernel equals its 180° flip." : "on this image the flip happens not to matter."}`
    : `They differ (largest difference ${diff.toFixed(3)}): this kernel is not symmetric ` +
      "under a 180° rotation.";
}

function drawPipeline() {
  const p = pipelineResult;
  if (!p) return;
  const [, conv, act, pooled] = p.stages;
  const count = conv.shape[3];
  const maps = Array.from({ length: count }, (_, i) => [i + 1, `map ${i + 1}`]);
  state.map = Number(fillSelect($("map-index"), maps, state.map));
  const k = state.map - 1;
  const grid = (s) => ({ height: s.shape[1], width: s.shape[2] });
  if (!views.activationMaps) {
    views.activationMaps = ["before", "after"].map((w) =>
      new FeatureMap($("activation-maps"), { size: 200, label: `feature map ${w} the activation` }));
  }
  const before = conv.maps[k];
  const after = act.maps[k];
  const scale = Math.max(maxAbs(before), maxAbs(after));
  views.activationMaps[0].update({ values: before, ...grid(conv), scale, caption: `conv2d, map ${k + 1}` });
  views.activationMaps[1].update({ values: after, ...grid(act), scale, caption: `${act.name}(conv2d)` });
  const negative = (v) => v.filter((x) => x < 0).length;
  const range = (v) => `${Math.min(...v).toFixed(2)} … ${Math.max(...v).toFixed(2)}`;
  $("activation-info").textContent = `Values ${range(before)} before, ${range(after)} after ` +
    `${act.name}. Negative values: ${negative(before)} of ${before.length} before, ` +
    `${negative(after)} after.`;
  views.pooling.update({
    input: { values: after, ...grid(act) },
    output: { values: pooled.maps[k], ...grid(pooled) },
    argmax: p.pool_argmax ? p.pool_argmax[k] : null,
    pool: state.pool, window: state.pool_window, stride: state.pool_stride,
  });
  views.pipeline.update({ stages: p.stages });
  if (curves) views.activations.update({ ...curves, selected: state.activation });
}

function showFrame(i) {
  $("signal-frame").value = i;
  const last = i >= Number($("signal-frame").max);
  $("signal-play").textContent = views.signal.playing && !last ? "Pause" : "Play";
}

// ---- kernels ------------------------------------------------------------------------------

function addEditor(weights) {
  const editor = new KernelEditor($("kernels"), {
    presets: catalog.kernels,
    onChange: () => {
      clearTimeout(editTimer);
      editTimer = setTimeout(refresh, EDIT_DELAY_MS);
    },
    onRemove: () => {
      editors.splice(editors.indexOf(editor), 1);
      editor.root.remove();
      renumber();
      refresh();
    },
  });
  editors.push(editor);
  editor.update({ index: editors.length - 1, weights, removable: true });
}

function renumber() {
  editors.forEach((e, i) => e.update({ index: i, weights: e.weights(), removable: editors.length > 1 }));
  $("add-kernel").disabled = editors.length >= catalog.limits.max_kernels;
  const options = editors.map((_, i) => [i + 1, `kernel ${i + 1}`]);
  state.compare = Number(fillSelect($("compare-kernel"), options, state.compare));
}

/** A kernel resized to n×n: presets are redrawn at n, custom weights zero-padded or cropped. */
function resized(editor, n) {
  const name = editor.presetName();
  if (name !== "custom") return catalog.kernels.find((p) => p.name === name).weights[n];
  const w = editor.weights() ?? [[0]];
  const shift = (w.length - n) / 2;
  return Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) =>
    w[r + shift]?.[c + shift] ?? 0));
}

// ---- controls -----------------------------------------------------------------------------

/** Fills a <select>, keeps `value` chosen if it is still offered, and returns the choice. */
function fillSelect(select, options, value) {
  select.replaceChildren(...options.map(([v, text]) => new Option(text, v)));
  select.value = String(value);
  if (select.selectedIndex < 0) select.selectedIndex = 0;
  return select.value;
}

function fillSamples() {
  const options = catalog.samples.map((s) => [s.name, s.title]);
  if (state.image) options.unshift(["upload", "Your upload"]);
  const chosen = fillSelect($("sample"), options, state.image ? "upload" : state.sample);
  if (chosen !== "upload") state.sample = chosen;
}

async function upload(file) {
  let data;
  try {
    data = await postFile("/api/images", file);
  } catch (err) {
    showError("upload", `Upload refused: ${err.message}`);
    return;
  } finally {
    $("upload").value = "";
  }
  showError("upload", "");
  state.image = data.id;
  fillSamples();
  refresh();
}

/** A whole number within a number input's min and max. */
function allowed(input, v) {
  return Number.isInteger(v) && v >= Number(input.min) && v <= Number(input.max);
}

/** What each control's change redraws. */
const AFTER = {
  color: refresh, size: refresh, padding: refresh, mode: refresh, stride: refresh,
  compare: () => { writeLink(); refreshCompare(); },
  map: () => { writeLink(); drawPipeline(); },
  activation: refreshPipeline, pool: refreshPipeline, pool_window: refreshPipeline, pool_stride: refreshPipeline,
  f: () => { writeLink(); loadSignals(); },
  g: () => { writeLink(); loadSignals(); },
};

/** A control's change: a number the input does not allow is refused with a message. */
function onControl(name, value, final, input) {
  if (!final) return;
  if (input.type === "number") {
    const ok = allowed(input, value);
    showError(name, ok ? "" : `${name.replace("_", " ")} must be a whole number from ${input.min} ` +
      `to ${input.max}. Received: ${input.value}`);
    if (!ok) return;
  }
  state[name] = value;
  AFTER[name]();
}

function loadSignals() {
  const q = new URLSearchParams({ signal: state.f, kernel: state.g });
  newest("signals", () => getJSON(`/api/convolution/signals?${q}`), (data) => {
    $("signal-frame").max = data.shifts.length - 1;
    views.signal.update({ ...data, names: [state.f, state.g] });
    views.signal.play();
    showFrame(0);
  });
}

async function main() {
  // The two Plotly charts take the theme's colours when drawn: a new theme redraws them.
  window.addEventListener(THEME_CHANGE, () => {
    if (curves) views.activations.update({ ...curves, selected: state.activation });
    views.signal.frame(views.signal.index);
  });
  catalog = await getJSON("/api/convolution/catalog");
  readLink();
  fillSamples();
  for (const w of state.kernels) addEditor(w);
  // A hand-edited URL may mix sizes; a bank shares one kernel size.
  editors.forEach((e, i) => e.update({ index: i, weights: resized(e, editors[0].size), removable: true }));
  renumber();
  $("kernel-size").value = String(editors[0].size);
  const signalOptions = catalog.signals.map((s) => [s.name, s.title]);
  state.f = fillSelect($("signal-f"), signalOptions, state.f);
  state.g = fillSelect($("signal-g"), signalOptions, state.g);
  state.activation = fillSelect($("activation"), catalog.activations.map((a) => [a, a]), state.activation);

  // A number from the URL that its input does not allow falls back to the default.
  for (const input of document.querySelectorAll("input[type=number][data-prop]")) {
    if (!allowed(input, state[input.dataset.prop])) state[input.dataset.prop] = DEFAULTS[input.dataset.prop];
  }
  controls.update(state);
  $("sample").addEventListener("change", () => {
    if ($("sample").value !== "upload") {
      state.sample = $("sample").value;
      state.image = "";
      fillSamples();
      showError("upload", "");
    }
    refresh();
  });
  $("upload").addEventListener("change", () => $("upload").files[0] && upload($("upload").files[0]));
  $("kernel-size").addEventListener("change", () => {
    const n = Number($("kernel-size").value);
    editors.forEach((e, i) => e.update({ index: i, weights: resized(e, n), removable: editors.length > 1 }));
    refresh();
  });
  $("add-kernel").addEventListener("click", () => {
    addEditor(catalog.kernels.find((p) => p.name === "identity").weights[editors[0]?.size ?? 3]);
    renumber();
    refresh();
  });
  for (const b of document.querySelectorAll("[data-pair]")) {
    b.addEventListener("click", () => {
      [state.f, state.g] = b.dataset.pair.split(",");
      $("signal-f").value = state.f;
      $("signal-g").value = state.g;
      writeLink();
      loadSignals();
    });
  }
  $("signal-play").addEventListener("click", () => {
    if (views.signal.playing) views.signal.pause();
    else views.signal.play();
    showFrame(Number($("signal-frame").value));
  });
  $("signal-frame").addEventListener("input", () => {
    views.signal.pause();
    views.signal.frame(Number($("signal-frame").value));
  });

  refresh();
  loadSignals();
  getJSON("/api/convolution/activations").then((data) => {
    curves = data;
    views.activations.update({ ...curves, selected: state.activation });
  }).catch((err) => showError("activations", err.message));
}

main().catch((err) => showError("start", `The lab could not start: ${err.message}`));
