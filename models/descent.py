"""Gradient descent on loss surfaces over two weights, several learning rates at once.

A surface is a loss L(w) of w = (w0, w1): a quadratic bowl whose Hessian has eigenvalues λ1 ≥ λ2
along a rotated pair of axes, the mean-squared error of a line fitted to a small seeded data set
(w = slope, intercept), or a bowl with Gaussian dips (one global and two local minima). `descend`
runs plain SGD, momentum, RMSprop or Adam from one start point with up to `MAX_RATES` learning rates
side by side: the rates sit on a leading axis and every step of every run happens inside one XLA
call (`tf.while_loop`), whose trace is shared by all requests of the same (surface, optimizer).
Gradients come from `tf.GradientTape`. A run whose loss turns non-finite or exceeds
`DIVERGENCE_FACTOR` × its start loss is marked diverged at that step and frozen there.
"""

import functools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from models.backprop import check_integer, check_number  # the course's shared Keras-style checks

DTYPE = tf.float64
MAX_RATES = 32
MAX_STEPS = 2000
LR_RANGE = (1e-6, 1e3)
GRID_SIDE = 60
# A run counts as diverged once its loss exceeds this many times its start loss (or 1, if larger).
DIVERGENCE_FACTOR = 1e6
# Keras's defaults, so the compiled rules match `keras.optimizers.*` step for step.
MOMENTUM = 0.9
RHO = 0.9
BETA_1, BETA_2 = 0.9, 0.999
EPSILON = 1e-7
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
# Keras raises β1, β2 to the power t after a round trip through float32 (0.999 → 0.99900001):
# the bias correction then differs by ~1e-5, so ours does the same to agree step for step.
_BETA_1_POWER_BASE = float(np.float32(BETA_1))
_BETA_2_POWER_BASE = float(np.float32(BETA_2))

# The line-fitting data: 20 seeded points around y = 1.5·x − 0.5.
_rng = np.random.default_rng(7)
LINE_X = np.linspace(-2.0, 2.0, 20)
LINE_Y = 1.5 * LINE_X - 0.5 + _rng.normal(0.0, 0.5, LINE_X.shape)

# The non-convex surface: a wide bowl minus three Gaussian dips (centre, depth, width²), lifted by
# NONCONVEX_LIFT so the loss stays positive and a log axis can show it.
DIPS = (((1.6, 1.2), 2.5, 1.0), ((-1.9, -0.8), 1.6, 0.7), ((0.6, -2.2), 1.2, 0.5))
NONCONVEX_LIFT = 2.5


@dataclass(frozen=True)
class Surface:
    """A loss over two weights with the window it is drawn in.

    `loss(w, p)` maps a float64 tensor `w` of shape `[R, 2]` and the parameters `p` of shape `[4]`
    to the loss of each row, shape `[R]`.
    """

    loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    window: tuple[tuple[float, float], tuple[float, float]]  # (w0 range, w1 range)
    start: tuple[float, float]  # a default start point that shows the lesson
    axes: tuple[str, str]


def _quadratic(w: tf.Tensor, p: tf.Tensor) -> tf.Tensor:
    # ½·(λ1·u² + λ2·v²) with (u, v) = w turned by the angle whose cosine and sine are p[2], p[3].
    u = p[2] * w[:, 0] + p[3] * w[:, 1]
    v = -p[3] * w[:, 0] + p[2] * w[:, 1]
    return 0.5 * (p[0] * u * u + p[1] * v * v)


def _line_fit(w: tf.Tensor, p: tf.Tensor) -> tf.Tensor:
    x = tf.constant(LINE_X, DTYPE)
    y = tf.constant(LINE_Y, DTYPE)
    residual = w[:, :1] * x + w[:, 1:] - y
    return tf.reduce_mean(tf.square(residual), axis=1)


def _nonconvex(w: tf.Tensor, p: tf.Tensor) -> tf.Tensor:
    value = 0.12 * tf.reduce_sum(tf.square(w), axis=1) + NONCONVEX_LIFT
    for centre, depth, width2 in DIPS:
        d2 = tf.reduce_sum(tf.square(w - tf.constant(centre, DTYPE)), axis=1)
        value -= depth * tf.exp(-d2 / width2)
    return value


SURFACES = {
    "quadratic": Surface(_quadratic, ((-4.0, 4.0), (-4.0, 4.0)), (-3.2, 2.4), ("w0", "w1")),
    "linear_regression": Surface(
        _line_fit, ((-2.0, 5.0), (-4.0, 3.0)), (-1.5, 2.5), ("slope", "intercept")
    ),
    "nonconvex": Surface(_nonconvex, ((-4.0, 4.0), (-4.0, 4.0)), (-3.5, 3.0), ("w0", "w1")),
}
SURFACE_RANGES = {"curvature": (0.1, 10.0), "condition": (1.0, 100.0), "angle": (-90.0, 90.0)}


def check_surface(
    kind: object, curvature: object = 1.0, condition: object = 10.0, angle: object = 30.0
) -> np.ndarray:
    """Checks a surface's settings and packs them as the compiled loss takes them.

    Args:
        kind: String, a key of `SURFACES`.
        curvature: Float, the quadratic's largest Hessian eigenvalue λ1. Defaults to 1.
        condition: Float ≥ 1, the quadratic's condition number λ1/λ2. Defaults to 10.
        angle: Float, in degrees, how far the quadratic's steep axis is turned from w0. Defaults
            to 30.

    Returns:
        Float64 array of shape `[4]`: (λ1, λ2, cos angle, sin angle); the other surfaces ignore it.

    Raises:
        ValueError: naming the bad setting, its value and the allowed range.
    """
    if kind not in SURFACES:
        raise ValueError(
            f"surface must be one of {', '.join(SURFACES)}. Received: surface={kind!r}"
        )
    lam1 = check_number("curvature", curvature, *SURFACE_RANGES["curvature"])
    kappa = check_number("condition", condition, *SURFACE_RANGES["condition"])
    theta = math.radians(check_number("angle", angle, *SURFACE_RANGES["angle"]))
    return np.array([lam1, lam1 / kappa, math.cos(theta), math.sin(theta)])


def hessian_eigenvalues(kind: str, params: np.ndarray, w: Sequence[float]) -> np.ndarray:
    """The Hessian's eigenvalues at `w`, by a nested `tf.GradientTape`.

    Args:
        kind: String, a key of `SURFACES`.
        params: Float64 array of shape `[4]`, from `check_surface`.
        w: The point, two floats.

    Returns:
        Float64 array of shape `[2]`, ascending.
    """
    _, hessian = _derivatives(kind, params, w)
    return np.linalg.eigvalsh(hessian)


def minimum(kind: str, params: np.ndarray) -> np.ndarray:
    """The surface's global minimum, shape `[2]`: closed forms, else the grid refined by Newton."""
    if kind == "quadratic":
        return np.zeros(2)
    if kind == "linear_regression":
        design = np.stack([LINE_X, np.ones_like(LINE_X)], axis=1)
        return np.linalg.lstsq(design, LINE_Y, rcond=None)[0]
    grid = contour_grid(kind, params)
    i, j = np.unravel_index(np.argmin(grid["loss"]), grid["loss"].shape)
    w = np.array([grid["w0"][j], grid["w1"][i]])
    for _ in range(8):  # Newton: the grid point is already in the right basin
        grad, hessian = _derivatives(kind, params, w)
        w = w - np.linalg.solve(hessian, grad)
    return w


def _derivatives(
    kind: str, params: np.ndarray, w: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """The gradient `[2]` and Hessian `[2, 2]` at `w`, by the surface's traced nested tape."""
    grad, hessian = _derivatives_fn(kind)(tf.constant(w, DTYPE), tf.constant(params, DTYPE))
    return grad.numpy(), hessian.numpy()


def critical_rate(kind: str, params: np.ndarray) -> float:
    """2/λmax at the minimum: plain gradient descent diverges above it (exactly, for a quadratic).

    Args:
        kind: String, a key of `SURFACES`.
        params: Float64 array of shape `[4]`, from `check_surface`.

    Returns:
        Float, the critical learning rate.
    """
    if kind == "quadratic":
        return 2.0 / float(params[0])
    return 2.0 / float(hessian_eigenvalues(kind, params, minimum(kind, params))[-1])


def contour_grid(kind: str, params: np.ndarray, side: int = GRID_SIDE) -> dict[str, np.ndarray]:
    """The loss on a `side`×`side` grid over the surface's window.

    Args:
        kind: String, a key of `SURFACES`.
        params: Float64 array of shape `[4]`, from `check_surface`.
        side: Int, points per axis. Defaults to `GRID_SIDE`.

    Returns:
        A dict: `w0` and `w1`, float64 arrays of shape `[side]`; `loss` of shape `[side, side]`,
        row i holding w1[i] (Plotly's contour layout).
    """
    (a0, b0), (a1, b1) = SURFACES[kind].window
    w0, w1 = np.linspace(a0, b0, side), np.linspace(a1, b1, side)
    mesh = np.stack(np.meshgrid(w0, w1), axis=-1).reshape(-1, 2)
    loss = _grid_fn(kind)(tf.constant(mesh, DTYPE), tf.constant(params, DTYPE))
    return {"w0": w0, "w1": w1, "loss": loss.numpy().reshape(side, side)}


def _slots(optimizer: str, g: tf.Tensor, s1: tf.Tensor, s2: tf.Tensor, lr: tf.Tensor, t: tf.Tensor):
    """One optimizer step: (Δw, s1, s2) from the gradient and two slots, as Keras computes them."""
    if optimizer == "sgd":
        return -lr * g, s1, s2
    if optimizer == "momentum":  # v ← μ·v − η·g, w ← w + v
        v = MOMENTUM * s1 - lr * g
        return v, v, s2
    if optimizer == "rmsprop":  # a ← ρ·a + (1 − ρ)·g², w ← w − η·g/√(a + ε)
        a = RHO * s1 + (1.0 - RHO) * g * g
        return -lr * g / tf.sqrt(a + EPSILON), a, s2
    # Adam: m, v moving averages of g and g², bias correction folded into the step size.
    m = s1 + (g - s1) * (1.0 - BETA_1)
    v = s2 + (g * g - s2) * (1.0 - BETA_2)
    alpha = lr * tf.sqrt(1.0 - _BETA_2_POWER_BASE**t) / (1.0 - _BETA_1_POWER_BASE**t)
    return -alpha * m / (tf.sqrt(v) + EPSILON), m, v


_RUNNERS: dict[tuple[str, str], Callable] = {}
_GRIDS: dict[str, Callable] = {}
_DERIVATIVES: dict[str, Callable] = {}
# Traced functions are built once per key: two first requests at once must not build two.
_BUILD_LOCK = threading.Lock()


def _grid_fn(kind: str) -> Callable:
    """The surface's loss on a batch of points, traced once per surface."""
    with _BUILD_LOCK:
        if kind not in _GRIDS:
            _GRIDS[kind] = tf.function(
                SURFACES[kind].loss,
                input_signature=[
                    tf.TensorSpec([None, 2], DTYPE),
                    tf.TensorSpec([4], DTYPE),
                ],
            )
        return _GRIDS[kind]


def _derivatives_fn(kind: str) -> Callable:
    """Gradient and Hessian at one point, traced once per surface (eager tapes cost ~0.2 s a call)."""
    loss_fn = SURFACES[kind].loss

    def derivatives(w, p):
        point = w[None]
        with tf.GradientTape() as outer:
            outer.watch(point)
            with tf.GradientTape() as inner:
                inner.watch(point)
                value = loss_fn(point, p)
            grad = inner.gradient(value, point)
        return grad[0], outer.batch_jacobian(grad, point)[0]

    with _BUILD_LOCK:
        if kind not in _DERIVATIVES:
            spec = [tf.TensorSpec([2], DTYPE), tf.TensorSpec([4], DTYPE)]
            _DERIVATIVES[kind] = tf.function(derivatives, input_signature=spec)
        return _DERIVATIVES[kind]


def _runner(kind: str, optimizer: str) -> Callable:
    """The compiled multi-run descent for one (surface, optimizer), built once and shared."""
    key = (kind, optimizer)
    with _BUILD_LOCK:
        if key not in _RUNNERS:
            _RUNNERS[key] = _build_runner(kind, optimizer)
        return _RUNNERS[key]


def _build_runner(kind: str, optimizer: str) -> Callable:
    loss_fn = SURFACES[kind].loss

    def value_and_grad(w, p):
        with tf.GradientTape() as tape:
            tape.watch(w)
            value = loss_fn(w, p)
            # Runs are independent, so the gradient of the sum is each run's own gradient.
            total = tf.reduce_sum(value)
        return value, tape.gradient(total, w)

    @tf.function(
        jit_compile=True,
        input_signature=[
            tf.TensorSpec([2], DTYPE),
            tf.TensorSpec([MAX_RATES], DTYPE),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([4], DTYPE),
        ],
    )
    def run(start, lrs, steps, p):
        # Fixed shapes (MAX_RATES runs, MAX_STEPS + 1 rows) so XLA compiles once per key.
        w = tf.tile(start[None], [MAX_RATES, 1])
        loss0, g0 = value_and_grad(w, p)
        bound = DIVERGENCE_FACTOR * tf.maximum(loss0, 1.0)
        paths = tf.zeros([MAX_STEPS + 1, MAX_RATES, 2], DTYPE)
        losses = tf.zeros([MAX_STEPS + 1, MAX_RATES], DTYPE)
        grads = tf.zeros([MAX_STEPS + 1, MAX_RATES, 2], DTYPE)
        paths = tf.tensor_scatter_nd_update(paths, [[0]], w[None])
        losses = tf.tensor_scatter_nd_update(losses, [[0]], loss0[None])
        grads = tf.tensor_scatter_nd_update(grads, [[0]], g0[None])
        lr = lrs[:, None]
        no_step = tf.fill([MAX_RATES], tf.constant(-1))

        def body(k, w, g, s1, s2, diverged_at, paths, losses, grads):
            t = tf.cast(k + 1, DTYPE)
            dw, n1, n2 = _slots(optimizer, g, s1, s2, lr, t)
            new_w = w + dw
            value, new_g = value_and_grad(new_w, p)
            alive = diverged_at < 0
            finite = tf.reduce_all(tf.math.is_finite(new_w), axis=1) & tf.math.is_finite(value)
            blown = alive & ~(finite & (value <= bound))
            diverged_at = tf.where(blown, k + 1, diverged_at)
            # A diverged run keeps its last values: nothing non-finite can flow on from it.
            keep = (alive & ~blown)[:, None]
            w, g = tf.where(keep, new_w, w), tf.where(keep, new_g, g)
            s1, s2 = tf.where(keep, n1, s1), tf.where(keep, n2, s2)
            row = [[k + 1]]
            # The step that diverged is recorded as it came out; the caller drops non-finite values.
            paths = tf.tensor_scatter_nd_update(
                paths, row, tf.where(alive[:, None], new_w, w)[None]
            )
            losses = tf.tensor_scatter_nd_update(losses, row, tf.where(alive, value, 0.0)[None])
            grads = tf.tensor_scatter_nd_update(grads, row, g[None])
            return k + 1, w, g, s1, s2, diverged_at, paths, losses, grads

        zeros = tf.zeros_like(w)
        out = tf.while_loop(
            lambda k, *_: k < steps,
            body,
            (tf.constant(0), w, g0, zeros, zeros, no_step, paths, losses, grads),
        )
        return out[5], out[6], out[7], out[8]

    return run


def check_run(
    kind: str, start: object, learning_rates: object, steps: object, optimizer: object
) -> tuple[tuple[float, float], list[float], int]:
    """Checks a descent request against the allowed ranges.

    Args:
        kind: String, a key of `SURFACES`.
        start: The start point, two numbers inside the surface's window.
        learning_rates: 1 to `MAX_RATES` numbers in `LR_RANGE`.
        steps: Int in [1, `MAX_STEPS`].
        optimizer: String, one of `OPTIMIZERS`.

    Returns:
        `(start, learning_rates, steps)` as Python numbers.

    Raises:
        ValueError: naming the first bad field, its value and the allowed range.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {', '.join(OPTIMIZERS)}. Received: optimizer={optimizer!r}"
        )
    if not isinstance(start, list | tuple) or len(start) != 2:
        raise ValueError(f"start must be two numbers (w0, w1). Received: start={start!r:.40}")
    window = SURFACES[kind].window
    start = tuple(check_number(f"start[{i}]", v, *window[i]) for i, v in enumerate(start))
    if not isinstance(learning_rates, list | tuple) or not 1 <= len(learning_rates) <= MAX_RATES:
        count = len(learning_rates) if isinstance(learning_rates, list | tuple) else learning_rates
        raise ValueError(
            f"learning_rates must hold 1 to {MAX_RATES} numbers. Received: {count!r:.40}"
        )
    rates = [
        check_number(f"learning_rates[{i}]", v, *LR_RANGE) for i, v in enumerate(learning_rates)
    ]
    return start, rates, check_integer("steps", steps, 1, MAX_STEPS)


def descend(
    kind: str,
    params: np.ndarray,
    start: Sequence[float],
    learning_rates: Sequence[float],
    steps: int,
    optimizer: str = "sgd",
) -> list[dict]:
    """Runs gradient descent from `start` once per learning rate, all runs in one compiled call.

    Args:
        kind: String, a key of `SURFACES`.
        params: Float64 array of shape `[4]`, from `check_surface`.
        start: The start point, two floats.
        learning_rates: 1 to `MAX_RATES` floats.
        steps: Int, steps per run.
        optimizer: String, one of `OPTIMIZERS`. Defaults to `"sgd"`.

    Returns:
        One dict per learning rate: `lr`; `path` (steps + 1 points [w0, w1]), `loss` and `grad`
        (∇L at each point), each entry `None` once the run has diverged; `diverged_at`, the step
        at which the loss turned non-finite or passed the bound, or `None`; `final_loss`.
    """
    start, rates, steps = check_run(kind, start, learning_rates, steps, optimizer)
    padded = list(rates) + [rates[0]] * (MAX_RATES - len(rates))
    diverged_at, paths, losses, grads = _runner(kind, optimizer)(
        tf.constant(start, DTYPE),
        tf.constant(padded, DTYPE),
        tf.constant(steps, tf.int32),
        tf.constant(params, DTYPE),
    )
    diverged_at = diverged_at.numpy()
    paths, losses, grads = paths.numpy(), losses.numpy(), grads.numpy()
    runs = []
    for r, lr in enumerate(rates):
        diverged = bool(diverged_at[r] >= 0)
        stop = int(diverged_at[r]) if diverged else steps
        # Only the step that diverged can hold a non-finite value: the loop froze the run after it.
        path = paths[:stop, r].tolist() + [_finite_point(paths[stop, r])]
        loss = losses[: stop + 1, r].tolist()
        loss[-1] = _finite(loss[-1])
        # ∇L at the diverged point would be frozen, not real: none is given there.
        grad = grads[: stop + 1, r].tolist()
        if diverged:
            grad[-1] = None
        tail = [None] * (steps - stop)
        runs.append(
            {
                "lr": lr,
                "path": path + tail,
                "loss": loss + tail,
                "grad": grad + tail,
                "diverged_at": stop if diverged else None,
                "final_loss": None if diverged else loss[-1],
            }
        )
    return runs


def sweep(runs: list[dict]) -> dict[str, list]:
    """The final loss after the last step for each learning rate: where the good band ends.

    Args:
        runs: The runs of one `descend` call, one per learning rate.

    Returns:
        A dict of lists, one entry per rate: `learning_rates`, `final_loss` (`None` where the run
        diverged) and `diverged_at` (the step, or `None`).
    """
    return {
        "learning_rates": [r["lr"] for r in runs],
        "final_loss": [r["final_loss"] for r in runs],
        "diverged_at": [r["diverged_at"] for r in runs],
    }


@functools.lru_cache(maxsize=64)
def _described(kind: str, params: tuple[float, ...]) -> dict:
    p = np.array(params)
    grid = contour_grid(kind, p)
    w = minimum(kind, p)
    return {
        "kind": kind,
        "axes": list(SURFACES[kind].axes),
        "window": [list(r) for r in SURFACES[kind].window],
        "default_start": list(SURFACES[kind].start),
        "w0": grid["w0"].tolist(),
        "w1": grid["w1"].tolist(),
        "loss": grid["loss"].tolist(),
        "minimum": w.tolist(),
        "min_loss": float(SURFACES[kind].loss(tf.constant([w], DTYPE), tf.constant(p, DTYPE))[0]),
        "eigenvalues": hessian_eigenvalues(kind, p, w).tolist(),
        "critical_lr": critical_rate(kind, p),
        "critical_exact": kind != "nonconvex",
    }


def describe(kind: str, params: np.ndarray) -> dict:
    """The surface as a page draws it: contour grid, minimum and critical rate (cached).

    Args:
        kind: String, a key of `SURFACES`.
        params: Float64 array of shape `[4]`, from `check_surface`.

    Returns:
        A dict: `kind`, `axes` (names of w0 and w1), `window`, `default_start`; `w0`, `w1`
        (`GRID_SIDE` floats each) and `loss` (`GRID_SIDE` rows of `GRID_SIDE` floats, row i at
        w1[i]); `minimum`, `min_loss`, the Hessian's `eigenvalues` there, `critical_lr` = 2/λmax,
        and `critical_exact`, false where 2/λmax only holds near the minimum.
    """
    return _described(kind, tuple(float(x) for x in params))


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _finite_point(v: np.ndarray) -> list[float] | None:
    return v.tolist() if np.all(np.isfinite(v)) else None


def warm_up(kind: str, optimizer: str) -> None:
    """Compiles one (surface, optimizer) runner and describes the default surface: about a second
    of XLA, better paid once in the background than by a student's first request.

    Args:
        kind: String, a key of `SURFACES`.
        optimizer: String, one of `OPTIMIZERS`.
    """
    params = check_surface(kind)
    describe(kind, params)
    descend(kind, params, SURFACES[kind].start, [0.1], 1, optimizer)
