// Mirror of app.protocol.rnn: the names of the /ws/rnn wire contract (docs/protocol.md).
// tests/app/test_protocol_mirror.py parses every `Object.freeze(...)` literal below as JSON and
// compares it with the Python side's `mirror()`, so keep them JSON (quoted keys, no trailing commas).

/** Message types the page sends (the same control messages as every live lab's). */
export const CLIENT_MESSAGES = Object.freeze({
  "CONFIG": "config", "PLAY": "play", "PAUSE": "pause", "STEP": "step", "RESET": "reset"
});

/** Message types the server sends. */
export const SERVER_MESSAGES = Object.freeze({
  "STATE": "state", "DATA": "data", "FRAME": "frame", "ERROR": "error"
});

/** Every task; the forecasts and the memory tasks among them ("text" is the other kind). */
export const TASKS = Object.freeze(["sine", "sines", "square", "recall", "parity", "first_bit", "text"]);
export const FORECASTS = Object.freeze(["sine", "sines", "square"]);
export const MEMORY_TASKS = Object.freeze(["recall", "parity", "first_bit"]);

/** The cells (Keras's SimpleRNN, GRU, LSTM) and the names of their gate arrays in a frame. */
export const CELLS = Object.freeze(["simple_rnn", "gru", "lstm"]);
export const GATES = Object.freeze({
  "simple_rnn": [],
  "gru": ["update_gate", "reset_gate", "candidate"],
  "lstm": ["input_gate", "forget_gate", "candidate", "output_gate"]
});
export const OPTIMIZERS = Object.freeze(["sgd", "momentum", "rmsprop", "adam"]);

/** Element types of the arrays in a frame's binary message (its `arrays` say which). */
export const DTYPES = Object.freeze(["float32", "uint8"]);
/** The delays k of the memory curve. */
export const MEMORY_DELAYS = Object.freeze([1, 2, 4, 8, 16, 32]);

export const BATCH_SIZE = 32;
export const SAMPLE_LENGTH = 160;
export const MAX_STEPS_PER_FRAME = 200;
/** A longer paste is refused: check `new TextEncoder().encode(text).length` before sending. */
export const MAX_TEXT_BYTES = 8192;
export const MIN_TEXT_CHARS = 10;
export const MAX_VOCABULARY = 128;
export const MAX_SEED = 2147483647;

/** Every RnnConfig field with the default a new session starts from. */
export const CONFIG_DEFAULTS = Object.freeze({
  "task": "sine",
  "cell": "lstm",
  "units": 32,
  "length": 50,
  "period": 20.0,
  "noise": 0.1,
  "delay": 5,
  "text": "Twinkle, twinkle, little star,\nHow I wonder what you are!\nUp above the world so high,\nLike a diamond in the sky.\n\nWhen the blazing sun is gone,\nWhen he nothing shines upon,\nThen you show your little light,\nTwinkle, twinkle, all the night.\n\nThen the traveller in the dark\nThanks you for your tiny spark;\nHe could not see which way to go,\nIf you did not twinkle so.\n",
  "temperature": 0.8,
  "learning_rate": 0.01,
  "optimizer": "adam",
  "clip_norm": 1.0,
  "recurrent_scale": 1.0,
  "seed": 1,
  "speed": 10,
  "memory_curve": false
});

/** [min, max] of the numeric RnnConfig fields (pydantic's ge/le). */
export const LIMITS = Object.freeze({
  "units": [1, 128],
  "length": [5, 200],
  "period": [2.0, 100.0],
  "noise": [0.0, 1.0],
  "delay": [1, 199],
  "temperature": [0.1, 2.0],
  "learning_rate": [0.0001, 10.0],
  "clip_norm": [0.0, 100.0],
  "recurrent_scale": [0.0, 3.0],
  "seed": [0, 2147483647],
  "speed": [1, 200]
});
