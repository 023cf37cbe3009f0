// The "Single neurons" lab page: controls → the /ws/neurons socket → the views, and the URL hash.
// The views get plain arrays; this module is the only one that knows both the page and the wire.
import { LabSocket } from "../socket.js";
import { NeuronLossChart, NeuronSurface } from "../views/neuronCharts.js";
import { NeuronDiagram } from "../views/neuronDiagram.js";
import { CLASS_COLORS, NeuronFit, paintPlane } from "../views/neuronFit.js";

const SOCKET_PATH = "/ws/neurons";
const SEND_INTERVAL_MS = 50;
const HASH_DELAY_MS = 250;
const MAX_SEED = 2147483647;
/** Data sets each model learns from (app/protocol_neurons.py DATASETS); the first is its default. */
const DATASETS = { linear: ["line"], logistic: ["linear", "xor"], softmax: ["three", "iris"] };
const IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
/** The page's state ⇄ the URL hash, one row per NeuronConfig field (as static/js/state.js). */
const PROPS = [
  { name: "model", parse: (t) => (t in DATASETS ? t : undefined), default: "linear" },
  { name: "dataset", parse: (t) => (Object.values(DATASETS).flat().includes(t) ? t : undefined), default: "line" },
  { name: "noise", parse: num(0, 0.5), default: 0.1 },
  { name: "slope", parse: num(-3, 3), default: 0.5 },
  { name: "intercept", parse: num(-3, 3), default: 1 },
  { name: "iris_features", parse: irisPair, default: ["petal_length", "petal_width"] },
  { name: "learning_rate", parse: num(0.0001, 10), default: 0.03 },
  { name: "seed", parse: int(0, MAX_SEED), default: 1 },
  { name: "speed", parse: int(1, 1000), default: 5 },
];

function num(lo, hi) {
  return (t) => (t !== "" && Number.isFinite(Number(t)) ? Math.min(hi, Math.max(lo, Number(t))) : undefined);
}
function int(lo, hi) {
  return (t) => (/^\d+$/.test(t) ? Math.min(hi, Math.max(lo, Number(t))) : undefined);
}
function irisPair(t) {
  const pair = t.split(",");
  const ok = pair.length === 2 && pair[0] !== pair[1] && pair.every((f) => IRIS_FEATURES.includes(f));
  return ok ? pair : undefined;
}

function parseHash(hash) {
  const state = Object.fromEntries(PROPS.map((p) => [p.name, structuredClone(p.default)]));
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  for (const p of PROPS) {
    const v = params.has(p.name) ? p.parse(params.get(p.name)) : undefined;
    if (v !== undefined) state[p.name] = v;
  }
  if (!DATASETS[state.model].includes(state.dataset)) state.dataset = DATASETS[state.model][0];
  return state;
}

const serializeHash = (state) => PROPS.map((p) => `${p.name}=${[state[p.name]].flat().join(",")}`).join("&");

/** The multi-layer lab at the same data and learning rate, in its hash format (static/js/state.js). */
const mlpLink = (s) =>
  `/labs/mlp#dataset=xor&noise=${s.noise}&seed=${s.seed}&learning_rate=${s.learning_rate}`;

const $ = (id) => document.getElementById(id);
const fmt = (v, digits = 3) => (v === null || v === undefined ? "–" : v.toFixed(digits));

class NeuronsLab {
  constructor() {
    this.state = parseHash(location.hash);
    this.sent = 0;
    this.newest = -1;
    this.running = false;
    this.lastState = null;
    this.data = null;
    this.latest = null;
    this.outbox = {};
    this.sendTimer = null;
    this.hashTimer = null;
    this.fit = new NeuronFit($("fit"));
    this.diagram = new NeuronDiagram($("diagram"));
    this.chart = new NeuronLossChart($("loss-chart"));
    this.surface = new NeuronSurface($("surface"));
    this.classMaps = [0, 1, 2].map(() => document.createElement("canvas"));
    $("class-maps").append(...this.classMaps.map((canvas, k) => {
      const figure = document.createElement("figure");
      const caption = document.createElement("figcaption");
      caption.dataset.classMap = k;
      figure.append(canvas, caption);
      return figure;
    }));
    this.fillIrisSelects();
    this.bind();
    this.show();
    this.socket = new LabSocket(SOCKET_PATH, {
      onOpen: () => this.onOpen(),
      onMessage: (message, bytes) => this.onMessage(message, bytes),
      onStatus: (status, detail) => this.showStatus(status, detail),
    });
  }

  fillIrisSelects() {
    for (const select of document.querySelectorAll("[data-iris]")) {
      for (const f of IRIS_FEATURES) select.add(new Option(f.replace("_", " "), f));
    }
  }

  bind() {
    const root = $("neurons");
    root.querySelectorAll("[data-model]").forEach((b) => b.addEventListener("click", () => {
      const model = b.dataset.model;
      const dataset = DATASETS[model].includes(this.state.dataset) ? this.state.dataset : DATASETS[model][0];
      this.set({ model, dataset });
    }));
    root.querySelectorAll("[data-dataset]").forEach((b) => b.addEventListener("click", () => {
      this.set({ dataset: b.dataset.dataset });
    }));
    root.querySelectorAll("input[data-prop]").forEach((input) => {
      input.addEventListener("input", () => this.set({ [input.dataset.prop]: Number(input.value) }, false));
      input.addEventListener("change", () => this.set({ [input.dataset.prop]: Number(input.value) }));
    });
    root.querySelectorAll("select[data-prop]").forEach((select) => select.addEventListener("change", () => {
      this.set({ [select.dataset.prop]: Number(select.value) });
    }));
    root.querySelectorAll("[data-iris]").forEach((select) => select.addEventListener("change", () => {
      const pair = [...this.state.iris_features];
      pair[Number(select.dataset.iris)] = select.value;
      if (pair[0] === pair[1]) pair[1 - Number(select.dataset.iris)] = this.state.iris_features[Number(select.dataset.iris)];
      this.set({ iris_features: pair });
    }));
    $("play").addEventListener("click", () => {
      this.running = !this.running;
      this.socket.send({ type: this.running ? "play" : "pause" });
      this.showRunning();
    });
    $("step").addEventListener("click", () => this.socket.send({ type: "step" }));
    $("reset").addEventListener("click", () => this.socket.send({ type: "reset" }));
    $("new-data").addEventListener("click", () => this.set({ seed: Math.floor(Math.random() * MAX_SEED) }));
    $("error-close").addEventListener("click", () => { $("error-banner").hidden = true; });
    window.addEventListener("hashchange", () => this.set(parseHash(location.hash)));
  }

  /** A user's change: shown at once, sent to the server (sliders at most every SEND_INTERVAL_MS). */
  set(changes, final = true) {
    this.apply(changes);
    Object.assign(this.outbox, changes);
    if (final) this.flush();
    else this.sendTimer ??= setTimeout(() => this.flush(), SEND_INTERVAL_MS);
  }

  flush() {
    clearTimeout(this.sendTimer);
    this.sendTimer = null;
    if (!Object.keys(this.outbox).length) return;
    if (this.socket?.send({ type: "config", ...this.outbox })) this.sent += 1;
    this.outbox = {};
  }

  apply(changes) {
    Object.assign(this.state, changes);
    this.show();
    clearTimeout(this.hashTimer);
    this.hashTimer = setTimeout(() => history.replaceState(null, "", `#${serializeHash(this.state)}`), HASH_DELAY_MS);
  }

  onOpen() {
    this.sent = 0;
    this.newest = -1;
    this.lastState = null;
    this.chart.reset();
    this.outbox = Object.fromEntries(PROPS.map((p) => [p.name, this.state[p.name]]));
    this.flush();
    this.running = false;
    this.showRunning();
  }

  onMessage(message, bytes) {
    switch (message.type) {
      case "state": return this.onState(message);
      case "data": return this.onData(message);
      case "frame": return this.onFrame(message, bytes);
      case "error":
        if (message.field && message.field in this.state) {
          this.sent -= 1;
          this.adoptServerConfig();
        }
        $("error-text").textContent = message.message;
        $("error-banner").hidden = false;
        return undefined;
      default: throw Error(`unknown message type ${message.type}`);
    }
  }

  onState(message) {
    this.newest = Math.max(this.newest, message.version);
    this.running = message.running;
    this.lastState = message;
    this.adoptServerConfig();
    this.showRunning();
    $("diverged-banner").hidden = !message.diverged;
  }

  /** Takes the server's config once it applied all we sent (sooner, a dragged slider jumps back). */
  adoptServerConfig() {
    const { lastState } = this;
    if (!lastState || lastState.version < this.sent) return;
    const differs = ([k, v]) => JSON.stringify(v) !== JSON.stringify(this.state[k]);
    if (Object.entries(lastState.config).some(differs)) this.apply(lastState.config);
  }

  onData(message) {
    if (message.version < this.sent) return;  // points of a config we already changed again
    this.data = message;
    this.chart.reset();
    this.fit.reset();
    this.fit.update({ model: message.model, points: message.points, domain: message.domain, axes: message.axes });
    if (message.model === "linear") this.surface.setData(message.points);
    this.showLegend();
  }

  onFrame(frame, bytes) {
    if (frame.version < this.newest || !this.data) return;
    if (frame.step === 0) {
      this.chart.reset();
      this.surface.reset();
    }
    if (!frame.diverged) this.chart.update({ step: frame.step, loss: frame.loss });
    $("diverged-banner").hidden = !frame.diverged;
    if (!this.latest) requestAnimationFrame(() => this.draw());
    this.latest = { frame, bytes };
  }

  draw() {
    const { frame, bytes } = this.latest;
    this.latest = null;
    const { model } = this.data;
    const w = frame.weights, b = frame.bias;
    this.fit.update({ w, b, ...(bytes.length ? { grid: bytes, size: frame.grid_size } : {}) });
    const inputs = model === "linear" ? ["x"] :
      this.data.dataset === "iris" ? this.state.iris_features.map((f) => f.replace("_", " ")) : ["x₁", "x₂"];
    this.diagram.update({ model, inputs, w, b });
    if (model === "linear") this.surface.update({ w: w[0][0], b: b[0] });
    if (model === "softmax" && bytes.length) {
      const cells = frame.grid_size ** 2;
      this.classMaps.forEach((canvas, k) => {
        paintPlane(canvas, bytes.subarray(k * cells, (k + 1) * cells), frame.grid_size, CLASS_COLORS[k]);
      });
    }
    $("step-count").textContent = frame.step.toLocaleString("en");
    $("loss").textContent = frame.diverged ? "diverged" : fmt(frame.loss);
    $("accuracy").textContent = frame.accuracy === null ? "–" : `${Math.round(frame.accuracy * 100)} %`;
  }

  /** Shows the local state in the controls and the parts of the page that depend on it only. */
  show() {
    const s = this.state;
    const root = $("neurons");
    root.querySelectorAll("[data-model]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.model === s.model)));
    root.querySelectorAll("[data-dataset]").forEach((b) => {
      b.hidden = b.dataset.forModel !== s.model;
      b.setAttribute("aria-pressed", String(b.dataset.dataset === s.dataset));
    });
    root.querySelectorAll("[data-show]").forEach((el) => { el.hidden = !el.dataset.show.split(" ").includes(s.dataset); });
    root.querySelectorAll("[data-show-model]").forEach((el) => { el.hidden = !el.dataset.showModel.split(" ").includes(s.model); });
    root.querySelectorAll("[data-prop]").forEach((el) => { el.value = String(s[el.dataset.prop]); });
    root.querySelectorAll("output[data-for]").forEach((el) => { el.value = String(s[el.dataset.for]); });
    root.querySelectorAll("[data-iris]").forEach((el) => { el.value = s.iris_features[Number(el.dataset.iris)]; });
    const xor = s.model === "logistic" && s.dataset === "xor";
    $("xor-note").hidden = !xor;
    $("mlp-link").href = mlpLink(s);
  }

  showLegend() {
    const { classes } = this.data;
    const dot = (k) => `<span class="dot" style="background: rgb(${CLASS_COLORS[k].join(",")})"></span>`;
    const items = classes.length ? classes.map((name, k) => `${dot(k)} ${name}`) : [`${dot(1)} data point`];
    const line = { linear: "fitted line", logistic: "separating line p = 0.5", softmax: "" }[this.data.model];
    if (line) items.push(`<span class="swatch ${this.data.model}"></span> ${line}`);
    $("legend").innerHTML = items.join(" ");
    $("class-maps").querySelectorAll("figcaption").forEach((c, k) => { c.textContent = `p(${classes[k] ?? k})`; });
  }

  showRunning() {
    $("play").textContent = this.running ? "❚❚ Pause" : "▶ Play";
    $("play").classList.toggle("running", this.running);
  }

  showStatus(status, { reason = "", retryInMs = 0 } = {}) {
    const why = reason ? ` (${reason})` : "";
    $("connection").textContent = {
      connecting: "connecting…",
      connected: "connected",
      disconnected: `disconnected${why}, retrying in ${Math.ceil(retryInMs / 1000)} s`,
    }[status];
    $("connection").dataset.status = status;
  }
}

new NeuronsLab();
