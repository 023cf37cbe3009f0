// The "Multi-layer networks" lab page: wires the controls → the socket → the views. The views get
// plain arrays; this module is the only one that knows both the page and the wire.
import {
  CLIENT_MESSAGES as SEND, MAX_LAYERS, MAX_SEED, SERVER_MESSAGES as RECEIVE,
} from "../protocol.js";
import { LabSocket } from "../socket.js";
import { isWire, parseHash, serializeHash, wireConfig } from "../state.js";
import { Controls } from "../views/controls.js";
import { Heatmap } from "../views/heatmap.js";
import { LossChart } from "../views/lossChart.js";
import { NetworkView } from "../views/network.js";

const SOCKET_PATH = "/ws/mlp";
/** Config messages go out at most this often while a slider is dragged (≤ 20 a second). */
const SEND_INTERVAL_MS = 50;
/** The URL is rewritten this long after the last change (browsers throttle history updates). */
const HASH_DELAY_MS = 250;
const NEW_LAYER_SIZE = 2;
const COPIED_MS = 1500;
/** Features whose neurons' boundaries are straight lines in the (x1, x2) plane. */
const LINEAR_FEATURES = ["x1", "x2"];
const NOTES = {
  features: "Lines are shown only when the features are x₁ and x₂: with x₁², sin x₁ … a " +
    "neuron's boundary is curved in this plane (look at its picture in the network).",
  noHidden: "No hidden layer: the output is one neuron, and its line is where the colours meet.",
};

const $ = (id) => document.getElementById(id);
const formatLoss = (v) => (v === null ? "—" : v.toFixed(3));
const formatAccuracy = (v) => (v === null ? "" : `${Math.round(v * 100)} % right`);

/** What the page tracks of one server session: `sent` counts our config messages, `newest` the
 *  newest `state` version seen (older frames are stale), `lastStep` the last frame's step. */
const newSession = () => ({ sent: 0, newest: -1, lastStep: -1, running: false, lastState: null });

/** Splits a frame's binary message into the output grid and each drawn hidden neuron's grid. */
function splitGrids(frame, bytes) {
  if (bytes.length !== frame.frame_bytes) {
    throw Error(`frame announced ${frame.frame_bytes} bytes, got ${bytes.length}`);
  }
  let offset = frame.grid_size ** 2;
  const cell = frame.neuron_grid_size ** 2;
  const neuronGrids = frame.drawn.slice(1, -1).map((count) => Array.from({ length: count }, () => {
    offset += cell;
    return bytes.subarray(offset - cell, offset);
  }));
  if (offset !== bytes.length) throw Error(`frame grids need ${offset} bytes, got ${bytes.length}`);
  return { outputGrid: bytes.subarray(0, frame.grid_size ** 2), neuronGrids };
}

/**
 * Each drawn first-layer neuron's line w·x + b = 0 in the (x1, x2) plane, or a note saying why there
 * are none. Weight rows follow the config's feature order; a missing x1 or x2 has weight 0.
 */
function firstLayerLines(features, frame) {
  if (frame.layers.length < 3) return { lines: [], note: NOTES.noHidden };
  if (!features.every((f) => LINEAR_FEATURES.includes(f))) {
    return { lines: [], note: NOTES.features };
  }
  const lines = frame.biases[0].map((b, j) => {
    const w = LINEAR_FEATURES.map((name) => {
      const row = features.indexOf(name);
      return row < 0 ? 0 : frame.weights[0][row][j];
    });
    return { w, b, label: j + 1 };
  });
  return { lines, note: "" };
}

class MlpLab {
  constructor() {
    const { state, rejected } = parseHash(location.hash);
    this.state = state;
    this.session = newSession();
    this.outbox = { changes: {}, timer: null, lastSent: 0 };
    this.latest = null;
    this.neuronLines = { lines: [], note: "" };
    this.hashTimer = null;
    this.controls = new Controls($("mlp"), (name, v, final) => this.set({ [name]: v }, final));
    this.heatmap = new Heatmap($("output-heatmap"));
    this.chart = new LossChart($("loss-chart"));
    this.network = new NetworkView($("network"), {
      onToggleFeature: (f) => this.toggleFeature(f),
      onLayerSize: (l, n) => this.set({ hidden: this.state.hidden.map((h, i) => (i === l ? n : h)) }),
    });
    this.bindButtons();
    this.show();
    this.writeHash();
    this.reportRejected(rejected);
    this.socket = new LabSocket(SOCKET_PATH, {
      onOpen: () => this.onOpen(),
      onMessage: (message, bytes) => this.onMessage(message, bytes),
      onStatus: (status, detail) => this.showStatus(status, detail),
    });
  }

  bindButtons() {
    const click = (id, fn) => $(id).addEventListener("click", fn);
    click("play", () => this.togglePlay());
    click("step", () => this.socket.send({ type: SEND.STEP }));
    click("reset", () => this.socket.send({ type: SEND.RESET }));
    click("new-data", () => this.set({ seed: Math.floor(Math.random() * MAX_SEED) }));
    click("add-layer", () => this.set({ hidden: [...this.state.hidden, NEW_LAYER_SIZE] }));
    click("remove-layer", () => this.set({ hidden: this.state.hidden.slice(0, -1) }));
    click("copy-link", () => this.copyLink());
    click("error-close", () => { $("error-banner").hidden = true; });
    window.addEventListener("hashchange", () => {
      const { state, rejected } = parseHash(location.hash);
      this.set(state);
      this.reportRejected(rejected);
    });
    // Space plays/pauses unless a control has focus (there it keeps its own meaning).
    document.addEventListener("keydown", (e) => {
      if (e.key !== " " || e.target.closest?.("button, input, select, textarea, a")) return;
      e.preventDefault();
      this.togglePlay();
    });
  }

  /** A change the user made: applied here and, for wire props, sent to the server. */
  set(changes, final = true) {
    this.apply(changes);
    const wire = Object.keys(changes).filter(isWire);
    if (wire.length) this.queueConfig(wireConfig(this.state, wire), final);
  }

  /** Puts changes into the state, the controls, the views and (a little later) the URL. */
  apply(changes) {
    Object.assign(this.state, changes);
    this.show();
    clearTimeout(this.hashTimer);
    this.hashTimer = setTimeout(() => this.writeHash(), HASH_DELAY_MS);
  }

  writeHash() {
    history.replaceState(null, "", `#${serializeHash(this.state)}`);
  }

  reportRejected(rejected) {
    if (rejected.length) this.showError(`Ignored in the link: ${rejected.join(", ")}`);
  }

  toggleFeature(name) {
    const { features } = this.state;
    const on = features.includes(name);
    this.set({ features: on ? features.filter((f) => f !== name) : [...features, name] });
  }

  /** Merges config changes and sends them at most every SEND_INTERVAL_MS; final ones go at once. */
  queueConfig(changes, final) {
    Object.assign(this.outbox.changes, changes);
    const wait = this.outbox.lastSent + SEND_INTERVAL_MS - performance.now();
    if (final || wait <= 0) this.flushConfig();
    else this.outbox.timer ??= setTimeout(() => this.flushConfig(), wait);
  }

  flushConfig() {
    clearTimeout(this.outbox.timer);
    this.outbox.timer = null;
    if (!Object.keys(this.outbox.changes).length) return;
    if (this.socket?.send({ type: SEND.CONFIG, ...this.outbox.changes })) this.session.sent += 1;
    this.outbox = { changes: {}, timer: null, lastSent: performance.now() };
  }

  togglePlay() {
    this.session.running = !this.session.running;
    this.socket.send({ type: this.session.running ? SEND.PLAY : SEND.PAUSE });
    this.showRunning();
  }

  /** A new connection is a new server session: send it the whole state, start the chart over. */
  onOpen() {
    this.session = newSession();
    this.chart.reset();
    this.heatmap.reset();
    this.network.reset();
    this.outbox.changes = wireConfig(this.state);
    this.flushConfig();
    this.showRunning();
  }

  onMessage(message, bytes) {
    switch (message.type) {
      case RECEIVE.STATE: return this.onState(message);
      case RECEIVE.DATA: {
        const { train, test, domain } = message;
        return this.heatmap.update({ train, test, domain });
      }
      case RECEIVE.FRAME: return this.onFrame(message, bytes);
      case RECEIVE.ERROR:
        // A rejected config is not counted in `version`: stop waiting for it, show what runs.
        if (isWire(message.field)) {
          this.session.sent -= 1;
          this.adoptServerConfig();
        }
        return this.showError(message.message);
      default: throw Error(`unknown message type ${message.type}`);
    }
  }

  onState(message) {
    this.session.newest = Math.max(this.session.newest, message.version);
    this.session.running = message.running;
    this.session.lastState = message;
    this.adoptServerConfig();
    this.showRunning();
    $("diverged-banner").hidden = !message.diverged;
  }

  /** Shows the server's config once it applied all we sent (sooner, a dragged slider jumps back). */
  adoptServerConfig() {
    const { lastState, sent } = this.session;
    if (!lastState || lastState.version < sent) return;
    const differs = ([k, v]) => JSON.stringify(v) !== JSON.stringify(this.state[k]);
    if (Object.entries(lastState.config).some(differs)) this.apply(lastState.config);
  }

  onFrame(frame, bytes) {
    if (frame.version < this.session.newest) return;
    if (frame.step < this.session.lastStep) this.chart.reset();
    if (frame.step !== this.session.lastStep) {
      const { epoch, loss, test_loss: testLoss, diverged } = frame;
      this.chart.update({ epoch, losses: [loss, testLoss], diverged });
    }
    this.session.lastStep = frame.step;
    // `running` comes from `state` only: a frame computed before a pause can arrive after it.
    $("diverged-banner").hidden = !frame.diverged;
    // Draw only the newest frame, once per display refresh.
    if (!this.latest) requestAnimationFrame(() => this.draw());
    this.latest = { frame, bytes };
  }

  draw() {
    const { frame, bytes } = this.latest;
    this.latest = null;
    const { outputGrid, neuronGrids } = splitGrids(frame, bytes);
    this.network.update({
      ...frame, neuronGrids, outputGrid,
      neuronGridSize: frame.neuron_grid_size, gridSize: frame.grid_size,
    });
    // Until the server applies a change of features, its frames are for the old inputs.
    if (frame.layers[0] === this.state.features.length) {
      this.neuronLines = firstLayerLines(this.state.features, frame);
    }
    this.showLines({ grid: outputGrid, size: frame.grid_size, domain: frame.domain });
    $("epoch").textContent = Math.floor(frame.epoch).toLocaleString("en");
    $("step-count").textContent = frame.step.toLocaleString("en");
    $("train-loss").textContent = frame.diverged ? "diverged" : formatLoss(frame.loss);
    $("test-loss").textContent = frame.diverged ? "diverged" : formatLoss(frame.test_loss);
    $("train-accuracy").textContent = frame.diverged ? "" : formatAccuracy(frame.accuracy);
    $("test-accuracy").textContent = frame.diverged ? "" : formatAccuracy(frame.test_accuracy);
  }

  /** Shows the local state in the controls and the views that do not wait for the server. */
  show() {
    const { hidden } = this.state;
    this.controls.update(this.state);
    this.network.setArchitecture(this.state);
    this.heatmap.update({ showTest: this.state.show_test });
    this.showLines();
    $("layer-count").value = `${hidden.length} hidden layer${hidden.length === 1 ? "" : "s"}`;
    $("add-layer").disabled = hidden.length >= MAX_LAYERS;
    $("remove-layer").disabled = hidden.length === 0;
  }

  /** Draws the first layer's lines (if shown) in one heatmap update with `heatmapData`. */
  showLines(heatmapData = {}) {
    const { lines, note } = this.neuronLines;
    this.heatmap.update({ ...heatmapData, lines: this.state.lines ? lines : [] });
    $("lines-note").textContent = note;
    $("lines-note").hidden = !this.state.lines || !note;
  }

  showRunning() {
    const button = $("play");
    button.textContent = this.session.running ? "❚❚ Pause" : "▶ Play";
    button.classList.toggle("running", this.session.running);
  }

  showStatus(status, { reason = "", retryInMs = 0 } = {}) {
    const why = reason ? ` (${reason})` : "";
    const text = {
      connecting: "connecting…",
      connected: "connected",
      disconnected: `disconnected${why}, retrying in ${Math.ceil(retryInMs / 1000)} s`,
    }[status];
    $("connection").textContent = text;
    $("connection").dataset.status = status;
  }

  showError(text) {
    $("error-text").textContent = text;
    $("error-banner").hidden = false;
  }

  async copyLink() {
    this.writeHash();
    try {
      await navigator.clipboard.writeText(location.href);
      $("copy-link").textContent = "✓ Copied";
      setTimeout(() => { $("copy-link").textContent = "Copy link"; }, COPIED_MS);
    } catch {
      // No clipboard (plain http on a LAN, or denied): let the user copy the selected text.
      const field = $("link-text");
      Object.assign(field, { hidden: false, value: location.href });
      field.select();
    }
  }
}

new MlpLab();
