// The convolution lab page: controls -> URL hash state -> JSON endpoints -> views.

import { ActivationChart } from "../views/activationChart.js";
import { FeatureMap, maxAbs } from "../views/featureMap.js";
import { KernelEditor, renderKernelTable } from "../views/kernelEditor.js";
import { PipelineView } from "../views/pipelineView.js";
import { PoolingView } from "../views/poolingView.js";
import { Signal1D } from "../views/signal1d.js";
import { SumExplainer } from "../views/sumExplainer.js";

/** Page state, each property a URL-hash key (as playground's state.ts): a URL is an experiment. */
const PROPS = {
  sample: { type: "string", default: "checkerboard" },
  image: { type: "string", default: "" }, // an upload's id; uploads expire, samples do not
  color: { type: "string", default: "gray" },
  size: { type: "int", default: 64 },
  kernels: { type: "kernels", default: "identity;sobel_x;sobel_y" },
  stride: { type: "int", default: 1 },
  padding: { type: "string", default: "SAME" },
  mode: { type: "string", default: "correlation" },
  compare: { type: "int", default: 2 },
  map: { type: "int", default: 2 },
  activation: { type: "string", default: "relu" },
  pool: { type: "string", default: "max" },
  pool_window: { type: "int", default: 2 },
  pool_stride: { type: "int", default: 2 },
  f: { type: "string", default: "spiky" },
  g: { type: "string", default: "box" },
};
const DISPLAY_SIZE = 128;
const MAP_MIN = 110; // CSS pixels of a feature map's side
const MAP_MAX = 240;
const INPUT_MAX = 256;
const GAP = 13; // .map-grid gap
const EDIT_DELAY_MS = 120;
const $ = (id) => document.getElementById(id);

let catalog;
const state = {};
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
const errors = {}; // message per source, "" once it succeeds
let result = null; // the last /api/convolve answer, for hover explanations
let pipelineResult = null;
let curves = null;
let editTimer = null;

// ---- state <-> URL hash -------------------------------------------------------------------

function readHash() {
  const pairs = new Map(location.hash.slice(1).split("&").map((kv) => kv.split("=")));
  for (const [name, prop] of Object.entries(PROPS)) {
    const raw = pairs.has(name) ? decodeURIComponent(pairs.get(name)) : String(prop.default);
    state[name] = prop.type === "int" ? parseInt(raw, 10) || prop.default : raw;
  }
  state.kernels = parseKernels(state.kernels) ?? parseKernels(PROPS.kernels.default);
}

function writeHash() {
  const parts = Object.keys(PROPS).map((name) => {
    const v = name === "kernels" ? serializeKernels() : state[name];
    return `${name}=${name === "kernels" ? v : encodeURIComponent(v)}`;
  });
  history.replaceState(null, "", `#${parts.join("&")}`);
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

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) throw Object.assign(new Error(describe(data.detail)), { status: response.status });
  return data;
}

/** One readable sentence from a FastAPI error: a string, or pydantic's list of problems. */
function describe(detail) {
  if (!Array.isArray(detail)) return String(detail);
  return detail.map((d) => `${d.loc.slice(1).join(" › ")}: ${d.msg}` +
    (d.ctx?.error ? ` (${d.ctx.error})` : "")).join("; ");
}

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
    showError(kind, err.message);
  }
}

/** Shows the latest problem of every source (request kind or control) until that source succeeds. */
function showError(source, message) {
  errors[source] = message;
  const text = [...new Set(Object.values(errors).filter(Boolean))].join(" ");
  $("error").hidden = !text;
  $("error").textContent = text;
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
  writeHash();
  newest("convolve", () => api("/api/convolve", { ...bank, display_size: DISPLAY_SIZE }), drawConvolution);
  refreshCompare();
  refreshPipeline();
}

function refreshCompare() {
  const bank = filterBank();
  if (!bank) return;
  const k = state.compare - 1;
  const one = { ...bank, kernels: [bank.kernels[k]], display_size: DISPLAY_SIZE };
  newest("compare", () => Promise.all(["correlation", "convolution"].map(
    (mode) => api("/api/convolve", { ...one, mode }),
  )), (answers) => drawCompare(bank.kernels[k], answers));
}

function refreshPipeline() {
  const bank = filterBank();
  if (!bank) return;
  const body = {
    ...bank, activation: state.activation, pool: state.pool,
    pool_window: state.pool_window, pool_stride: state.pool_stride,
  };
  writeHash();
  newest("pipeline", () => api("/api/convolution/pipeline", body), (data) => {
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
  const response = await fetch("/api/images", { method: "POST", body: file });
  const data = await response.json().catch(() => ({ detail: response.statusText }));
  $("upload").value = "";
  if (!response.ok) return showError("upload", `Upload refused: ${describe(data.detail)}`);
  showError("upload", "");
  state.image = data.id;
  fillSamples();
  refresh();
}

/** A value from the URL that this input does not allow falls back to the default. */
function bindNumber(id, name, after) {
  const el = $(id);
  const allowed = (v) => Number.isInteger(v) && v >= Number(el.min) && v <= Number(el.max);
  if (!allowed(state[name])) state[name] = PROPS[name].default;
  el.value = state[name];
  el.addEventListener("change", () => {
    const v = Number(el.value);
    if (!allowed(v)) {
      showError(name, `${name.replace("_", " ")} must be a whole number from ${el.min} to ${el.max}. ` +
        `Received: ${el.value}`);
      return;
    }
    showError(name, "");
    state[name] = v;
    after();
  });
}

function bindSelect(id, name, after) {
  const el = $(id);
  const read = () => (PROPS[name].type === "int" ? Number(el.value) : el.value);
  if (el.options.length) { // selects filled later (kernel and map numbers) keep the URL's value
    el.value = String(state[name]);
    if (el.selectedIndex < 0) el.selectedIndex = 0;
    state[name] = read();
  }
  el.addEventListener("change", () => {
    state[name] = read();
    after();
  });
}

function loadSignals() {
  const q = new URLSearchParams({ signal: state.f, kernel: state.g });
  newest("signals", () => api(`/api/convolution/signals?${q}`), (data) => {
    $("signal-frame").max = data.shifts.length - 1;
    views.signal.update({ ...data, names: [state.f, state.g] });
    views.signal.play();
    showFrame(0);
  });
}

async function main() {
  catalog = await api("/api/convolution/catalog");
  readHash();
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
  bindSelect("color", "color", refresh);
  bindSelect("size", "size", refresh);
  bindSelect("padding", "padding", refresh);
  bindSelect("mode", "mode", refresh);
  bindNumber("stride", "stride", refresh);
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
  bindSelect("compare-kernel", "compare", () => { writeHash(); refreshCompare(); });
  bindSelect("map-index", "map", () => { writeHash(); drawPipeline(); });
  bindSelect("activation", "activation", refreshPipeline);
  bindSelect("pool", "pool", refreshPipeline);
  bindNumber("pool-window", "pool_window", refreshPipeline);
  bindNumber("pool-stride", "pool_stride", refreshPipeline);
  for (const b of document.querySelectorAll("[data-pair]")) {
    b.addEventListener("click", () => {
      [state.f, state.g] = b.dataset.pair.split(",");
      $("signal-f").value = state.f;
      $("signal-g").value = state.g;
      writeHash();
      loadSignals();
    });
  }
  for (const [id, name] of [["signal-f", "f"], ["signal-g", "g"]]) {
    $(id).addEventListener("change", () => { state[name] = $(id).value; writeHash(); loadSignals(); });
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
  api("/api/convolution/activations").then((data) => {
    curves = data;
    views.activations.update({ ...curves, selected: state.activation });
  }).catch((err) => showError("activations", err.message));
}

main().catch((err) => showError("start", `The lab could not start: ${err.message}`));
