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
