"""Single neurons, the course's first models: linear regression, logistic regression, softmax.

A neuron is `z = x @ w + b` followed by an activation: identity (linear regression), sigmoid
(logistic regression) or softmax over several neurons (softmax classification). Parameters are
`w` of shape `(d, c)` and `b` of shape `(c,)`: d inputs, c outputs (1, 1 or 3 of them).

One call per model kind (`trainer`) runs K full-batch gradient-descent steps in-graph and then
evaluates the loss and, for the classifiers, the probability grid that is drawn: Python and
dispatch are paid once per frame. Each kind is traced once per process, with an
`input_signature`, so every session shares it; XLA-compiled, or plain.
"""

import csv
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from models.datasets import RADIUS
from models.flat_call import FlatCall

KINDS = ("linear", "logistic", "softmax")
# The data sets each kind learns from, the first its default: a line to fit, then points to classify.
DATASETS = {"linear": ("line",), "logistic": ("linear", "xor"), "softmax": ("three", "iris")}
GRID_SIZE = 48  # side of the probability grid the classifiers send each frame
DOMAIN = 6.0  # half-width of the drawn plane for the synthetic data
IRIS_DOMAIN = 3.0  # z-scored Iris features stay within about ±3
IRIS_PATH = Path(__file__).resolve().parent / "assets" / "iris.csv"
IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
IRIS_CLASSES = ("setosa", "versicolor", "virginica")
THREE_CLASS_RADIUS = 3.0
_SEPARATOR = np.array([0.8, -0.6])  # unit normal of the linear set's true boundary
_MARGIN = 0.6  # gap either side of that boundary, so noise 0 is cleanly separable


# -- data ----------------------------------------------------------------------------------------
def make_line(
    n: int, noise: float, seed: int, slope: float = 0.5, intercept: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy points around the line `y = slope · x + intercept`.

    Args:
        n: Number of points.
        noise: Float in [0, 0.5]. Standard deviation of the vertical noise, as a fraction of
            the x range's half-width (5): 0.5 gives a standard deviation of 2.5.
        seed: Integer seed; the same seed gives the same points.
        slope: Float. Slope of the true line. Defaults to 0.5.
        intercept: Float. Its value at x = 0. Defaults to 1.0.

    Returns:
        `(x, y)`: `x` of shape `(n, 1)` float32 in [-5, 5], `y` of shape `(n,)` float32.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(-RADIUS, RADIUS, size=(n, 1))
    y = slope * x[:, 0] + intercept + rng.normal(0.0, noise * RADIUS, size=n)
    return x.astype(np.float32), y.astype(np.float32)


def make_linear(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two classes either side of a slanted line, with a margin: one neuron separates them.

    Args:
        n: Number of points.
        noise: Float in [0, 0.5]. Label noise: the label is read from a jittered copy of the point.
        seed: Integer seed.

    Returns:
        `(x, y)`: `x` of shape `(n, 2)` float32, `y` of shape `(n,)` float32 in {0, 1}.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(-RADIUS, RADIUS, size=(n, 2))
    side = np.where(x @ _SEPARATOR + 0.5 >= 0, 1.0, -1.0)
    x = np.clip(x + side[:, None] * _MARGIN * _SEPARATOR, -RADIUS - 1, RADIUS + 1)
    jitter = rng.uniform(-RADIUS, RADIUS, size=(n, 2)) * noise
    y = ((x + jitter) @ _SEPARATOR + 0.5 >= 0).astype(np.float32)
    return x.astype(np.float32), y


def make_three_class(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs at 90°, 210° and 330°; noise widens them until they overlap.

    Args:
        n: Number of points, a third in each blob.
        noise: Float in [0, 0.5]. Maps linearly to a standard deviation from 0.6 to 2.1.
        seed: Integer seed.

    Returns:
        `(x, y)`: `x` of shape `(n, 2)` float32, `y` of shape `(n,)` int32 in {0, 1, 2}.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    angle = np.pi / 2 + y * 2 * np.pi / 3
    centres = THREE_CLASS_RADIUS * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    x = centres + rng.normal(0.0, 0.6 + 3.0 * noise, size=(n, 2))
    return np.clip(x, -DOMAIN, DOMAIN).astype(np.float32), y.astype(np.int32)


def load_iris(features: tuple[str, str] = ("petal_length", "petal_width")) -> dict:
    """Fisher's Iris measurements (150 flowers, 50 of each species), two features, z-scored.

    Args:
        features: Two distinct names from `IRIS_FEATURES`. Defaults to the petal measurements.

    Returns:
        A dict: `x` of shape `(150, 2)` float32 (each column z-scored, so one learning rate fits
        every pair), `y` of shape `(150,)` int32 (index into `IRIS_CLASSES`), `raw` of shape
        `(150, 4)` float32 (all four measurements in cm).
    """
    if len(features) != 2 or len(set(features)) != 2 or not set(features) <= set(IRIS_FEATURES):
        raise ValueError(f"features must be two distinct of {IRIS_FEATURES}. Received: {features}")
    with IRIS_PATH.open(newline="") as f:
        rows = list(csv.DictReader(f))
    raw = np.array([[float(r[k]) for k in IRIS_FEATURES] for r in rows], dtype=np.float32)
    y = np.array([IRIS_CLASSES.index(r["species"]) for r in rows], dtype=np.int32)
    x = raw[:, [IRIS_FEATURES.index(k) for k in features]]
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return {"x": x.astype(np.float32), "y": y, "raw": raw}


def init_params(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Small random starting weights for a model kind.

    Args:
        kind: One of `KINDS`.
        seed: Integer seed.

    Returns:
        `(w, b)` float32: `w` of shape `(d, c)`, `b` of shape `(c,)`.
    """
    d, c = {"linear": (1, 1), "logistic": (2, 1), "softmax": (2, 3)}[kind]
    rng = np.random.default_rng(seed + 7)
    w = rng.uniform(-1.0, 1.0, size=(d, c)) * (1.0 if kind == "linear" else 0.5)
    b = rng.uniform(-1.0, 1.0, size=c) * (1.0 if kind == "linear" else 0.5)
    return w.astype(np.float32), b.astype(np.float32)


# -- the neurons ---------------------------------------------------------------------------------
def probabilities(kind: str, x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """The neuron's output: identity, sigmoid or softmax of `x @ w + b`.

    Args:
        kind: One of `KINDS`.
        x: Inputs of shape `(n, d)`.
        w: Weights of shape `(d, c)`.
        b: Biases of shape `(c,)`.

    Returns:
        Shape `(n, c)`: the prediction (linear), P(class 1) (logistic), or the c class
        probabilities, each row summing to 1 (softmax).
    """
    z = tf.matmul(x, w) + b
    if kind == "linear":
        return z
    return tf.sigmoid(z) if kind == "logistic" else tf.nn.softmax(z, axis=-1)


def loss(kind: str, x: tf.Tensor, y: tf.Tensor, w: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Mean squared error, binary cross-entropy or categorical cross-entropy, averaged.

    Args:
        kind: One of `KINDS`.
        x: Inputs of shape `(n, d)`.
        y: Targets of shape `(n,)`: values (linear), 0/1 floats (logistic), class indices (softmax).
        w: Weights of shape `(d, c)`.
        b: Biases of shape `(c,)`.

    Returns:
        A scalar.
    """
    z = tf.matmul(x, w) + b
    if kind == "linear":
        return tf.reduce_mean(tf.square(z[:, 0] - y))
    if kind == "logistic":
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z[:, 0]))
    labels = tf.cast(y, tf.int32)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, z))


def _accuracy(kind: str, x, y, w, b) -> tf.Tensor:
    """Share of points classified right (0 for linear regression, which has no classes)."""
    if kind == "linear":
        return tf.constant(0.0)
    z = tf.matmul(x, w) + b
    if kind == "logistic":
        guess = tf.cast(z[:, 0] >= 0, tf.float32)
    else:
        guess = tf.cast(tf.argmax(z, axis=-1), tf.float32)
    return tf.reduce_mean(tf.cast(tf.equal(guess, tf.cast(y, tf.float32)), tf.float32))


def _grid(kind: str, w, b, domain) -> tf.Tensor:
    """Class probabilities on the GRID_SIZE² cell centres, row 0 at the top (x2 = +domain)."""
    if kind == "linear":
        return tf.zeros([0], tf.uint8)
    half = domain * (1.0 - 1.0 / GRID_SIZE)  # cell centres, not edges
    ticks = tf.linspace(-half, half, GRID_SIZE)
    x1, x2 = tf.meshgrid(ticks, tf.reverse(ticks, [0]))
    points = tf.stack([tf.reshape(x1, [-1]), tf.reshape(x2, [-1])], axis=1)
    p = probabilities(kind, points, w, b)  # (cells, c)
    # One plane per output neuron, each row-major: p = value / 255.
    return tf.cast(tf.round(tf.reshape(tf.transpose(p), [-1]) * 255.0), tf.uint8)


def _trace_trainer(kind: str, compiled: bool) -> FlatCall:
    y_dtype = tf.int32 if kind == "softmax" else tf.float32

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.float32),  # x
            tf.TensorSpec([None], y_dtype),  # y
            tf.TensorSpec([None, None], tf.float32),  # w
            tf.TensorSpec([None], tf.float32),  # b
            tf.TensorSpec([], tf.float32),  # learning rate
            tf.TensorSpec([], tf.int32),  # steps
            tf.TensorSpec([], tf.float32),  # domain
        ],
        jit_compile=compiled,
    )
    def train(x, y, w, b, lr, k, domain):
        def step(i, w, b):
            with tf.GradientTape() as tape:
                tape.watch([w, b])
                value = loss(kind, x, y, w, b)
            dw, db = tape.gradient(value, [w, b])
            return i + 1, w - lr * dw, b - lr * db

        _, w, b = tf.while_loop(lambda i, w, b: i < k, step, [tf.constant(0), w, b])
        return w, b, loss(kind, x, y, w, b), _accuracy(kind, x, y, w, b), _grid(kind, w, b, domain)

    return FlatCall(train.get_concrete_function())


_TRAINERS: dict[tuple[str, bool], FlatCall] = {}
_TRAINERS_LOCK = threading.Lock()


def trainer(kind: str, compiled: bool) -> FlatCall:
    """A kind's call, traced once per process on first use and shared by every session.

    Compiled (XLA), a call is one fused kernel, built for each shape of data on its first call
    (a data set's size is fixed: `compile_xla` builds one ahead); plain, every step's small ops
    run one by one through TensorFlow's executor (0.75 ms of CPU a frame instead of 0.4).
    """
    with _TRAINERS_LOCK:
        if (kind, compiled) not in _TRAINERS:
            _TRAINERS[kind, compiled] = _trace_trainer(kind, compiled)
        return _TRAINERS[kind, compiled]


def compile_xla(kind: str, x: np.ndarray, y: np.ndarray) -> None:
    """Builds the compiled call for data shaped like `x` and `y` (blocking: ~0.3 s)."""
    w, b = init_params(kind, 0)
    trainer(kind, True)(x, y, w, b, np.float32(0.1), np.int32(1), np.float32(DOMAIN))


@dataclass(frozen=True)
class Frame:
    """What one compiled call returns: new parameters, their loss, accuracy and grid."""

    w: np.ndarray
    b: np.ndarray
    loss: float
    accuracy: float
    grid: bytes

    @property
    def finite(self) -> bool:
        return bool(
            np.isfinite(self.loss) and np.isfinite(self.w).all() and np.isfinite(self.b).all()
        )


def train(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    learning_rate: float,
    steps: int,
    domain: float = DOMAIN,
    compiled: bool = False,
) -> Frame:
    """Runs `steps` full-batch gradient-descent steps in one call.

    Args:
        kind: One of `KINDS`.
        x: Inputs of shape `(n, d)` float32.
        y: Targets of shape `(n,)`: float32 (linear, logistic) or int32 class indices (softmax).
        w: Weights of shape `(d, c)`.
        b: Biases of shape `(c,)`.
        learning_rate: Float > 0. Plain SGD: `w ← w − learning_rate · ∂loss/∂w`.
        steps: Integer >= 0; 0 only evaluates.
        domain: Float. Half-width of the probability grid's square. Defaults to `DOMAIN`.
        compiled: Whether to run the XLA-compiled call (see `trainer`). Defaults to False.

    Returns:
        A `Frame`; its `grid` holds c planes of GRID_SIZE² uint8 (value = round(p · 255)) for
        the classifiers and is empty for linear regression.
    """
    w, b, value, acc, grid = trainer(kind, compiled)(
        x, y, w, b, np.float32(learning_rate), np.int32(steps), np.float32(domain)
    )
    return Frame(w.numpy(), b.numpy(), float(value), float(acc), grid.numpy().tobytes())
