// Mirror of app.protocol.mlp: the names of the /ws/mlp wire contract (docs/protocol.md).
// tests/app/test_protocol_mirror.py parses every `Object.freeze(...)` literal below as JSON and
// compares it with the Python side's `mirror()`, so keep them JSON (quoted keys, no trailing commas).

/** Message types the page sends (CLIENT_MESSAGES' `type` literals). */
export const CLIENT_MESSAGES = Object.freeze({
  "CONFIG": "config", "PLAY": "play", "PAUSE": "pause", "STEP": "step", "RESET": "reset",
  "SET_WEIGHT": "set_weight"
});

/** Message types the server sends (SERVER_MESSAGES' `type` literals). */
export const SERVER_MESSAGES = Object.freeze({
  "STATE": "state", "DATA": "data", "FRAME": "frame", "ERROR": "error"
});

/** What the network learns: labels 0/1 (a sigmoid output) or a value in [-1, 1] (a linear one). */
export const PROBLEMS = Object.freeze(["classification", "regression"]);
/** Each problem's data sets, in the order the page lists them. */
export const DATASETS = Object.freeze({
  "classification": ["xor", "circle", "gauss", "spiral"],
  "regression": ["plane", "multi-gaussian"]
});
export const FEATURES = Object.freeze(["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"]);
export const ACTIVATIONS = Object.freeze(["tanh", "relu", "sigmoid", "linear"]);
export const REGULARIZATIONS = Object.freeze(["none", "l1", "l2"]);
/** Named speeds; an integer 1 … MAX_STEPS_PER_FRAME is also a speed (steps per frame). */
export const SPEEDS = Object.freeze(["epoch", "max"]);

export const MAX_LAYERS = 6;
export const MAX_NEURONS = 50;
export const MAX_STEPS_PER_FRAME = 10000;
export const MAX_SEED = 2147483647;
/** |value| of a `set_weight` at most this. */
export const MAX_WEIGHT = 100;

/**
 * A frame is one binary message (little-endian): a FRAME_HEADER_BYTES header laid out as
 * FRAME_LAYOUT (field: [byte offset, DataView type, count]), then the drawn weights and biases as
 * float32 (weights[0] row by row, biases[0], weights[1] …), then the grids as uint8.
 */
export const FRAME_KIND = 1;
export const FRAME_HEADER_BYTES = 64;
export const FRAME_FLAGS = Object.freeze({ "DIVERGED": 1, "RUNNING": 2 });
export const FRAME_LAYOUT = Object.freeze({
  "kind": [0, "Uint8", 1], "flags": [1, "Uint8", 1], "grid_size": [2, "Uint8", 1],
  "neuron_grid_size": [3, "Uint8", 1], "version": [4, "Uint32", 1],
  "steps_per_frame": [8, "Uint32", 1], "domain": [12, "Float32", 1], "step": [16, "Float64", 1],
  "epoch": [24, "Float64", 1], "loss": [32, "Float32", 1], "test_loss": [36, "Float32", 1],
  "accuracy": [40, "Float32", 1], "test_accuracy": [44, "Float32", 1],
  "layers": [48, "Uint8", 8], "drawn": [56, "Uint8", 8]
});
const METRICS = ["loss", "test_loss", "accuracy", "test_accuracy"];

/**
 * Reads a frame's binary message (app.protocol.mlp.decode_frame is its Python twin).
 * @param {Uint8Array} bytes The whole message.
 * @returns {{frame: object, bytes: Uint8Array}} the frame (the fields of a `frame`, `type`
 *   included) and its grids: the output's, then each drawn hidden neuron's.
 */
export function decodeFrame(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read = (name) => {
    const [offset, type, count] = FRAME_LAYOUT[name];
    if (count === 1) return view[`get${type}`](offset, true);
    return Array.from(bytes.subarray(offset, offset + count));
  };
  if (read("kind") !== FRAME_KIND) throw Error(`not a frame: kind ${read("kind")}`);
  const layers = read("layers").filter((n) => n > 0);
  const drawn = read("drawn").slice(0, layers.length);
  let offset = FRAME_HEADER_BYTES;
  const floats = (n) => {
    const out = Array.from({ length: n }, (_, i) => view.getFloat32(offset + 4 * i, true));
    offset += 4 * n;
    return out;
  };
  const weights = [];
  const biases = [];
  for (let l = 0; l + 1 < drawn.length; l += 1) {
    const flat = floats(drawn[l] * drawn[l + 1]);
    weights.push(Array.from({ length: drawn[l] }, (_, i) => flat.slice(i * drawn[l + 1], (i + 1) * drawn[l + 1])));
    biases.push(floats(drawn[l + 1]));
  }
  const flags = read("flags");
  const frame = {
    type: SERVER_MESSAGES.FRAME, layers, drawn, weights, biases,
    diverged: Boolean(flags & FRAME_FLAGS.DIVERGED), running: Boolean(flags & FRAME_FLAGS.RUNNING),
  };
  for (const name of ["version", "step", "epoch", "steps_per_frame", "grid_size", "neuron_grid_size", "domain"]) {
    frame[name] = read(name);
  }
  for (const name of METRICS) {
    const v = read(name);
    frame[name] = Number.isNaN(v) ? null : v;
  }
  return { frame, bytes: bytes.subarray(offset) };
}

/** Every MlpConfig field with the default a new session starts from. */
export const CONFIG_DEFAULTS = Object.freeze({
  "problem": "classification",
  "dataset": "xor",
  "noise": 0.0,
  "train_ratio": 0.5,
  "features": ["x1", "x2"],
  "hidden": [4, 2],
  "activation": "tanh",
  "learning_rate": 0.03,
  "batch_size": 10,
  "regularization": "none",
  "regularization_rate": 0.0,
  "seed": 1,
  "speed": "epoch"
});

/** [min, max] of the numeric MlpConfig fields (pydantic's ge/le). */
export const LIMITS = Object.freeze({
  "noise": [0.0, 0.5],
  "train_ratio": [0.1, 0.9],
  "learning_rate": [0.0001, 10.0],
  "batch_size": [1, 100],
  "regularization_rate": [0.0, 10.0],
  "seed": [0, 2147483647]
});
