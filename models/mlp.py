"""Dense networks on 2-D points, trained many at a time with compiled TensorFlow calls.

A network's parameters are `[W0, b0, W1, b1, …]`. Everything here is *stacked*: a leading axis of
size C holds C independent networks (C students' sessions), so one call trains them all. One call
runs up to K steps in-graph (`tf.while_loop`), each network its own k ≤ K, then evaluates the
losses, the decision grid and every drawn neuron's small grid: Python and dispatch are paid once per
frame, not per step.

Networks are padded into a few `TraceShape`s (all input features, hidden widths from `WIDTHS`,
batches from `BATCHES`) with masks for what is not theirs, and the activation and the problem are
chosen per network, so a student's new layer sizes, activation or problem reuse a compiled trace
instead of waiting for one. A network that trains alone at full speed gets an exact shape of its
own (`Architecture.exact`: its inputs, layer sizes and batch, nothing padded). A classifier's output
is a sigmoid trained on cross-entropy (labels 0/1); a regressor's is linear, trained on squared
error (targets in [-1, 1]).
"""

from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np
import tensorflow as tf

from models import xla_budget
from models.datasets import PROBLEMS
from models.flat_call import FlatCall

FEATURES = ("x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
REGULARIZATIONS = ("none", "l1", "l2")  # the weight penalty: none, l1·Σ|w| or l2·Σw² (`penalty`)
MAX_DRAWN = 8  # neurons per layer that get a grid and weights on the wire
WIDTHS = (4, 8, 16, 32, 50)  # hidden layers are padded to one of these widths
BATCHES = (1, 2, 4, 8, 16, 32, 64, 100)  # batches are padded to one of these sizes
N_METRICS = 4  # loss, test_loss, accuracy, test_accuracy
# Under XLA a layer's product whose batch·inputs·outputs is at most this is a broadcast and a sum,
# which XLA fuses with the ops around it: a dot is a library call of its own, and for a training
# step's tiny products those calls were most of the step's time (4.2 → 0.6 µs a step for [4, 2]).
FUSED_PRODUCT = 4096
_GOLDEN = 0x9E3779B9


class _Drawn:
    """`drawn` from a network's `sizes` (inputs, hidden layers, the output neuron)."""

    @property
    def drawn(self) -> tuple[int, ...]:
        """Neurons of each layer that get a grid (hidden layers) and weights on the wire."""
        return tuple(min(n, MAX_DRAWN) for n in self.sizes)


@dataclass(frozen=True)
class TraceShape(_Drawn):
    """What a compiled trainer depends on: networks that fit the same shape share one trace.

    Args:
        inputs: Input columns (`len(FEATURES)` for a padded shape: any choice of features fits).
        hidden: Each hidden layer's width.
        batch: Examples a step's batch holds (a network's own batch may be smaller).
    """

    inputs: int
    hidden: tuple[int, ...]
    batch: int

    @classmethod
    def padded(cls, depth: int, width: int, batch: int) -> "TraceShape":
        """A shared shape: every feature, `depth` hidden layers of `width`."""
        return cls(len(FEATURES), (width,) * depth, batch)

    @property
    def depth(self) -> int:
        return len(self.hidden)

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.inputs, *self.hidden, 1)

    def fits(self, arch: "Architecture") -> bool:
        """Whether `arch` trains in this shape (its layers and batch no larger, padded with masks)."""
        return (
            self.inputs in (arch.n_inputs, len(FEATURES))
            and self.depth == len(arch.hidden)
            and all(w >= n for w, n in zip(self.hidden, arch.hidden, strict=True))
            and self.batch >= arch.batch_size
        )


@dataclass(frozen=True)
class Architecture(_Drawn):
    """One network's architecture.

    Args:
        n_inputs: Number of input features, 1 to 7.
        hidden: Hidden layer sizes, e.g. `(4, 2)`; `()` is one logistic neuron.
        activation: Hidden activation, one of `ACTIVATIONS`.
        batch_size: Examples per gradient step.
        problem: One of `PROBLEMS`: what the output neuron is and its loss (`output_loss`).
    """

    n_inputs: int
    hidden: tuple[int, ...]
    activation: str
    batch_size: int
    problem: str = "classification"

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.n_inputs, *self.hidden, 1)

    @cached_property
    def shape(self) -> TraceShape:
        """The shared padded shape it trains in with others."""
        width = next(w for w in WIDTHS if w >= max(self.hidden, default=1))
        batch = next(b for b in BATCHES if b >= self.batch_size)
        return TraceShape.padded(len(self.hidden), width, batch)

    @property
    def exact(self) -> TraceShape:
        """Its own shape, nothing padded: the fastest trace, for a network that trains alone."""
        return TraceShape(self.n_inputs, self.hidden, self.batch_size)

    def masks(self, shape: TraceShape | None = None) -> list[np.ndarray]:
        """Per hidden layer of `shape` (default `self.shape`): 1.0 for its neurons, 0.0 for padding."""
        shape = shape or self.shape
        return [
            (np.arange(w) < n).astype(np.float32)
            for w, n in zip(shape.hidden, self.hidden, strict=True)
        ]

    def pad(self, params: list[np.ndarray], shape: TraceShape | None = None) -> list[np.ndarray]:
        """Places `params` into zero arrays of `shape`'s sizes (default `self.shape`).

        Padding weights start at zero and stay there: a masked neuron outputs 0, so no gradient
        reaches its weights, and the penalties' gradients vanish at 0.
        """
        out = []
        sizes = (shape or self.shape).sizes
        for layer, (w, b) in enumerate(zip(params[0::2], params[1::2], strict=True)):
            wp = np.zeros((sizes[layer], sizes[layer + 1]), np.float32)
            bp = np.zeros(sizes[layer + 1], np.float32)
            wp[: w.shape[0], : w.shape[1]] = w
            bp[: b.shape[0]] = b
            out += [wp, bp]
        return out

    def unpad(self, params: list[np.ndarray]) -> list[np.ndarray]:
        """The real parameters out of padded ones (the inverse of `pad`)."""
        out = []
        for layer in range(len(self.sizes) - 1):
            n_in, n_out = self.sizes[layer], self.sizes[layer + 1]
            out += [params[2 * layer][:n_in, :n_out], params[2 * layer + 1][:n_out]]
        return out


def feature_selector(features, width: int | None = None) -> np.ndarray:
    """One-hot matrix that picks `features` out of the bank of all `FEATURES`.

    Args:
        features: Feature names, in input order.
        width: Number of input columns (at least `len(features)`); the rest stay zero.
            Defaults to `len(features)`.

    Returns:
        Float32 array of shape `(len(FEATURES), width)`.
    """
    s = np.zeros((len(FEATURES), width or len(features)), np.float32)
    for j, name in enumerate(features):
        s[FEATURES.index(name), j] = 1.0
    return s


def feature_bank(points: tf.Tensor) -> tf.Tensor:
    """All input features of points `(..., 2)`, as `(..., 7)` in the order of `FEATURES`."""
    x1, x2 = points[..., 0], points[..., 1]
    return tf.stack([x1, x2, x1 * x1, x2 * x2, x1 * x2, tf.sin(x1), tf.sin(x2)], axis=-1)


def init_params(arch: Architecture, seed: int) -> list[np.ndarray]:
    """Glorot-uniform weights and zero biases, reproducible from `seed`.

    Returns:
        `[W0, b0, W1, b1, …]`, `Wl` of shape `(sizes[l], sizes[l+1])`, float32.
    """
    rng = np.random.default_rng([seed, 2])
    params = []
    for fan_in, fan_out in zip(arch.sizes[:-1], arch.sizes[1:], strict=True):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        params.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
        params.append(np.zeros(fan_out, np.float32))
    return params


def grid_points(size: int, domain: float) -> np.ndarray:
    """Cell centres of a `size`² grid over [-domain, domain]², row-major, row 0 at the top.

    Returns:
        Float32 array of shape `(size * size, 2)` holding (x1, x2).
    """
    c = -domain + (np.arange(size) + 0.5) * (2 * domain / size)
    x1, x2 = np.meshgrid(c, c[::-1])
    return np.stack([x1.ravel(), x2.ravel()], axis=1).astype(np.float32)


def _mix(h: tf.Tensor) -> tf.Tensor:
    # lowbias32: a counter-based hash, so batch order depends only on (seed, step), never on slots.
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16))
    h = h * tf.constant(0x7FEB352D, tf.uint32)
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 15))
    h = h * tf.constant(0x846CA68B, tf.uint32)
    return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16))


def batch_indices(seed, step, batch_size, n, width: int) -> tf.Tensor:
    """Indices of the training examples in each network's batch at `step`.

    Args:
        seed: Int32 `(C,)`, each network's seed.
        step: Int32 `(C,)`, each network's step number.
        batch_size: Int32 `(C,)`, each network's batch size.
        n: Int32 `(C,)`, each network's number of training examples.
        width: Columns to return (at least every batch size); column j of a network is the
            same whatever `width` is, so padded batches pick the same examples.

    Returns:
        Int32 tensor `(C, width)` with values in `[0, n)`.
    """
    j = tf.cast(tf.range(width), tf.uint32)[None, :]
    s = tf.cast(seed, tf.uint32)[:, None]
    t = tf.cast(step, tf.uint32)[:, None] * tf.cast(batch_size, tf.uint32)[:, None]
    h = _mix(tf.bitwise.bitwise_xor(s * tf.constant(_GOLDEN, tf.uint32), _mix(t + j)))
    n = tf.cast(tf.maximum(n, 1), tf.uint32)[:, None]  # free slots have no data
    return tf.cast(h % n, tf.int32)


def _per_network(v: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    # A `(C,)` value shaped to broadcast against `like` `(C, …)`.
    return tf.reshape(v, [-1] + [1] * (len(like.shape) - 1))


def activate(z: tf.Tensor, activation: tf.Tensor) -> tf.Tensor:
    """Each network's own activation: `activation` `(C,)` indexes `ACTIVATIONS`; z is `(C, …)`."""
    a = _per_network(activation, z)
    # tf.where, not a one-hot sum: 0·relu(inf) would be NaN.
    return tf.where(
        a == 0,
        tf.tanh(z),
        tf.where(a == 1, tf.nn.relu(z), tf.where(a == 2, tf.sigmoid(z), z)),
    )


def dense(h: tf.Tensor, w: tf.Tensor, fused: bool = False) -> tf.Tensor:
    """`h` `(C, M, in)` times `w` `(C, in, out)`; with `fused` (under XLA), a product of at most
    `FUSED_PRODUCT` multiply-adds a network is a broadcast and a sum rather than a dot."""
    m, n_in, n_out = h.shape[1], w.shape[1], w.shape[2]
    if fused and None not in (m, n_in, n_out) and m * n_in * n_out <= FUSED_PRODUCT:
        return tf.reduce_sum(h[..., None] * w[:, None], axis=2)
    return tf.matmul(h, w)


def forward(params, x, activation, masks=None, fused=False) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Stacked forward pass.

    Args:
        params: `[W0, b0, …]`, `Wl` of shape `(C, in, out)`, `bl` of shape `(C, out)`.
        x: Inputs `(C, M, n_inputs)`.
        activation: Int32 `(C,)`, indexes into `ACTIVATIONS`.
        masks: Optional, per hidden layer `(C, size)`: 0 switches a (padding) neuron off.
        fused: Small products as fused broadcast-sums (`dense`): for XLA only, where they fuse.

    Returns:
        `(z, hidden)`: the output neuron's pre-activation `(C, M)` (a classifier's logit, a
        regressor's value), and each hidden layer's activations `(C, M, size)`.
    """
    h, hidden = x, []
    n_layers = len(params) // 2
    for layer in range(n_layers):
        z = dense(h, params[2 * layer], fused) + params[2 * layer + 1][:, None, :]
        if layer < n_layers - 1:
            h = activate(z, activation)
            if masks is not None:
                h = h * masks[layer][:, None, :]
            hidden.append(h)
    return z[..., 0], hidden


def output_loss(z: tf.Tensor, y: tf.Tensor, problem: tf.Tensor) -> tf.Tensor:
    """Each example's loss, by its network's problem.

    Args:
        z: The output's pre-activation `(C, M)`, from `forward`.
        y: Labels 0/1 (classification) or targets in [-1, 1] (regression), `(C, M)`.
        problem: Int32 `(C,)`, indexes `PROBLEMS`.

    Returns:
        `(C, M)`: the cross-entropy of `sigmoid(z)` for a classifier, `(z - y)²` for a regressor.
    """
    # tf.where, not a 0/1 blend: a classifier's large logit squares to inf, and 0·inf is NaN.
    regress = _per_network(problem == PROBLEMS.index("regression"), z)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z)
    return tf.where(regress, tf.square(z - y), ce)


def output_share(z: tf.Tensor, problem: tf.Tensor) -> tf.Tensor:
    """The output where its colour scale puts it, in [0, 1]: a classifier's probability of class 1,
    a regressor's value mapped from [-1, 1] (clipped). `z` is `(C, M)`, `problem` `(C,)`."""
    regress = _per_network(problem == PROBLEMS.index("regression"), z)
    return tf.where(regress, (tf.clip_by_value(z, -1.0, 1.0) + 1.0) / 2.0, tf.sigmoid(z))


def penalty(params, l1: tf.Tensor, l2: tf.Tensor) -> tf.Tensor:
    """Each network's regularization `l1·Σ|w| + l2·Σw²` over its weights (not biases), `(C,)`."""
    weights = params[0::2]
    abs_sum = tf.add_n([tf.reduce_sum(tf.abs(w), axis=[1, 2]) for w in weights])
    sq_sum = tf.add_n([tf.reduce_sum(tf.square(w), axis=[1, 2]) for w in weights])
    return l1 * abs_sum + l2 * sq_sum


def _to_u8(v: tf.Tensor) -> tf.Tensor:
    # NaN (a diverged net) draws as the neutral middle colour rather than garbage.
    v = tf.where(tf.math.is_finite(v), v, 0.5)
    return tf.cast(tf.round(tf.clip_by_value(v, 0.0, 1.0) * 255.0), tf.uint8)


@dataclass
class Batch:
    """Stacked inputs of one call; every array has the networks on its first axis (C)."""

    params: list  # padded `[W0, b0, …]`
    masks: list  # per hidden layer `(C, width)`
    x_train: np.ndarray  # `(C, N, 2)` points, rows past n_train unused
    y_train: np.ndarray  # `(C, N)` labels in {0, 1}, or regression targets in [-1, 1]
    n_train: np.ndarray  # `(C,)` int32
    x_test: np.ndarray
    y_test: np.ndarray
    n_test: np.ndarray
    selector: np.ndarray  # `(C, 7, inputs)` from `feature_selector(features, inputs)`
    activation: np.ndarray  # `(C,)` int32 index into ACTIVATIONS
    problem: np.ndarray  # `(C,)` int32 index into PROBLEMS
    batch_size: np.ndarray  # `(C,)` int32
    learning_rate: np.ndarray  # `(C,)` float32
    l1: np.ndarray
    l2: np.ndarray
    seed: np.ndarray  # `(C,)` int32
    step: np.ndarray  # `(C,)` int32, step count at the start of the call
    k: np.ndarray  # `(C,)` int32, steps to take in this call (0: evaluate only)

    def args(self) -> tuple:
        return tuple(getattr(self, f) for f in self.__dataclass_fields__)


class Trainer:
    """Compiled train-and-evaluate calls for one `TraceShape`, shared by all its sessions.

    `plain` is an ordinary `tf.function`, traced once for any C; `xla` is the same graph
    XLA-compiled per C (slower to build, several times faster to run). `compile_xla` builds it
    for a C; calls use it from then on.

    Args:
        shape: The shape its networks train in.
        grid_size: Side of the output's decision grid.
        neuron_grid_size: Side of each drawn hidden neuron's grid.
        domain: The grids cover [-domain, domain]².
        unroll: Training steps per iteration of the in-graph loop: more is fewer loop overheads
            for many steps a call (at full speed), but a longer compile.
    """

    def __init__(
        self,
        shape: TraceShape,
        grid_size: int,
        neuron_grid_size: int,
        domain: float,
        unroll: int = 1,
    ):
        self.shape = shape
        self.domain = domain
        self.unroll = unroll
        # The features of the grids' points never change: computed once, constants in the graph.
        self.grid_bank = tf.constant(feature_bank(tf.constant(grid_points(grid_size, domain))))
        self.neuron_bank = tf.constant(
            feature_bank(tf.constant(grid_points(neuron_grid_size, domain)))
        )
        spec = self._signature()
        # No autograph: the graph is plain TF calls, and converting it is half of a trace's time.
        self.plain = tf.function(self._run, input_signature=spec, autograph=False)
        self.xla = tf.function(
            partial(self._run, fused=True), input_signature=spec, jit_compile=True, autograph=False
        )
        self.traced = False  # the plain function's first call is done: it runs without waiting
        self.xla_ready: set[int] = set()

    def _signature(self) -> list:
        f32, i32 = tf.float32, tf.int32
        params = []
        sizes = self.shape.sizes
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            params += [
                tf.TensorSpec([None, fan_in, fan_out], f32),
                tf.TensorSpec([None, fan_out], f32),
            ]
        masks = [tf.TensorSpec([None, n], f32) for n in self.shape.hidden]
        points, labels, per_net = [None, None, 2], [None, None], [None]
        return [
            params,
            masks,
            *(tf.TensorSpec(points, f32), tf.TensorSpec(labels, f32), tf.TensorSpec(per_net, i32))
            * 2,
            tf.TensorSpec([None, len(FEATURES), self.shape.inputs], f32),
            tf.TensorSpec(per_net, i32),  # activation
            tf.TensorSpec(per_net, i32),  # problem
            tf.TensorSpec(per_net, i32),  # batch size
            *[tf.TensorSpec(per_net, f32)] * 3,  # learning rate, l1, l2
            *[tf.TensorSpec(per_net, i32)] * 3,  # seed, step, k
        ]

    @staticmethod
    def _on_bank(params, sel) -> list:
        # x·W0 with x = bank·sel is bank·(sel·W0): the chosen features never materialise.
        return [tf.matmul(sel, params[0]), *params[1:]]

    def _evaluate(self, params, masks, act, prob, bank, labels, n):
        z, _ = forward(params, bank, act, masks)
        mask = tf.cast(tf.range(tf.shape(bank)[1])[None, :] < n[:, None], tf.float32)
        count = tf.maximum(tf.cast(n, tf.float32), 1.0)
        loss = output_loss(z, labels, prob)
        # A regressor's "accuracy" is meaningless (the caller drops it); it stays finite here.
        correct = tf.cast(tf.equal(z > 0, labels > 0.5), tf.float32)
        return tf.reduce_sum(loss * mask, 1) / count, tf.reduce_sum(correct * mask, 1) / count

    def _run(self, params, masks, x_tr, y_tr, n_tr, x_te, y_te, n_te, sel, act, prob, bs, lr, l1, l2, seed, step0, k, fused=False):  # fmt: skip
        width = self.shape.batch
        in_batch = tf.cast(tf.range(width)[None, :] < bs[:, None], tf.float32)
        per_example = in_batch / tf.cast(tf.maximum(bs, 1), tf.float32)[:, None]
        bank_tr = feature_bank(x_tr)  # (C, N, 7), once a call rather than once a step
        x_sel = tf.matmul(bank_tr, sel)  # (C, N, inputs): the network's inputs, once a call too

        def train_step(i, ps):
            idx = batch_indices(seed, step0 + i, bs, n_tr, width)
            xb = tf.gather(x_sel, idx, batch_dims=1)
            yb = tf.gather(y_tr, idx, batch_dims=1)
            with tf.GradientTape() as tape:
                tape.watch(ps)
                z, _ = forward(ps, xb, act, masks, fused)
                loss = output_loss(z, yb, prob)
                # Networks are independent, so the gradient of the sum is each one's own.
                total = tf.reduce_sum(tf.reduce_sum(loss * per_example, 1) + penalty(ps, l1, l2))
            grads = tape.gradient(total, ps)
            live = i < k
            new = []
            for p, g in zip(ps, grads, strict=True):
                shape = [-1] + [1] * (len(p.shape) - 1)
                updated = p - tf.reshape(lr, shape) * g
                new.append(tf.where(tf.reshape(live, shape), updated, p))
            return new

        def body(i, *ps):
            ps = list(ps)
            for u in range(self.unroll):
                ps = train_step(i + u, ps)
            return (i + self.unroll, *ps)

        k_max = tf.reduce_max(k)
        _, *params = tf.while_loop(lambda i, *_: i < k_max, body, (tf.constant(0), *params))

        on_bank = self._on_bank(params, sel)
        loss, acc = self._evaluate(on_bank, masks, act, prob, bank_tr, y_tr, n_tr)
        test = self._evaluate(on_bank, masks, act, prob, feature_bank(x_te), y_te, n_te)
        metrics = tf.stack([loss, test[0], acc, test[1]], axis=1)

        c = tf.shape(sel)[0]
        out, _ = forward(on_bank, self.grid_bank[None], act, masks)
        maps = [_to_u8(output_share(out, prob))]
        _, hidden = forward(on_bank, self.neuron_bank[None], act, masks)
        for h, drawn in zip(hidden, self.shape.drawn[1:-1], strict=True):
            a = tf.transpose(h[:, :, :drawn], [0, 2, 1])  # (C, neurons, cells)
            maps.append(tf.reshape(_to_u8((a + 1.0) / 2.0), [c, -1]))
        return params, metrics, tf.concat(maps, axis=1)

    def __call__(self, batch: Batch) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Trains each network `k` steps and evaluates them all.

        Returns:
            `(params, metrics, frames)`: new padded parameters; metrics `(C, 4)` (loss,
            test_loss, accuracy, test_accuracy: cross-entropy or mean squared error, by problem;
            a regressor's accuracies mean nothing); uint8 grids
            `(C, grid² + Σ drawn hidden neurons · neuron_grid²)`: the output (`output_share`)
            then each drawn hidden neuron's activation mapped from [-1, 1].
        """
        fn = self._xla_call if len(batch.k) in self.xla_ready else self._plain_call
        params, metrics, frames = fn(*batch.args())
        self.traced = True
        return [p.numpy() for p in params], metrics.numpy(), frames.numpy()

    # Called flat (`FlatCall`): a tick's Python no longer binds the call's ~30 arguments.
    @cached_property
    def _plain_call(self) -> FlatCall:
        return FlatCall(self.plain.get_concrete_function())  # its first use traces it

    @cached_property
    def _xla_call(self) -> FlatCall:
        return FlatCall(self.xla.get_concrete_function())

    def compile_xla(self, batch: Batch, max_builds: int | None = None) -> None:
        """Builds the XLA version for the batch's C with a call that trains nothing, unless the
        process has made `max_builds` XLA builds (`xla_budget`; None: no limit)."""
        capacity = len(batch.k)
        if capacity not in self.xla_ready and xla_budget.take(max_builds):
            idle = Batch(**{**batch.__dict__, "k": np.zeros(capacity, np.int32)})
            self.xla(*idle.args())
            self.xla_ready.add(capacity)
