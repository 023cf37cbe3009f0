// The CNN-training lab: a data set (drawn, your photos by class, or the server's breeds), a model and
// its hyperparameters (kept in the URL), a training job on the server followed live on its socket
// (curves, progress, filters, feature maps), a race of scratch against transfer learning on the same
// data, then the confusion matrix, its misclassified photos with Grad-CAM, classify and downloads.
// A reload finds the jobs again (GET /api/cnn/jobs).
import { getJSON, postFile, postJSON } from "../lab/api.js";
import { $, errors } from "../lab/page.js";
import { LabSocket } from "../lab/socket.js";
import { LinkState, Type } from "../lab/state.js";
import { Controls } from "../views/controls.js";
import { ConfusionMatrix } from "./cnn/confusion.js";
import { Curves } from "./cnn/curves.js";
import { PictureGrid } from "./cnn/pictures.js";
import { UploadClasses } from "./cnn/uploads.js";
import { TopBars } from "./dogs/topBars.js";

const UPLOAD = "upload";
const BREEDS = "breeds";
const PREVIEW_DELAY_MS = 300;
const PREVIEW_COUNT = 8;
const RACE = ["scratch", "transfer"];
const RACE_WINDOW_S = 10; // jobs of different models created this close together were a race
const FINISHED = new Set(["done", "failed", "stopped"]);
// A job's socket closes for good after its final status (1000) or for an unknown job (4404);
// any other close (a dropped connection, 1013 while its queue is away) is reconnected, and the
// server starts again with the job's whole status.
const STREAM_ENDED = new Set([1000, 4404]);

const catalog = await getJSON("/api/cnn/catalog");
const MODELS = Object.fromEntries(catalog.models.map((m) => [m.value, m]));
const LIMITS = catalog.limits;
const DEFAULTS = catalog.defaults;
const AUGMENT = catalog.augmentations;

// The data sets offered: the drawn ones, your photos, the server's breeds when it has a folder.
const dataOptions = [
  ...catalog.generated.map((g) => [g.id, g.label]),
  [UPLOAD, "your photos, class by class"],
  ...(catalog.breeds.length ? [[BREEDS, "dog breeds on the server"]] : []),
];
$("data").replaceChildren(...dataOptions.map(([value, label]) => new Option(label, value)));

const link = new LinkState([
  { name: "data", type: Type.ENUM, options: dataOptions.map(([v]) => v), default: dataOptions[0][0] },
  { name: "model", type: Type.ENUM, options: Object.keys(MODELS), default: "scratch" },
  { name: "epochs", type: Type.INT, range: [1, LIMITS.max_epochs], default: DEFAULTS.epochs },
  { name: "learning_rate", type: Type.NUMBER, range: [1e-5, 0.1], default: MODELS.scratch.learning_rate, digits: 3 },
  { name: "batch_size", type: Type.INT, range: LIMITS.batch_size, default: DEFAULTS.batch_size },
  { name: "image_size", type: Type.INT, range: LIMITS.image_size, default: 32 },
  { name: "validation_split", type: Type.NUMBER, range: LIMITS.validation_split, default: DEFAULTS.validation_split, digits: 3 },
  { name: "blocks", type: Type.INT, range: [1, LIMITS.max_blocks], default: DEFAULTS.blocks.length },
  { name: "filters", type: Type.INT, range: [1, LIMITS.max_filters], default: DEFAULTS.blocks[0].filters },
  { name: "kernel_size", type: Type.INT, range: [1, LIMITS.max_kernel_size], default: DEFAULTS.blocks[0].kernel_size },
  ...AUGMENT.map((a) => (a.max === null
    ? { name: a.name, type: Type.BOOLEAN, default: DEFAULTS.augment[a.name] }
    : { name: a.name, type: Type.NUMBER, range: [0, a.max], default: DEFAULTS.augment[a.name], digits: 3 })),
]);

const state = {};
const datasets = { upload: null, breeds: null }; // ids of the sets made on the server
const runs = new Map(); // job id → {id, model, state, steps, epochs, status…}
let shown = []; // the runs on the charts: one, or a race's two
let previewTicket = 0;
let previewTimer = null;

const curves = new Curves($("loss-chart"), $("accuracy-chart"));
const filters = new PictureGrid($("filter-grid"), "filter");
const maps = new PictureGrid($("map-grid"), "map");
const fed = new PictureGrid($("fed"), "fed-photo");
const samples = new PictureGrid($("data-samples"), "sample");
const confusion = new ConfusionMatrix($("confusion"), showMistakes);
const classified = new TopBars($("classify-top")); // the dog-photo lab's bars
const uploads = new UploadClasses($("upload-classes"), (dataset) => {
  datasets.upload = dataset.id;
  showDataset(dataset);
  schedulePreview();
});
const controls = new Controls($("lab"), (name, value, final) => {
  state[name] = value;
  if (name === "model") state.learning_rate = MODELS[value].learning_rate;
  link.writeSoon(state);
  showControls();
  if (name === "data") loadData();
  if (final) schedulePreview();
});

const percent = (p) => `${Math.round(p * 100)}\u00a0%`; // no line break before the sign
const seconds = (s) => (s >= 90 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`);

// ---- the controls ---------------------------------------------------------------------------

function showControls() {
  controls.update(state);
  const scratch = state.model === "scratch";
  $("image-size").disabled = !scratch;
  if (!scratch) $("image-size-out").value = `${MODELS[state.model].image_size} (fixed)`;
  for (const el of document.querySelectorAll(".cnn-scratch input")) el.disabled = !scratch;
  $("upload-box").hidden = state.data !== UPLOAD;
  $("breeds-box").hidden = state.data !== BREEDS;
}

/** The blocks of a CNN from scratch: `filters` doubling block after block. */
function blocks() {
  return Array.from({ length: state.blocks }, (_, i) => ({
    filters: Math.min(LIMITS.max_filters, state.filters * 2 ** i),
    kernel_size: state.kernel_size,
  }));
}

const augment = () => Object.fromEntries(AUGMENT.map((a) => [a.name, state[a.name]]));

/** The data set's id on the server, or null while there is none (no photos yet). */
function datasetId() {
  if (state.data === UPLOAD) return datasets.upload;
  if (state.data === BREEDS) return datasets.breeds;
  return state.data;
}

function jobBody(model) {
  return {
    dataset: datasetId(),
    model,
    epochs: state.epochs,
    learning_rate: model === state.model ? state.learning_rate : MODELS[model].learning_rate,
    batch_size: state.batch_size,
    image_size: model === "scratch" ? state.image_size : null,
    validation_split: state.validation_split,
    blocks: blocks(),
    augment: augment(),
    seed: 0,
  };
}

// ---- the data ---------------------------------------------------------------------------------

$("data-limits").textContent = `Limits: ${LIMITS.max_classes} classes, ${LIMITS.max_photos_per_class} ` +
  `photos a class, ${LIMITS.max_epochs} epochs, images of ${LIMITS.image_size[0]}–${LIMITS.image_size[1]} ` +
  `pixels from scratch (transfer learning takes 224).`;
$("add-class").addEventListener("click", () => {
  const li = uploads.add();
  li.querySelector(".class-name").focus();
});
$("breeds").append(...catalog.breeds.map((b) => {
  const label = document.createElement("label");
  label.className = "check";
  label.append(Object.assign(document.createElement("input"), { type: "checkbox", value: b.name }),
    ` ${b.name} (${b.photos})`);
  return label;
}));
$("load-breeds").addEventListener("click", async () => {
  const breeds = [...$("breeds").querySelectorAll("input:checked")].map((i) => i.value);
  try {
    const { id } = await postJSON("/api/cnn/datasets", { breeds });
    datasets.breeds = id;
    errors.clear("data");
    loadData();
  } catch (err) {
    errors.show(err.message, "data");
  }
});

async function loadData() {
  const id = datasetId();
  if (!id) {
    showDataset(null);
    return;
  }
  try {
    showDataset(await getJSON(`/api/cnn/datasets/${encodeURIComponent(id)}`));
    errors.clear("data");
  } catch (err) {
    errors.show(err.message, "data");
  }
  schedulePreview();
}

function showDataset(dataset) {
  if (!dataset || dataset.id !== datasetId()) {
    $("data-summary").textContent = state.data === UPLOAD
      ? "Name at least 2 classes and add at least 2 photos to each."
      : state.data === BREEDS ? "Pick breeds, then use them." : "";
    samples.update([]);
    fed.update([]);
    return;
  }
  const counts = dataset.classes.map((c) => `${c.name} ${c.photos}`).join(", ");
  $("data-summary").textContent = `${dataset.classes.length} classes, ${dataset.photos} photos` +
    (counts ? `: ${counts}` : "") + (dataset.problem ? `. ${dataset.problem}` : "");
  if (state.data !== UPLOAD) {
    samples.update(dataset.classes.flatMap((c) => c.samples.slice(0, 2).map((src) => ({ src, title: c.name }))));
  } else samples.update([]);
}

// ---- what the network is fed ----------------------------------------------------------------

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, PREVIEW_DELAY_MS);
}

async function preview() {
  const dataset = datasetId();
  if (!dataset) return;
  const ticket = ++previewTicket;
  const imageSize = state.model === "scratch" ? state.image_size : MODELS[state.model].image_size;
  try {
    const answer = await postJSON("/api/cnn/augment", {
      dataset, augment: augment(), image_size: imageSize, count: PREVIEW_COUNT, seed: ticket,
    });
    if (ticket !== previewTicket) return;
    fed.update(answer.images.map((f) => ({ src: f.image, title: f.label, caption: f.label })));
    errors.clear("preview");
  } catch (err) {
    if (ticket === previewTicket && err.status !== 422) errors.show(err.message, "preview");
  }
}

// ---- training -----------------------------------------------------------------------------------

async function train(models) {
  const dataset = datasetId();
  if (!dataset) {
    errors.show("Add photos first: at least 2 classes of at least 2 photos each.", "train");
    return;
  }
  const started = [];
  try {
    for (const model of models) {
      const job = await postJSON("/api/cnn/jobs", jobBody(model));
      started.push(follow({ id: job.id, model, state: job.state, queue_position: job.queue_position }));
    }
    errors.clear("train");
  } catch (err) {
    errors.show(err.message, "train");
  }
  if (started.length) show(started);
}

/** A run followed on its socket. */
function follow(summary) {
  const run = newRun(summary);
  run.stream = new LabSocket(`/ws/cnn/${encodeURIComponent(run.id)}`, {
    onOpen: () => errors.clear("socket"),
    onMessage: (message) => receive(run, message),
    onStatus: (status, detail) => {
      if (status === "disconnected") errors.show(`The job's live stream was cut${detail.reason ? ` (${detail.reason})` : ""}; reconnecting…`, "socket");
    },
    endCodes: STREAM_ENDED,
    onEnd: () => { run.stream = null; showJobs(); },
  }, null);
  return run;
}

function newRun({ id, model, state: jobState = "queued", queue_position = null }) {
  const run = { id, model, state: jobState, queue_position, steps: [], epochs: [], batches: 1, epochCount: 0 };
  runs.set(id, run);
  return run;
}

/** Shows these runs on the charts and in the status line (a new training, a race, a reload). */
function show(list) {
  shown = list;
  for (const run of runs.values()) if (!list.includes(run)) run.stream?.close();
  filters.update([]);
  maps.update([]);
  $("probe").hidden = true;
  $("after").hidden = true;
  redraw();
  showJobs();
}

function receive(run, message) {
  switch (message.type) {
    case "status":
      applyStatus(run, message);
      break;
    case "start":
      Object.assign(run, { batches: message.batches, epochCount: message.epochs, start: message });
      showFacts(run);
      break;
    case "batch":
      run.steps.push({ x: message.step / message.batches, loss: message.loss, accuracy: message.accuracy });
      Object.assign(run, { progress: message.progress, ips: message.images_per_second, eta: message.eta_seconds, epoch: message.epoch - 1 });
      redraw();
      showJobs();
      break;
    case "epoch":
      run.epochs.push(message);
      Object.assign(run, { progress: message.progress, ips: message.images_per_second, eta: message.eta_seconds, epoch: message.epoch });
      redraw();
      showJobs();
      break;
    case "pictures":
      showPictures(run, message);
      break;
    case "error":
      errors.show(message.message, "socket");
      break;
    default:
  }
}

/** A job's whole status (the socket's first message, each change, GET /jobs/{id}). */
function applyStatus(run, s) {
  Object.assign(run, {
    state: s.state, paused: s.paused, stopping: s.stopping, queue_position: s.queue_position,
    error: s.error, batches: s.batches ?? run.batches, epochCount: s.epochs, epoch: s.epoch,
    progress: s.progress, ips: s.images_per_second, eta: s.eta_seconds, hasModel: s.has_model,
    evaluation: s.evaluation, job: s,
  });
  run.steps = s.steps.map((p) => ({ x: p.step / (s.batches || 1), loss: p.loss, accuracy: p.accuracy }));
  run.epochs = s.history;
  if (s.pictures) showPictures(run, s.pictures);
  if (s.train_images) showFacts(run);
  redraw();
  showJobs();
  if (FINISHED.has(s.state)) showResults();
}

function redraw() {
  curves.update(shown);
}

function showFacts(run) {
  const s = run.start ?? run.job;
  if (!s?.train_images) return;
  $("job-facts").textContent = `${run.model}: ${s.train_images} training and ${s.val_images} validation ` +
    `photos, ${s.batches} batches an epoch, ${(s.trainable_parameters ?? 0).toLocaleString("en")} of ` +
    `${(s.parameters ?? 0).toLocaleString("en")} parameters trained` +
    (s.cached_features ? "; EfficientNet-Lite0's features computed once per photo" : "");
}

const STATE_TEXT = {
  queued: (r) => `waiting in the queue (position ${r.queue_position ?? "?"})`,
  running: (r) => (r.stopping ? "stopping…" : r.paused ? "paused" : `training, epoch ${Math.min(r.epochCount, (r.epoch ?? 0) + 1)} of ${r.epochCount || "?"}`),
  done: (r) => `done${r.evaluation ? `, validation accuracy ${percent(r.evaluation.accuracy)}` : ""}`,
  failed: (r) => `failed: ${r.error ?? "unknown error"}`,
  stopped: () => "stopped",
};

/** The status line, the progress bar and the buttons, for the runs shown. */
function showJobs() {
  $("job-state").textContent = shown.length
    ? shown.map((r) => `${r.model}: ${STATE_TEXT[r.state](r)}`).join(" · ")
    : "Not trained yet.";
  $("job-state").dataset.state = shown.find((r) => r.state === "failed") ? "failed" : "";
  const active = current();
  const progress = active ?? shown.at(-1);
  $("progress").value = progress?.progress ?? 0;
  $("progress-text").textContent = active?.state === "running" && active.ips
    ? `${percent(active.progress ?? 0)} · ${Math.round(active.ips)} images/s · ETA ${seconds(active.eta ?? 0)}`
    : progress ? percent(progress.progress ?? 0) : "";
  const busy = shown.some((r) => !FINISHED.has(r.state));
  $("pause").disabled = active?.state !== "running";
  $("pause").textContent = active?.paused ? "Resume" : "Pause";
  $("stop").disabled = !busy;
  $("train").disabled = busy;
  $("race").disabled = busy;
}

/** The run training now, or the next one to. */
function current() {
  return shown.find((r) => r.state === "running") ?? shown.find((r) => r.state === "queued");
}

function control(run, type) {
  if (run.stream?.send({ type })) return;
  postJSON(`/api/cnn/jobs/${run.id}/${type}`, {}).then((s) => applyStatus(run, s))
    .catch((err) => errors.show(err.message, "train"));
}

$("train").addEventListener("click", () => train([state.model]));
$("race").addEventListener("click", () => train(RACE));
$("pause").addEventListener("click", () => {
  const run = current();
  if (run) control(run, run.paused ? "resume" : "pause");
});
$("stop").addEventListener("click", () => {
  for (const run of shown) if (!FINISHED.has(run.state)) control(run, "stop");
});

function showPictures(run, p) {
  const [k, , , count] = p.filters.shape;
  // Transfer learning and fine-tuning leave EfficientNet-Lite0's first layer as it was trained.
  const when = run.model === "scratch" ? `step ${p.step}` : "pretrained, frozen";
  $("filters-title").textContent = `${run.model}: first conv layer's ${count} filters (${k}×${k}×3), ${when}`;
  filters.update(p.filters.images.map((src, i) => ({ src, title: `filter ${i + 1}` })));
  const layers = p.feature_maps;
  $("maps-title").textContent = layers.length
    ? `a validation photo's feature maps: ${layers.map((l) => `${l.name} ${l.shape.join("×")}`).join(", ")}`
    : "a validation photo's feature maps";
  maps.update(layers.flatMap((l) => l.images.map((src, i) => ({ src, title: `${l.name} channel ${i + 1}` }))));
  $("probe").src = p.probe;
  $("probe").hidden = false;
}

// ---- after ------------------------------------------------------------------------------------

/** The results of the finished runs shown: a chooser when a race gave two. */
function showResults() {
  const finished = shown.filter((r) => r.evaluation);
  $("after").hidden = !finished.length;
  if (!finished.length) return;
  const select = $("result-run");
  const chosen = select.value;
  select.replaceChildren(...finished.map((r) => new Option(`${r.model} (${percent(r.evaluation.accuracy)})`, r.id)));
  select.value = finished.some((r) => r.id === chosen) ? chosen : finished.at(-1).id;
  $("result-run-label").hidden = finished.length < 2;
  showResult();
}

function result() {
  return runs.get($("result-run").value);
}

function showResult() {
  const run = result();
  if (!run) return;
  confusion.update(run.evaluation);
  $("confusion-title").textContent = `Confusion matrix of ${run.model}: ${percent(run.evaluation.accuracy)} of the validation photos right`;
  $("mistakes").replaceChildren();
  $("mistakes-title").textContent = "Misclassified photos";
  $("mistakes-message").textContent = run.evaluation.mistakes.length
    ? "Choose a cell off the diagonal to see its photos."
    : "No validation photo was misclassified.";
  $("download-model").href = `/api/cnn/jobs/${run.id}/model.keras`;
  $("download-script").href = `/api/cnn/jobs/${run.id}/train.py`;
  const expires = run.job?.expires_at;
  $("kept-until").textContent = expires
    ? `The server keeps this model until ${new Date(expires * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}: download it before then.`
    : "";
  classified.reset();
  $("classify-photo").hidden = true;
}

$("result-run").addEventListener("change", showResult);

function showMistakes(i, j) {
  const { classes, confusion: counts, mistakes } = result().evaluation;
  const chosen = mistakes.filter((m) => m.true === i && m.predicted === j);
  const count = counts[i][j];
  $("mistakes-title").textContent = `${classes[i]} taken for ${classes[j]}`;
  $("mistakes-message").textContent = i === j
    ? `${count} ${classes[i]} photos were classified right.`
    : !count ? `No ${classes[i]} photo was taken for ${classes[j]}.`
      : chosen.length < count ? `${count} photos; ${chosen.length} shown (the server keeps the first ones).`
        : `${count} photo${count > 1 ? "s" : ""}: the photo, then Grad-CAM (red: where the model found ${classes[j]}).`;
  $("mistakes").replaceChildren(...chosen.map((m) => {
    const figure = document.createElement("figure");
    figure.className = "mistake";
    const photo = Object.assign(document.createElement("img"), { src: m.image, alt: `a ${m.true_label} photo` });
    const cam = Object.assign(document.createElement("img"), { src: m.grad_cam, alt: `Grad-CAM for ${m.predicted_label}` });
    const caption = document.createElement("figcaption");
    caption.textContent = `${m.predicted_label} ${percent(m.probability)}`;
    figure.append(photo, cam, caption);
    return figure;
  }));
}

$("classify-input").addEventListener("change", async () => {
  const file = $("classify-input").files[0];
  $("classify-input").value = "";
  const run = result();
  if (!file || !run) return;
  const photo = $("classify-photo");
  if (photo.src) URL.revokeObjectURL(photo.src);
  Object.assign(photo, { src: URL.createObjectURL(file), hidden: false });
  try {
    const answer = await postFile(`/api/cnn/jobs/${run.id}/classify`, file);
    classified.update(answer.top.map((g) => ({ name: g.label, probability: g.probability })));
    errors.clear("classify");
  } catch (err) {
    errors.show(err.message, "classify");
  }
});

// ---- start --------------------------------------------------------------------------------------

/** After a reload: the newest job (and its race partner) again, live if it still trains. */
async function findJobs() {
  const mine = await getJSON("/api/cnn/jobs").catch(() => []);
  if (!mine.length) return;
  const [newest, ...older] = mine;
  const partner = older.find((j) => j.model !== newest.model && newest.created_at - j.created_at < RACE_WINDOW_S);
  const found = (partner ? [partner, newest] : [newest]).map((j) => {
    if (!FINISHED.has(j.state)) return follow(j);
    const run = newRun(j);
    getJSON(`/api/cnn/jobs/${j.id}`).then((s) => applyStatus(run, s)).catch(() => {});
    return run;
  });
  show(found);
}

link.follow(state, (edited) => {
  showControls();
  if (edited) loadData();
});
loadData();
findJobs();
