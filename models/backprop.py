"""Backpropagation through a chain of one-neuron layers, computed three ways.

The course's network: L1 = σ(w1·x), L2 = σ(w2·L1), L3 = σ(w3·L2), loss = cross_entropy(L3, y),
optionally with a bias per neuron, tanh or relu in the hidden layers, squared error as the loss and
up to `MAX_DEPTH` layers. `backprop` runs it forward, then backward with the chain rule written out
factor by factor, and checks every gradient against `tf.GradientTape` and central finite
differences. Everything is float64: in float32, finite differences could not agree to 1e-6.
"""

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import tensorflow as tf

DTYPE = tf.float64
MAX_DEPTH = 10
# |x|, |w| and |b| stay below this: wide enough to saturate any neuron, small enough that even ten
# relu layers (at most 1e3^11) stay far from float64's overflow.
MAX_ABS = 1e3
MAX_STEPS = 500
FD_STEP = 1e-6
TOLERANCE = 1e-6
# Allowed range of every number the chain takes, by name.
RANGES = {
    "x": (-MAX_ABS, MAX_ABS),
    "y": (0.0, 1.0),
    "w": (-MAX_ABS, MAX_ABS),
    "b": (-MAX_ABS, MAX_ABS),
    "lr": (1e-3, 100.0),
}


@dataclass(frozen=True)
class Activation:
    """A neuron's activation, paired with its derivative, both as functions of z."""

    output: Callable[[tf.Tensor], tf.Tensor]
    der: Callable[[tf.Tensor], tf.Tensor]


def _sigmoid_der(z: tf.Tensor) -> tf.Tensor:
    # σ(z)·σ(−z) is σ(z)·(1 − σ(z)), but stays tiny and honest where 1 − σ(z) rounds to 0.
    return tf.sigmoid(z) * tf.sigmoid(-z)


def _tanh_der(z: tf.Tensor) -> tf.Tensor:
    # 1/cosh²(z) through e^(−2|z|): underflows gradually where 1 − tanh²(z) would be exactly 0.
    a = tf.exp(-2.0 * tf.abs(z))
    return 4.0 * a / tf.square(1.0 + a)


def _relu_der(z: tf.Tensor) -> tf.Tensor:
    # 0 at the kink, as TensorFlow's own relu gradient.
    return tf.cast(z > 0, z.dtype)


ACTIVATIONS = {
    "sigmoid": Activation(tf.sigmoid, _sigmoid_der),
    "tanh": Activation(tf.tanh, _tanh_der),
    "relu": Activation(tf.nn.relu, _relu_der),
}
# The output neuron stays sigmoid whatever the hidden layers use, so the loss sees a probability.
OUTPUT = ACTIVATIONS["sigmoid"]


@dataclass(frozen=True)
class Loss:
    """A loss of the output neuron, as functions of its pre-activation z and the expected y."""

    value: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # loss(σ(z), y)
    der: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # loss' = ∂loss/∂L at L = σ(z)
    delta: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # loss'·σ'(z), kept finite


def _cross_entropy(z: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    # −[y·log L + (1 − y)·log(1 − L)] on the logit z: never log(0), however saturated L is.
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.broadcast_to(y, tf.shape(z)), logits=z)


def _cross_entropy_der(z: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    # −y/L + (1 − y)/(1 − L) with 1/L = 1 + e^(−z), 1/(1 − L) = 1 + e^z. A term whose weight is 0
    # stays 0 when its factor overflows; otherwise loss' can honestly overflow to ±inf.
    return tf.math.multiply_no_nan(1.0 + tf.exp(z), 1.0 - y) - tf.math.multiply_no_nan(
        1.0 + tf.exp(-z), tf.broadcast_to(y, tf.shape(z))
    )


def _cross_entropy_delta(z: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    # loss'·L' = (L − y)/(L(1 − L)) · L(1 − L) = L − y: finite even where loss' overflows.
    return tf.sigmoid(z) - y


def _squared_error(z: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return tf.square(tf.sigmoid(z) - y)


def _squared_error_der(z: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return 2.0 * (tf.sigmoid(z) - y)


LOSSES = {
    "cross_entropy": Loss(_cross_entropy, _cross_entropy_der, _cross_entropy_delta),
    "squared_error": Loss(
        _squared_error, _squared_error_der, lambda z, y: _squared_error_der(z, y) * _sigmoid_der(z)
    ),
}


def _short(value: object) -> str:
    """The bad value as an error message shows it: short, and safe for huge integers."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**15:
        return f"<integer of {int(value.bit_length() * math.log10(2)) + 1} digits>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_number(name: str, value: object, low: float, high: float) -> float:
    """Checks one number of the chain.

    Args:
        name: String. The field's name, for the error message.
        value: The value received.
        low: Float. The smallest allowed value.
        high: Float. The largest allowed value.

    Returns:
        `value` as a Python float.

    Raises:
        ValueError: if `value` is not a finite real number in `[low, high]`; the message names the
            field, the bad value and the allowed range.
    """
    rule = f"{name} must be a finite number in [{low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{rule}. Received: {name}={_short(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float64
        number = math.inf
    if not (math.isfinite(number) and low <= number <= high):
        raise ValueError(f"{rule}. Received: {name}={_short(value)}")
    return number


def check_integer(name: str, value: object, low: int, high: int) -> int:
    """Checks one integer setting, such as a number of steps: `check_number` for integers.

    Args:
        name, value, low, high: As `check_number` takes them; `low` and `high` are ints.

    Returns:
        `value`, an int.

    Raises:
        ValueError: if `value` is not an integer in `[low, high]`, naming the field and the value.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not low <= value <= high
    ):
        raise ValueError(
            f"{name} must be an integer in [{low}, {high}]. Received: {name}={_short(value)}"
        )
    return int(value)


def check_vector(name: str, value: object, low: float, high: float) -> list[float]:
    """Checks a list of per-layer numbers (`w` or `b`): 1 to `MAX_DEPTH` of them, each in range.

    Args:
        name, value, low, high: As `check_number` takes them; `low` and `high` bound each element.

    Returns:
        The elements as a list of Python floats.

    Raises:
        ValueError: if `value` is not a list of 1 to `MAX_DEPTH` finite numbers in `[low, high]`.
    """
    if not isinstance(value, list | tuple):
        raise ValueError(
            f"{name} must be a list of numbers, one per layer. Received: {name}={_short(value)}"
        )
    if not 1 <= len(value) <= MAX_DEPTH:
        raise ValueError(
            f"{name} must hold 1 to {MAX_DEPTH} numbers, one per layer (depth ≤ {MAX_DEPTH}). "
            f"Received: len({name})={len(value)}"
        )
    return [check_number(f"{name}[{i}]", v, low, high) for i, v in enumerate(value)]


def check_chain(
    x: object,
    y: object,
    w: object,
    b: object = None,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
) -> tuple[float, float, list[float], list[float] | None]:
    """Checks a whole chain's inputs, as `backprop` and `train` take them.

    Args:
        x: The input, a number in `RANGES["x"]`.
        y: The expected output, a number in [0, 1].
        w: The weights w1..wn, a list of 1 to `MAX_DEPTH` numbers in `RANGES["w"]`.
        b: The biases b1..bn, a list as long as `w`, or `None` for no biases.
        activation: String, a key of `ACTIVATIONS`.
        loss: String, a key of `LOSSES`.

    Returns:
        The tuple `(x, y, w, b)` as Python floats and lists of floats (`b` may be `None`).

    Raises:
        ValueError: naming the first bad field, its value and what is allowed.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {', '.join(ACTIVATIONS)}. Received: activation={activation!r}"
        )
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}. Received: loss={loss!r}")
    x = check_number("x", x, *RANGES["x"])
    y = check_number("y", y, *RANGES["y"])
    w = check_vector("w", w, *RANGES["w"])
    if b is not None:
        b = check_vector("b", b, *RANGES["b"])
        if len(b) != len(w):
            raise ValueError(
                f"b must hold one bias per layer, {len(w)} like w. Received: len(b)={len(b)}"
            )
    return x, y, w, b


def forward(
    x: float | tf.Tensor, w: tf.Tensor, b: tf.Tensor | None = None, activation: str = "sigmoid"
) -> tuple[tf.Tensor, tf.Tensor]:
    """Runs the chain forward, layer by layer: z_i = w_i·L_(i−1) + b_i, L_i = act(z_i), L_0 = x.

    Args:
        x: Float scalar, the input.
        w: Float64 tensor of shape `[..., depth]`, the weights w1..wn (a leading batch axis runs
            several chains at once).
        b: Float64 tensor shaped like `w`, the biases, or `None` for a chain without biases.
        activation: String, the hidden layers' activation, a key of `ACTIVATIONS`. The output
            neuron is always sigmoid.

    Returns:
        A tuple `(z, L)` of float64 tensors shaped like `w`: pre-activations and outputs.
    """
    hidden = ACTIVATIONS[activation]
    depth = w.shape[-1]
    prev = tf.broadcast_to(tf.cast(x, DTYPE), tf.shape(w)[:-1])
    zs, outs = [], []
    for i in range(depth):
        z = w[..., i] * prev
        if b is not None:
            z += b[..., i]
        prev = (OUTPUT if i == depth - 1 else hidden).output(z)
        zs.append(z)
        outs.append(prev)
    return tf.stack(zs, axis=-1), tf.stack(outs, axis=-1)


def chain_loss(
    x: float | tf.Tensor,
    y: float | tf.Tensor,
    w: tf.Tensor,
    b: tf.Tensor | None = None,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
) -> tf.Tensor:
    """The chain's loss for the input `x` and the expected output `y`.

    Args:
        x: Float scalar, the input.
        y: Float scalar in [0, 1], the expected output.
        w: Float64 tensor of shape `[..., depth]`, the weights.
        b: Float64 tensor shaped like `w`, or `None`.
        activation: String, the hidden layers' activation, a key of `ACTIVATIONS`.
        loss: String, a key of `LOSSES`.

    Returns:
        Float64 tensor of shape `w.shape[:-1]` (a scalar for a single chain).
    """
    z, _ = forward(x, w, b, activation)
    return LOSSES[loss].value(z[..., -1], tf.cast(y, DTYPE))


@dataclass(frozen=True)
class Chain:
    """One chain whose gradients are computed, each way the lesson compares.

    Attributes:
        x: Float, the input.
        y: Float in [0, 1], the expected output.
        w: Float64 tensor of shape `[depth]`, the weights.
        b: Float64 tensor of shape `[depth]`, the biases, or `None`.
        activation: String, the hidden layers' activation, a key of `ACTIVATIONS`.
        loss: String, a key of `LOSSES`.
    """

    x: float
    y: float
    w: tf.Tensor
    b: tf.Tensor | None = None
    activation: str = "sigmoid"
    loss: str = "cross_entropy"

    def loss_at(self, w: tf.Tensor, b: tf.Tensor | None) -> tf.Tensor:
        """`chain_loss` of this chain's input and expected output with the parameters `w`, `b`."""
        return chain_loss(self.x, self.y, w, b, self.activation, self.loss)


def chain_rule(chain: Chain) -> dict[str, tf.Tensor | None]:
    """Backpropagation by hand: the chain rule, one factor at a time.

    δ_i = ∂loss/∂z_i is computed once per layer and reused by every layer below it:
    δ_n = loss'·L_n', then δ_i = δ_(i+1)·w_(i+1)·L_i'. Each gradient is one more factor:
    ∂loss/∂w_i = δ_i·L_(i−1) and ∂loss/∂b_i = δ_i. For three layers that spells
    ∂loss/∂w1 = loss'·L3'·w3·L2'·w2·L1'·x.

    Args:
        chain: The `Chain`.

    Returns:
        A dict of float64 tensors: `z`, `L` and `dL` (L_i' = act'(z_i)) of shape `[depth]`; the
        scalars `loss` and `loss_derivative` (loss' = ∂loss/∂L_n, ±inf where it overflows);
        `delta`, `grad_w` of shape `[depth]`; `grad_b` of shape `[depth]` or `None`.
    """
    x, w, b = chain.x, chain.w, chain.b
    depth = w.shape[-1]
    y = tf.cast(chain.y, DTYPE)
    z, L = forward(x, w, b, chain.activation)
    hidden, head = ACTIVATIONS[chain.activation], LOSSES[chain.loss]
    dL = [hidden.der(z[i]) for i in range(depth - 1)] + [OUTPUT.der(z[-1])]
    deltas = [head.delta(z[-1], y)]
    for i in range(depth - 2, -1, -1):
        deltas.insert(0, deltas[0] * w[i + 1] * dL[i])
    delta = tf.stack(deltas)
    inputs = tf.concat([tf.reshape(tf.cast(x, DTYPE), [1]), L[:-1]], axis=0)
    return {
        "z": z,
        "L": L,
        "dL": tf.stack(dL),
        "loss": head.value(z[-1], y),
        "loss_derivative": head.der(z[-1], y),
        "delta": delta,
        "grad_w": delta * inputs,
        "grad_b": None if b is None else delta,
    }


def tape_gradients(chain: Chain) -> tuple[tf.Tensor, tf.Tensor | None]:
    """The gradients as TensorFlow's automatic differentiation computes them.

    Args:
        chain: The `Chain`.

    Returns:
        A tuple `(grad_w, grad_b)` of float64 tensors of shape `[depth]`; `grad_b` is `None`
        without biases.
    """
    w, b = chain.w, chain.b
    params = [w] if b is None else [w, b]
    with tf.GradientTape() as tape:
        tape.watch(params)
        value = chain.loss_at(w, b)
    grads = tape.gradient(value, params)
    return grads[0], (None if b is None else grads[1])


def finite_differences(chain: Chain, step: float = FD_STEP) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Central differences (loss(θ + h) − loss(θ − h)) / 2h for every parameter θ.

    All 2·(number of parameters) perturbed chains run in one batched forward pass.

    Args:
        chain: The `Chain`.
        step: Float, the step h. Defaults to `FD_STEP`.

    Returns:
        A tuple `(grad_w, grad_b)` of float64 tensors of shape `[depth]`; `grad_b` is `None`
        without biases.
    """
    w, b = chain.w, chain.b
    depth = w.shape[-1]
    theta = w if b is None else tf.concat([w, b], axis=0)
    h = tf.eye(theta.shape[0], dtype=DTYPE) * step
    up, down = theta + h, theta - h
    batch = tf.concat([up, down], axis=0)
    losses = chain.loss_at(batch[:, :depth], None if b is None else batch[:, depth:])
    # Divide by the step actually taken: θ ± h rounds, and for |θ| near 1e3 that matters at 1e-6.
    n = theta.shape[0]
    grads = (losses[:n] - losses[n:]) / tf.linalg.diag_part(up - down)
    return grads[:depth], (None if b is None else grads[depth:])


def _agree(a: float, b: float) -> bool:
    """Whether two gradients agree to `TOLERANCE`, relative to their size once it exceeds 1."""
    return (
        math.isfinite(a) and math.isfinite(b) and abs(a - b) <= TOLERANCE * max(1, abs(a), abs(b))
    )


def backprop(
    x: float,
    y: float,
    w: Sequence[float],
    b: Sequence[float] | None = None,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
) -> dict:
    """The whole lesson for one chain: forward values, chain-rule factors, gradients three ways.

    Example:

    >>> result = backprop(x=1.0, y=1.0, w=[0.5, -1.0, 2.0])
    >>> result["forward"]["loss"], result["gradients"][0]["param"]
    (0.4037..., 'w1')

    Args:
        x: Float in `RANGES["x"]`, the input.
        y: Float in [0, 1], the expected output.
        w: List of 1 to `MAX_DEPTH` floats, the weights w1..wn.
        b: List of floats as long as `w`, the biases, or `None` for a chain without biases.
        activation: String, the hidden layers' activation: `"sigmoid"`, `"tanh"` or `"relu"`.
            Defaults to `"sigmoid"`. The output neuron is always sigmoid.
        loss: String, `"cross_entropy"` or `"squared_error"`. Defaults to `"cross_entropy"`.

    Returns:
        A dict of Python floats: `forward` (`{"L1": …, "Ln": …, "loss": …}`); `layers`, per layer
        `{"z", "L", "dL"}` with `dL` = L_i'; `loss_derivative` (loss', `inf` where it overflows
        float64); `deltas` (δ_i = ∂loss/∂z_i); `gradients`, per parameter `{"param", "chain",
        "tape", "finite_difference", "agree"}`; and the `fd_step` and `tolerance` used.

    Raises:
        ValueError: if an argument is out of range, naming it and its value.
    """
    x, y, w, b = check_chain(x, y, w, b, activation, loss)
    wt = tf.constant(w, DTYPE)
    bt = None if b is None else tf.constant(b, DTYPE)
    chain = Chain(x, y, wt, bt, activation, loss)
    by_hand = chain_rule(chain)
    tape_w, tape_b = tape_gradients(chain)
    fd_w, fd_b = finite_differences(chain)

    names = [f"w{i + 1}" for i in range(len(w))]
    chain, tape, fd = [by_hand["grad_w"]], [tape_w], [fd_w]
    if b is not None:
        names += [f"b{i + 1}" for i in range(len(b))]
        chain, tape, fd = chain + [by_hand["grad_b"]], tape + [tape_b], fd + [fd_b]
    rows = zip(
        names,
        tf.concat(chain, 0).numpy().tolist(),
        tf.concat(tape, 0).numpy().tolist(),
        tf.concat(fd, 0).numpy().tolist(),
        strict=True,
    )
    L = by_hand["L"].numpy().tolist()
    loss_value = float(by_hand["loss"])
    return {
        "forward": {**{f"L{i + 1}": v for i, v in enumerate(L)}, "loss": loss_value},
        "layers": [
            {"z": z, "L": out, "dL": d}
            for z, out, d in zip(
                by_hand["z"].numpy().tolist(), L, by_hand["dL"].numpy().tolist(), strict=True
            )
        ],
        "loss_derivative": float(by_hand["loss_derivative"]),
        "deltas": by_hand["delta"].numpy().tolist(),
        "gradients": [
            {
                "param": name,
                "chain": c,
                "tape": t,
                "finite_difference": f,
                "agree": _agree(c, t) and _agree(f, t),
            }
            for name, c, t, f in rows
        ],
        "fd_step": FD_STEP,
        "tolerance": TOLERANCE,
    }


@tf.function
def _descend(x, y, w, b, bias_on, lr, steps, activation, loss):
    """Up to `steps` gradient-descent steps in one graph; stops before a step that breaks bounds."""

    def loss_at(w, b):
        return chain_loss(x, y, w, b, activation, loss)

    def body(i, w, b, ok, losses, ws, bs):
        with tf.GradientTape() as tape:
            tape.watch([w, b])
            value = loss_at(w, b)
        gw, gb = tape.gradient(value, [w, b])
        w_new, b_new = w - lr * gw, b - lr * bias_on * gb
        value_new = loss_at(w_new, b_new)
        ok = (
            tf.math.is_finite(value_new)
            & tf.reduce_all(tf.abs(w_new) <= MAX_ABS)
            & tf.reduce_all(tf.abs(b_new) <= MAX_ABS)
        )
        losses, ws, bs = (
            losses.write(i + 1, value_new),
            ws.write(i + 1, w_new),
            bs.write(i + 1, b_new),
        )
        # A step that breaks the bounds is recorded past the end and not counted.
        return tf.where(ok, i + 1, i), w_new, b_new, ok, losses, ws, bs

    def arrays(first):
        return tf.TensorArray(DTYPE, size=1, dynamic_size=True).write(0, first)

    i, *_, losses, ws, bs = tf.while_loop(
        lambda i, w, b, ok, *_: (i < steps) & ok,
        body,
        (tf.constant(0), w, b, tf.constant(True), arrays(loss_at(w, b)), arrays(w), arrays(b)),
    )
    return i, losses.stack(), ws.stack(), bs.stack()


def train(
    x: float,
    y: float,
    w: Sequence[float],
    b: Sequence[float] | None = None,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
    lr: float = 0.5,
    steps: int = 1,
) -> dict:
    """Gradient descent on the chain: θ ← θ − lr·∂loss/∂θ for every weight (and bias), `steps` times.

    The steps run in one compiled call (one trace per depth, activation and loss). A step that
    would make the loss non-finite or move a parameter beyond ±`MAX_ABS` is not taken: the run
    stops there and says why.

    Args:
        x: Float in `RANGES["x"]`, the input.
        y: Float in [0, 1], the expected output.
        w: List of 1 to `MAX_DEPTH` floats, the starting weights.
        b: List of floats as long as `w`, the starting biases, or `None` for no biases.
        activation: String, the hidden layers' activation. Defaults to `"sigmoid"`.
        loss: String, `"cross_entropy"` or `"squared_error"`. Defaults to `"cross_entropy"`.
        lr: Float in `RANGES["lr"]`, the learning rate. Defaults to 0.5.
        steps: Int in [1, `MAX_STEPS`], how many steps to take. Defaults to 1.

    Returns:
        A dict: `loss`, a list of `steps_done + 1` floats (the loss before each step and after the
        last); `w` and `b` (or `None`), lists of `steps_done + 1` parameter lists; `steps_done`;
        and `stopped`, `None` or why the run stopped early.

    Raises:
        ValueError: if an argument is out of range, naming it and its value.
    """
    x, y, w, b = check_chain(x, y, w, b, activation, loss)
    lr = check_number("lr", lr, *RANGES["lr"])
    steps = check_integer("steps", steps, 1, MAX_STEPS)
    done, losses, ws, bs = _descend(
        tf.constant(x, DTYPE),
        tf.constant(y, DTYPE),
        tf.constant(w, DTYPE),
        tf.constant(b or [0.0] * len(w), DTYPE),
        tf.constant(0.0 if b is None else 1.0, DTYPE),
        tf.constant(lr, DTYPE),
        tf.constant(steps),
        activation,
        loss,
    )
    n = int(done) + 1
    return {
        "loss": losses[:n].numpy().tolist(),
        "w": ws[:n].numpy().tolist(),
        "b": None if b is None else bs[:n].numpy().tolist(),
        "steps_done": n - 1,
        "stopped": None
        if n - 1 == steps
        else f"step {n} would have made the loss non-finite or moved a parameter beyond "
        f"±{MAX_ABS:g}",
    }
