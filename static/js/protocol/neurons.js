// Mirror of app.protocol.neurons: the names of the /ws/neurons wire contract (docs/protocol.md).
// tests/app/test_protocol_mirror.py parses every `Object.freeze(...)` literal below as JSON and
// compares it with the Python side's `mirror()`, so keep them JSON (quoted keys, no trailing commas).

/** Message types the page sends (the same control messages as the multi-layer lab's). */
export const CLIENT_MESSAGES = Object.freeze({
  "CONFIG": "config", "PLAY": "play", "PAUSE": "pause", "STEP": "step", "RESET": "reset"
});

/** Message types the server sends. */
export const SERVER_MESSAGES = Object.freeze({
  "STATE": "state", "DATA": "data", "FRAME": "frame", "ERROR": "error"
});

export const MODELS = Object.freeze(["linear", "logistic", "softmax"]);
/** The data sets each model learns from; the first is the one a model switch picks. */
export const DATASETS = Object.freeze({
  "linear": ["line"], "logistic": ["linear", "xor"], "softmax": ["three", "iris"]
});
export const IRIS_FEATURES = Object.freeze(["sepal_length", "sepal_width", "petal_length", "petal_width"]);

export const MAX_STEPS_PER_FRAME = 1000;
export const MAX_SEED = 2147483647;

/** Every NeuronConfig field with the default a new session starts from. */
export const CONFIG_DEFAULTS = Object.freeze({
  "model": "linear",
  "dataset": "line",
  "noise": 0.1,
  "slope": 0.5,
  "intercept": 1.0,
  "iris_features": ["petal_length", "petal_width"],
  "learning_rate": 0.03,
  "seed": 1,
  "speed": 5
});

/** [min, max] of the numeric NeuronConfig fields (pydantic's ge/le). */
export const LIMITS = Object.freeze({
  "noise": [0.0, 0.5],
  "slope": [-3.0, 3.0],
  "intercept": [-3.0, 3.0],
  "learning_rate": [0.0001, 10.0],
  "seed": [0, 2147483647],
  "speed": [1, 1000]
});
