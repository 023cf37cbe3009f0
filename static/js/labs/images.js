// The images lab page: a file (a sample or an upload) → what tf.io.decode_image makes of it → the
// pipeline the student builds, a tensor inspector at every step → normalizations side by side →
// a batch of random augmentations. State in the URL hash (lab/state.js): a link reproduces it all.
import { getJSON, postFile, postForBlob, postJSON } from "../lab/api.js";
import { $, errors } from "../lab/page.js";
import { LinkState, Type } from "../lab/state.js";
import { Controls } from "../views/controls.js";
import { htmlElement } from "../views/svg.js";
import { AugmentChoices, AugmentGrid } from "./images/augmentView.js";
import { Channel } from "./images/channel.js";
import { FileFacts } from "./images/fileFacts.js";
import { formatShape } from "./images/format.js";
import { NormalizationView } from "./images/normalizationView.js";
import { choiceLabels } from "./images/paramControls.js";
import { PipelineView } from "./images/pipelineView.js";
import { decodeSteps, encodeSteps, newStep, stepBodies } from "./images/steps.js";

const API = "/api/image-lab";
/** The course's pipeline: decode → resize → cast → normalize → batch. */
const COURSE_STEPS = "resize;cast;normalize@mode:symmetric;batch";
const PREVIEW_SIDE = 384;
const BINS = 64;
const AUGMENT_SIDE = 224;
const LIVE_DELAY_MS = 30; // a dragged slider's preview is asked for once it rests this long
const COPIED_MS = 1500;
const NEW_SEEDS = 100000; // a new seed is drawn below this: short enough to read out in class
/** How the "Add a step" list groups the catalog's operations; any other op goes under "More". */
const STEP_GROUPS = [
  ["Size and orientation", ["resize", "central_crop", "crop_to_box", "pad_to_box", "crop_or_pad",
    "flip_left_right", "flip_up_down", "rot90"]],
  ["Colour and quality", ["grayscale", "grayscale_to_rgb", "brightness", "contrast", "saturation", "hue",
    "gamma", "jpeg_quality"]],
  ["dtype and scale", ["cast", "convert_dtype", "normalize", "clip"]],
  ["Batch", ["batch"]],
];

const state = {};
let catalog;
let ops; // the catalog's operations, by op
let augmentations; // the catalog's augmentations, by op
let decodeSpec;
let labels; // choice labels: the steps' (from the template), the decode's (from the catalog)
let link;
let views;
let channels;
let liveTimer = null;

// ---- state ⇄ link -------------------------------------------------------------------------

function props() {
  return [
    { name: "sample", type: Type.ENUM, options: catalog.samples.map((s) => s.name), default: "photo" },
    { name: "image", type: Type.STRING, default: "", omitDefault: true }, // an upload's id: they expire
    { name: "channels", type: Type.INT, range: [0, 4], default: 0, omitDefault: true },
    {
      name: "dtype", type: Type.ENUM, options: catalog.decode.dtypes.map((d) => d.value), default: "uint8",
      omitDefault: true,
    },
    { name: "apply_exif", type: Type.BOOLEAN, default: false, omitDefault: true },
    { name: "steps", type: Type.STRING, default: COURSE_STEPS },
    { name: "seed", type: Type.INT, range: [0, catalog.limits.max_seed], default: 0 },
    { name: "count", type: Type.INT, range: [1, catalog.limits.max_augmented], default: 8, omitDefault: true },
    { name: "augment", type: Type.STRING, default: catalog.default_augmentations.join(";"), omitDefault: true },
  ];
}

function linkState() {
  return {
    sample: state.sample, image: state.image, ...state.decode,
    steps: encodeSteps(state.steps, ops), seed: state.seed, count: state.count,
    augment: encodeSteps(state.augment, augmentations),
  };
}

const writeLink = () => link.write(linkState());
const writeLinkSoon = () => link.writeSoon(linkState());

/** Takes the state a link holds; what it holds that the lab does not allow is named in the banner. */
function apply({ state: read, rejected }) {
  const ignored = [...rejected];
  if (!catalog.decode.channels.some((c) => c.value === read.channels)) {
    ignored.push(`channels=${read.channels}`);
    read.channels = 0;
  }
  const steps = decodeSteps(read.steps, ops);
  const chosen = decodeSteps(read.augment, augmentations);
  ignored.push(...steps.rejected, ...chosen.rejected);
  const most = catalog.limits.max_steps;
  if (steps.steps.length > most) ignored.push(`steps after the first ${most}`);
  Object.assign(state, {
    sample: read.sample, image: read.image,
    decode: { channels: read.channels, dtype: read.dtype, apply_exif: read.apply_exif },
    steps: steps.steps.slice(0, most),
    // Each augmentation once, in the catalog's order (the order the page lists them).
    augment: catalog.augmentations.map((a) => chosen.steps.find((s) => s.op === a.op)).filter(Boolean),
    seed: read.seed, count: read.count,
  });
  errors.show(ignored.length ? `Ignored in the link: ${ignored.join(", ")}` : "", "link");
  fillSamples();
  buildPipeline();
  views.augmentBar.update(state);
  views.augmentChoices.update(state.augment);
  writeLink(); // what was ignored leaves the link
  loadSource();
}

// ---- requests -----------------------------------------------------------------------------

const source = () => (state.image ? { image_id: state.image } : { sample: state.sample });

/** The pipeline request; `upTo` > 0 asks only for the stage of steps[upTo − 1] (a live preview). */
function pipelineBody(upTo = null) {
  return {
    source: source(), decode: state.decode,
    steps: stepBodies(upTo ? state.steps.slice(0, upTo) : state.steps),
    report: upTo ? "last" : "all", preview_side: PREVIEW_SIDE, bins: BINS,
  };
}

/** `request`'s answer with the time it took there and back, in milliseconds. */
async function timed(request) {
  const start = performance.now();
  const answer = await request;
  return { ...answer, round_trip_ms: performance.now() - start };
}

const timing = (a) => `${a.compute_ms.toFixed(1)} ms on the server, ${Math.round(a.round_trip_ms)} ms there and back`;

/** An upload that expired (uploads are kept a while only): back to the sample, said in the banner. */
function expired(error) {
  if (error.status !== 404 || !state.image) return false;
  state.image = "";
  errors.show(`${error.message} Showing the sample file again.`, "upload");
  fillSamples();
  writeLink();
  loadSource();
  return true;
}

function makeChannels() {
  return {
    describe: new Channel("describe", {
      panel: $("load-panel"),
      send: () => postJSON(`${API}/describe`, { source: source(), preview_side: PREVIEW_SIDE }),
      draw: (d) => views.facts.update(d),
      failed: expired,
    }),
    pipeline: new Channel("pipeline", {
      panel: $("pipeline-panel"),
      send: (upTo) => timed(postJSON(`${API}/pipeline`, pipelineBody(upTo))),
      draw: (d, upTo) => {
        if (upTo) {
          views.pipeline.showStage(d.stages[0]);
          $("pipeline-time").textContent = `Live preview of step ${upTo + 1}: ${timing(d)}`;
          return;
        }
        views.pipeline.showStages(d.stages);
        $("snippet").textContent = d.snippet;
        const count = d.stages.length === 1 ? "1 stage" : `${d.stages.length} stages`;
        $("pipeline-time").textContent = `${count}: ${timing(d)}`;
      },
      failed: (error) => {
        if (expired(error)) return true;
        views.pipeline.failed();
        $("pipeline-time").textContent = "";
        return false;
      },
    }),
    normalizations: new Channel("normalizations", {
      panel: $("norm-panel"),
      send: () => postJSON(`${API}/normalizations`, { source: source(), preview_side: PREVIEW_SIDE, bins: BINS }),
      draw: (d) => views.normalizations.update(d),
      failed: expired,
    }),
    augment: new Channel("augment", {
      panel: $("aug-panel"),
      send: () => timed(postJSON(`${API}/augment`, {
        source: source(), augmentations: stepBodies(state.augment), seed: state.seed,
        count: state.count, side: AUGMENT_SIDE, preview_side: AUGMENT_SIDE,
      })),
      draw: (d) => {
        views.augmentGrid.update(d);
        $("aug-snippet").textContent = d.snippet;
        const shapes = [...new Set(d.images.map((image) => formatShape(image.shape)))].join(", ");
        $("aug-time").textContent = `${formatShape(d.input_shape)} → ${shapes}: ${timing(d)}`;
      },
      failed: expired,
    }),
  };
}

/** Everything that depends on the image: a new source. */
function loadSource() {
  const sample = catalog.samples.find((s) => s.name === state.sample);
  const download = $("sample-download");
  download.hidden = Boolean(state.image);
  download.href = sample.url;
  download.textContent = "Download the sample file to run it";
  channels.describe.run();
  channels.pipeline.run(null);
  channels.normalizations.run();
  channels.augment.run();
}

// ---- the pipeline -------------------------------------------------------------------------

function buildPipeline() {
  views.pipeline.build([
    { ...decodeSpec, labels: labels.decode, values: state.decode },
    ...state.steps.map((step) => ({ ...ops.get(step.op), labels: labels.steps, values: step.params })),
  ]);
  $("add-step").disabled = state.steps.length >= catalog.limits.max_steps;
}

/** The steps changed shape (added, moved, removed): rebuilt, recomputed, written in the link. */
function stepsChanged() {
  clearTimeout(liveTimer);
  buildPipeline();
  channels.pipeline.run(null);
  writeLink();
}

const pipelineHandlers = {
  onParam(index, name, value, final) {
    clearTimeout(liveTimer);
    if (index === 0) state.decode[name] = value;
    else state.steps[index - 1].params[name] = value;
    if (final || index === 0) {
      channels.pipeline.run(null);
      writeLink();
    } else {
      liveTimer = setTimeout(() => channels.pipeline.run(index), LIVE_DELAY_MS);
      writeLinkSoon();
    }
  },
  onMove(index, by) {
    const i = index - 1;
    const [step] = state.steps.splice(i, 1);
    state.steps.splice(i + by, 0, step);
    stepsChanged();
  },
  onRemove(index) {
    state.steps.splice(index - 1, 1);
    stepsChanged();
  },
};

/** Adds a step before a closing batch (it must stay last), else at the end. */
function addStep(op) {
  const step = newStep(ops.get(op));
  const closing = state.steps.at(-1)?.op === "batch" && op !== "batch";
  state.steps.splice(closing ? state.steps.length - 1 : state.steps.length, 0, step);
  stepsChanged();
  const card = $(`stage-${state.steps.indexOf(step) + 1}`);
  card?.scrollIntoView({ behavior: "smooth", block: "nearest" });
}

// ---- controls -----------------------------------------------------------------------------

function fillSamples() {
  const select = $("sample");
  const options = catalog.samples.map((s) => new Option(s.title, s.name));
  if (state.image) options.unshift(new Option("Your upload", "upload"));
  select.replaceChildren(...options);
  select.value = state.image ? "upload" : state.sample;
}

function fillOperations() {
  const grouped = new Set(STEP_GROUPS.flatMap(([, names]) => names));
  const groups = [...STEP_GROUPS, ["More", [...ops.keys()].filter((op) => !grouped.has(op))]];
  const optgroups = groups.map(([title, names]) => {
    const group = document.createElement("optgroup");
    group.label = title;
    for (const op of names.filter((n) => ops.has(n))) {
      group.append(new Option(`${ops.get(op).title} · ${ops.get(op).tf_function}`, op));
    }
    return group;
  });
  $("add-op").replaceChildren(...optgroups.filter((group) => group.children.length));
  $("add-op").value = "brightness";
}

async function upload(file) {
  if (!file) return;
  const panel = $("load-panel");
  panel.setAttribute("aria-busy", "true");
  const note = $("working-note").textContent;
  $("working-note").textContent = `Uploading ${(file.size / 1e6).toFixed(1)} MB…`;
  let data;
  try {
    data = await postFile("/api/images", file);
  } catch (error) {
    errors.show(`Upload refused: ${error.message}`, "upload");
    $("working-note").textContent = note;
    return;
  } finally {
    panel.setAttribute("aria-busy", "false");
    $("file").value = "";
    $("camera").value = "";
  }
  errors.clear("upload");
  state.image = data.id;
  fillSamples();
  writeLink();
  loadSource();
}

/** Copies a snippet; without a clipboard (plain http on a LAN) selects it for Ctrl+C. */
async function copyText(button, pre) {
  const text = button.textContent;
  try {
    await navigator.clipboard.writeText(pre.textContent);
    button.textContent = "✓ Copied";
  } catch {
    getSelection().selectAllChildren(pre);
    button.textContent = "Selected: press Ctrl+C";
  }
  setTimeout(() => { button.textContent = text; }, COPIED_MS);
}

async function download() {
  const button = $("download");
  button.disabled = true;
  try {
    const blob = await postForBlob(`${API}/pipeline.png`, pipelineBody());
    const url = URL.createObjectURL(blob);
    const a = htmlElement("a");
    Object.assign(a, { href: url, download: "pipeline.png" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    errors.clear("download");
  } catch (error) {
    if (!expired(error)) errors.show(`The PNG could not be made: ${error.message}`, "download");
  } finally {
    button.disabled = false;
  }
}

function wire() {
  $("sample").addEventListener("change", () => {
    if ($("sample").value === "upload") return;
    state.sample = $("sample").value;
    state.image = "";
    errors.clear("upload");
    fillSamples();
    writeLink();
    loadSource();
  });
  for (const input of [$("file"), $("camera")]) input.addEventListener("change", () => upload(input.files[0]));
  const zone = $("load-panel");
  // A file dropped anywhere on the page is not opened by the browser; on the load panel it is uploaded.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());
  zone.addEventListener("dragover", () => zone.classList.add("dropping"));
  zone.addEventListener("dragleave", (e) => {
    if (!zone.contains(e.relatedTarget)) zone.classList.remove("dropping");
  });
  zone.addEventListener("drop", (e) => {
    zone.classList.remove("dropping");
    upload(e.dataTransfer.files[0]);
  });
  $("add-step").addEventListener("click", () => addStep($("add-op").value));
  $("course-steps").addEventListener("click", () => {
    state.steps = decodeSteps(COURSE_STEPS, ops).steps;
    stepsChanged();
  });
  $("clear-steps").addEventListener("click", () => {
    state.steps = [];
    stepsChanged();
  });
  $("download").addEventListener("click", download);
  $("copy-snippet").addEventListener("click", () => copyText($("copy-snippet"), $("snippet")));
  $("copy-aug-snippet").addEventListener("click", () => copyText($("copy-aug-snippet"), $("aug-snippet")));
  $("new-seed").addEventListener("click", () => {
    state.seed = Math.floor(Math.random() * NEW_SEEDS);
    views.augmentBar.update(state);
    channels.augment.run();
    writeLink();
  });
}

async function main() {
  catalog = await getJSON(`${API}/catalog`);
  ops = new Map(catalog.operations.map((o) => [o.op, o]));
  augmentations = new Map(catalog.augmentations.map((a) => [a.op, a]));
  const decodeChoices = (list) => new Map(list.map((c) => [String(c.value), c.label]));
  decodeSpec = {
    op: "decode", title: "decode", tf_function: "tf.io.decode_image",
    params: [
      { name: "channels", type: "int", default: 0, choices: catalog.decode.channels.map((c) => c.value),
        doc: "0: as in the file; 1 gray, 3 RGB (alpha dropped), 4 RGBA" },
      { name: "dtype", type: "str", default: "uint8", choices: catalog.decode.dtypes.map((d) => d.value),
        doc: "float32 is scaled to [0, 1]; uint16 keeps a 16-bit file's every bit" },
      { name: "apply_exif", type: "bool", default: false,
        doc: "turn the pixels upright by the EXIF orientation with tf.image calls: tf.io.decode_image never does" },
    ],
  };
  labels = {
    steps: choiceLabels($("choice-labels")),
    decode: new Map([
      ["channels", decodeChoices(catalog.decode.channels)],
      ["dtype", decodeChoices(catalog.decode.dtypes)],
    ]),
  };
  fillOperations();
  views = {
    facts: new FileFacts({
      facts: $("facts"), notes: $("decode-notes"), figures: $("orientation-figures"),
      exif: $("exif-line"), working: $("working-note"),
    }),
    pipeline: new PipelineView({ strip: $("strip"), list: $("stages") }, pipelineHandlers),
    normalizations: new NormalizationView({ grid: $("norm-grid"), network: $("norm-network") }),
    augmentBar: new Controls($("aug-bar"), (name, value, final) => {
      if (name === "seed" && !final) return; // a seed is sent once typed
      state[name] = value;
      channels.augment.run();
      writeLinkSoon();
    }),
    augmentChoices: new AugmentChoices($("aug-choices"), catalog.augmentations, (chosen, final) => {
      state.augment = chosen;
      channels.augment.run();
      if (final) writeLink();
      else writeLinkSoon();
    }),
    augmentGrid: new AugmentGrid($("aug-grid"), new Map(catalog.augmentations.map((a) => [a.op, a.title]))),
  };
  channels = makeChannels();
  link = new LinkState(props());
  wire();
  apply(link.read());
  link.listen(apply);
}

main().catch((error) => errors.show(`The lab could not start: ${error.message}`, "start"));
