// The dog-photo lab page: photos in (drop, pick, camera) → /api/dogs/classify → a gallery; the chosen
// photo → what the model sees (each preprocessing), where it looked (Grad-CAM, occlusion) and its
// feature maps. The URL keeps the settings (preprocessing, layers, class explained), never photos.

import { getJSON, postFile, postJSON } from "../lab/api.js";
import { $, errors } from "../lab/page.js";
import { LinkState, Type } from "../lab/state.js";
import { Controls } from "../views/controls.js";
import { acceptFiles } from "../views/dropZone.js";
import { TensorSteps } from "../views/tensorSteps.js";
import { FeatureGrid } from "./dogs/featureGrid.js";
import { Gallery } from "./dogs/gallery.js";
import { HeatmapOverlay } from "./dogs/heatmapOverlay.js";
import { dequantize, pictureOf } from "./dogs/quantized.js";
import { percent, TopBars } from "./dogs/topBars.js";

const PREPROCESSING_BUTTONS = [...document.querySelectorAll('[data-prop="preprocessing"]')];
const link = new LinkState([
  { name: "preprocessing", type: Type.ENUM, options: PREPROCESSING_BUTTONS.map((b) => b.dataset.value), default: "correct" },
  { name: "layer", type: Type.STRING, default: "", omitDefault: true }, // Grad-CAM's; "": the model's last
  { name: "features", type: Type.STRING, default: "", omitDefault: true }, // "": the model's first
  { name: "explain", type: Type.INT, range: [0, 4], default: 0, omitDefault: true }, // rank in the top-5
]);
const PARALLEL_UPLOADS = 3; // the server batches what arrives together; more only queue
const MAX_RETRIES = 10; // of a 503 with Retry-After: the model loading, the queue full
const FEATURE_CHANNELS = 16;

const state = {};
let model = null; // GET /api/dogs/model
let current = null; // the gallery card shown below
const latest = {}; // request counter per kind: only the newest answer is drawn
const waiting = []; // cards to classify
let uploading = 0;
// The layers this page has had an answer at: the server traces a layer at its first call.
const answered = { gradcam: new Set(), features: new Set() };

const gallery = new Gallery($("gallery"), { onSelect: select });
const views = {
  steps: new TensorSteps($("steps")),
  correct: new TopBars($("correct-bars")),
  variant: new TopBars($("variant-bars")),
  gradcam: new HeatmapOverlay($("gradcam")),
  occlusion: new HeatmapOverlay($("occlusion")),
  features: new FeatureGrid($("feature-maps")),
};
const controls = new Controls($("lab"), (name, value) => {
  state[name] = value;
  link.write(state);
  showControls();
  if (name === "preprocessing") refreshSteps();
  if (name === "layer") refreshGradCam();
  if (name === "features") refreshFeatures();
});

const firstCall = (kind, layer) => (answered[kind].has(layer)
  ? "" : ` (the first at ${layer} takes a few seconds: TensorFlow traces it)`);
const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

// ---- the model ------------------------------------------------------------------------------

/** Asks for the model until it is ready: while it loads (503, Retry-After) the page says so. */
async function loadModel() {
  try {
    model = await getJSON("/api/dogs/model");
  } catch (err) {
    showModelStatus(err.message, Boolean(err.retryAfter));
    if (err.retryAfter) setTimeout(loadModel, err.retryAfter * 1000);
    return;
  }
  showModelStatus("");
  answered.gradcam.add(model.grad_cam_layer); // traced as the server started
  answered.features.add(model.feature_layer);
  $("model-name").textContent = `${model.name}, ${(model.parameters / 1e6).toFixed(1)} M parameters, ` +
    `${model.image_size}×${model.image_size} RGB in, ${model.classes} ImageNet classes out`;
  fillLayers($("cam-layer"), model.grad_cam_layer);
  fillLayers($("feature-layer"), model.feature_layer);
  const names = new Set(model.layers.map((l) => l.name));
  for (const prop of ["layer", "features"]) {
    if (state[prop] && !names.has(state[prop])) {
      errors.show(`Ignored in the link: ${prop}=${state[prop]} (not a layer of ${model.name})`, "link");
      state[prop] = "";
    }
  }
  showControls();
  if (current) refreshAll();
}

function showModelStatus(message, loading = false) {
  const status = $("model-status");
  status.hidden = !message;
  status.textContent = message;
  status.dataset.state = loading ? "loading" : "unavailable";
}

/** The feature layers as options, grouped by resolution: "block2b_add · 56×56×24". */
function fillLayers(select, fallback) {
  const groups = new Map();
  for (const { name, shape: [h, w, c] } of model.layers) {
    const key = `${h}×${w}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(new Option(`${name} · ${h}×${w}×${c}`, name));
  }
  select.replaceChildren(...[...groups].map(([size, options]) => {
    const group = document.createElement("optgroup");
    group.label = `${size} per channel`;
    group.append(...options);
    return group;
  }));
  select.dataset.fallback = fallback;
}

/** The controls as the state says; an empty layer shows the model's default. */
function showControls() {
  controls.update({
    ...state,
    layer: state.layer || $("cam-layer").dataset.fallback || "",
    features: state.features || $("feature-layer").dataset.fallback || "",
  });
}

// ---- photos in --------------------------------------------------------------------------------

function addFiles(files) {
  const images = [...files].filter((f) => !f.type || f.type.startsWith("image/"));
  if (images.length < files.length) errors.show("Only image files can be classified.", "files");
  for (const file of images) waiting.push(gallery.add(file));
  $("gallery-hint").hidden = true;
  pump();
}

function pump() {
  while (uploading < PARALLEL_UPLOADS && waiting.length) {
    uploading += 1;
    classify(waiting.shift()).finally(() => {
      uploading -= 1;
      pump();
    });
  }
}

async function classify(card) {
  for (let attempt = 0; ; attempt++) {
    card.working(attempt ? "waiting for the server…" : "uploading and classifying…");
    try {
      card.show(await postFile("/api/dogs/classify", card.file));
      if (!current) select(card);
      return;
    } catch (err) {
      if (err.retryAfter && attempt < MAX_RETRIES) {
        await sleep(err.retryAfter);
        continue;
      }
      card.failed(err.message);
      // Each photo's problem stays in the banner until dismissed: another photo's success is no fix.
      errors.show(`${card.file.name}: ${err.message}`, card);
      return;
    }
  }
}

/** Uploads a card's photo again (the server forgets photos after a while); its new id. */
function reupload(card) {
  card.again ??= postFile("/api/dogs/classify", card.file).then((result) => {
    card.result = { ...card.result, id: result.id };
    card.again = null;
    return result.id;
  });
  return card.again;
}

acceptFiles($("drop-zone"), [$("file-input"), $("camera-input")], addFiles);

// ---- the chosen photo -----------------------------------------------------------------------

async function select(card) {
  gallery.select(card);
  current = card;
  $("detail").hidden = false;
  const photo = await createImageBitmap(card.file).catch(() => null); // EXIF orientation applied
  if (card !== current) return;
  views.gradcam.setPhoto(photo);
  views.occlusion.setPhoto(photo);
  showCandidates();
  refreshAll();
}

/** The classes Grad-CAM and occlusion can explain: the top-5 breeds, or classes if not a dog. */
function candidates() {
  const { result } = current;
  return result.looks_like_dog
    ? result.top.map((t) => ({ name: t.breed, index: t.index, probability: t.probability }))
    : result.top_classes;
}

function showCandidates() {
  const box = $("explain-choices");
  box.querySelectorAll("label").forEach((l) => l.remove());
  candidates().forEach((c, rank) => {
    const label = document.createElement("label");
    const input = Object.assign(document.createElement("input"), { type: "radio", name: "explain", value: rank });
    input.checked = rank === state.explain;
    input.addEventListener("change", () => {
      state.explain = rank;
      link.write(state);
      refreshWhere();
    });
    label.append(input, ` ${c.name} (${percent(c.probability)})`);
    box.append(label);
  });
}

function refreshAll() {
  if (!model || !current) return;
  refreshSteps();
  refreshWhere();
  refreshFeatures();
}

/**
 * Calls the server about the chosen photo; draws only the newest answer of each kind. A photo the
 * server forgot is uploaded again, a busy server asked again after its Retry-After.
 */
async function forPhoto(kind, progress, call, draw) {
  if (!model || !current) return;
  const card = current;
  const ticket = (latest[kind] = (latest[kind] ?? 0) + 1);
  const busy = $(`${kind}-progress`);
  busy.textContent = progress;
  busy.hidden = false;
  try {
    let data;
    for (let attempt = 0; data === undefined; attempt++) {
      try {
        data = await call(card.result.id);
      } catch (err) {
        if (err.status === 404 && attempt === 0) await reupload(card);
        else if (err.retryAfter && attempt < MAX_RETRIES) await sleep(err.retryAfter);
        else throw err;
      }
    }
    if (ticket !== latest[kind] || card !== current) return;
    draw(data);
    errors.clear(kind);
  } catch (err) {
    if (ticket === latest[kind]) errors.show(err.message, kind);
  } finally {
    if (ticket === latest[kind]) busy.hidden = true;
  }
}

function preprocessingLabel(value) {
  return PREPROCESSING_BUTTONS.find((b) => b.dataset.value === value)?.textContent.trim() ?? value;
}

function refreshSteps() {
  const preprocessing = state.preprocessing;
  forPhoto("steps", `classifying with ${preprocessingLabel(preprocessing)}…`,
    (id) => postJSON("/api/dogs/predict", { image_id: id, preprocessing }),
    (result) => {
      views.steps.update(result.steps.map((s) => ({ ...s, picture: s.image && pictureOf(s.image) })));
      const right = current.result;
      const names = (r) => (r.looks_like_dog
        ? r.top.map((t) => ({ name: t.breed, probability: t.probability }))
        : r.top_classes);
      views.correct.update(names(right));
      const wrong = preprocessing !== "correct";
      $("variant").hidden = !wrong;
      $("correct-title").textContent = wrong ? "correct" : "the model's answer";
      $("steps-message").textContent = result.message;
      if (wrong) {
        $("variant-title").textContent = preprocessingLabel(preprocessing);
        views.variant.update(names(result), new Set(names(right).map((n) => n.name)));
      }
    });
}

function refreshWhere() {
  refreshGradCam();
  refreshOcclusion();
}

function explained() {
  const list = candidates();
  return list[Math.min(state.explain, list.length - 1)];
}

function refreshGradCam() {
  const target = explained();
  const layer = state.layer || model?.grad_cam_layer;
  forPhoto("gradcam", `Grad-CAM…${firstCall("gradcam", layer)}`,
    (id) => postJSON("/api/dogs/gradcam", { image_id: id, class_index: target.index, layer }),
    (cam) => {
      answered.gradcam.add(cam.layer);
      const rows = cam.heatmap.length;
      views.gradcam.update({ rows, cols: cam.heatmap[0].length, values: cam.heatmap.flat() });
      $("gradcam-caption").textContent = `Grad-CAM of ${cam.name} (${percent(cam.probability)}) ` +
        `at ${cam.layer}, ${cam.shape[0]}×${cam.shape[1]} positions`;
    });
}

function refreshOcclusion() {
  const target = explained();
  forPhoto("occlusion", "occlusion: 49 classifications, about a second…",
    (id) => postJSON("/api/dogs/occlusion", { image_id: id, class_index: target.index }),
    (occ) => {
      const drops = occ.drop.flat();
      const peak = Math.max(...drops.map(Math.abs)) || 1;
      const { offsets, patch } = occ;
      const step = offsets.length > 1 ? offsets[1] - offsets[0] : patch;
      const side = model.image_size;
      const first = (offsets[0] + patch / 2 - step / 2) / side;
      const last = (offsets[offsets.length - 1] + patch / 2 + step / 2) / side;
      views.occlusion.update({
        rows: offsets.length, cols: offsets.length, values: drops.map((d) => d / peak),
        extent: [first, first, last, last],
      });
      $("occlusion-caption").textContent = `Hiding a ${patch}-pixel grey square lowers ` +
        `${occ.name} (${percent(occ.probability)}) by up to ${Math.round(Math.max(0, ...drops) * 100)} points`;
    });
}

function refreshFeatures() {
  const layer = state.features || model?.feature_layer;
  forPhoto("features", `feature maps…${firstCall("features", layer)}`,
    (id) => postJSON("/api/dogs/features", { image_id: id, layer, channels: FEATURE_CHANNELS }),
    (maps) => {
      answered.features.add(maps.layer);
      const [h, w, c] = maps.shape;
      $("feature-shape").textContent = `${maps.layer}: output (1, ${h}, ${w}, ${c}) · the ` +
        `${maps.channels.length} most active of its ${c} channels`;
      views.features.update({ ...dequantize(maps.maps), channels: maps.channels });
    });
}

// ---- start ----------------------------------------------------------------------------------

link.follow(state, (edited) => {
  showControls();
  if (edited && current) {
    showCandidates();
    refreshAll();
  }
});
loadModel();
