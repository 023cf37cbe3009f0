"""Convolution, activation functions and pooling: the course's CNN building blocks in TensorFlow.

`tf.nn.conv2d` slides each kernel over the image and sums the products under it. Strictly that
is a cross-correlation; a convolution flips the kernel by 180° first. `mode` picks either, so the
lab can show that they differ for an asymmetric kernel (Sobel) and agree for a symmetric one
(Gaussian blur).

Images are float32 batches `(batch, height, width, channels)` as `tf.nn.conv2d` wants them;
kernels are 2-D `(height, width)` weights, stacked `(count, height, width)` for a filter bank.
"""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

PADDINGS = ("SAME", "VALID")
MODES = ("correlation", "convolution")
POOLS = ("max", "avg")
MAX_KERNELS = 16
MAX_KERNEL_SIDE = 9
MAX_STRIDE = 4
MAX_POOL_WINDOW = 4
# Weights and pixel values beyond these are typos, and their products would overflow float32.
MAX_ABS_WEIGHT = 1e3
MAX_ABS_VALUE = 1e6

KERNEL_PRESETS = {
    "identity": "Identity",
    "box_blur": "Box blur",
    "gaussian_blur": "Gaussian blur",
    "sharpen": "Sharpen",
    "sobel_x": "Sobel x",
    "sobel_y": "Sobel y",
    "laplacian": "Laplacian",
    "edge": "Edge detection",
    "emboss": "Emboss",
}
KERNEL_SIZES = (3, 5)
LUMA_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], np.float32) / np.float32(0.9999)

ACTIVATIONS = {
    "identity": tf.identity,
    "sigmoid": tf.nn.sigmoid,
    "tanh": tf.nn.tanh,
    "relu": tf.nn.relu,
    "leaky_relu": tf.nn.leaky_relu,  # slope 0.2 below zero, TensorFlow's default
    "elu": tf.nn.elu,
    "softplus": tf.nn.softplus,
    "swish": tf.nn.silu,
}

# 1-D signals live on t in [-SIGNAL_SPAN, SIGNAL_SPAN].
SIGNALS = {"box": "Box", "spiky": "Spiky", "gaussian": "Gaussian"}
SIGNAL_SPAN = 3.0
SPIKY_DECAY = 0.3


def kernel_preset(name: str, size: int = 3) -> np.ndarray:
    """Returns a classic image-processing kernel.

    Sobel x is `[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`: under correlation it is positive where
    brightness grows to the right. The 5×5 versions extend each kernel with binomial smoothing.

    Args:
        name: One of `KERNEL_PRESETS`.
        size: 3 or 5. Defaults to 3.

    Returns:
        float32 array of shape `(size, size)`.
    """
    if name not in KERNEL_PRESETS:
        raise ValueError(f"name must be one of {list(KERNEL_PRESETS)}. Received: name={name!r}")
    if size not in KERNEL_SIZES:
        raise ValueError(f"size must be one of {KERNEL_SIZES}. Received: size={size}")
    smooth = np.array([1, 2, 1] if size == 3 else [1, 4, 6, 4, 1], np.float32)
    deriv = np.array([-1, 0, 1] if size == 3 else [-1, -2, 0, 2, 1], np.float32)
    delta = np.zeros((size, size), np.float32)
    delta[size // 2, size // 2] = 1
    gauss = np.outer(smooth, smooth) / smooth.sum() ** 2
    rows, cols = np.indices((size, size))
    kernels = {
        "identity": lambda: delta,
        "box_blur": lambda: np.full((size, size), 1 / size**2, np.float32),
        "gaussian_blur": lambda: gauss,
        "sharpen": lambda: (
            np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32)
            if size == 3
            else 2 * delta - gauss
        ),
        "sobel_x": lambda: np.outer(smooth, deriv),
        "sobel_y": lambda: np.outer(deriv, smooth),
        "laplacian": lambda: (
            np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
            if size == 3
            else np.array(
                [
                    [0, 0, 1, 0, 0],
                    [0, 1, 2, 1, 0],
                    [1, 2, -16, 2, 1],
                    [0, 1, 2, 1, 0],
                    [0, 0, 1, 0, 0],
                ],
                np.float32,
            )
        ),
        "edge": lambda: np.where(delta == 1, size * size - 1, -1).astype(np.float32),
        "emboss": lambda: (rows + cols - (size - 1) + delta).astype(np.float32),
    }
    return kernels[name]().astype(np.float32)


def flip_kernel(kernel: np.ndarray) -> np.ndarray:
    """Rotates kernels by 180°, turning a correlation into a convolution and back.

    Args:
        kernel: Array of shape `(..., height, width)`.

    Returns:
        Array of the same shape with both spatial axes reversed.
    """
    kernel = np.asarray(kernel)
    return kernel[..., ::-1, ::-1]


def as_batch(x: np.ndarray) -> np.ndarray:
    """Adds the batch and channel axes `tf.nn.conv2d` wants.

    Args:
        x: Array of shape `(height, width)`, `(height, width, channels)` or already
            `(batch, height, width, channels)`.

    Returns:
        float32 array of shape `(batch, height, width, channels)`.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        return x[np.newaxis, :, :, np.newaxis]
    if x.ndim == 3:
        return x[np.newaxis]
    if x.ndim == 4:
        return x
    raise ValueError(f"x must have 2, 3 or 4 dimensions. Received: shape={x.shape}")


def to_grayscale(images: np.ndarray) -> np.ndarray:
    """Converts an RGB batch to luminance; one-channel batches are returned unchanged.

    The weights are `tf.image.rgb_to_grayscale`'s (ITU-R 601), scaled to sum to exactly 1 so
    that white stays 1.0 and a gray image keeps its values.

    Args:
        images: float32 array of shape `(batch, height, width, 1 or 3)`.

    Returns:
        float32 array of shape `(batch, height, width, 1)`.
    """
    channels = images.shape[-1]
    if channels == 1:
        return images
    if channels != 3:
        raise ValueError(f"images must have 1 or 3 channels. Received: shape={images.shape}")
    return tf.tensordot(images, LUMA_WEIGHTS, axes=[[3], [0]])[..., tf.newaxis].numpy()


def fit_size(images: np.ndarray, max_side: int) -> np.ndarray:
    """Shrinks a batch by area averaging so neither side exceeds `max_side`; never enlarges.

    Args:
        images: float32 array of shape `(batch, height, width, channels)`.
        max_side: Largest allowed height or width, at least 1.

    Returns:
        float32 array of shape `(batch, h, w, channels)` with `max(h, w) <= max_side`, aspect
        ratio kept.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1. Received: max_side={max_side}")
    height, width = images.shape[1:3]
    scale = max_side / max(height, width)
    if scale >= 1:
        return images
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return tf.image.resize(images, size, method="area").numpy()


def downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Averages `factor`×`factor` blocks, e.g. to send a 512×512 feature map as 128×128.

    Args:
        images: float32 array of shape `(batch, height, width, channels)`.
        factor: Block side, at least 1; 1 returns `images` unchanged.

    Returns:
        float32 array of shape `(batch, ceil(height / factor), ceil(width / factor), channels)`;
        blocks cut by the border average only the values that exist.
    """
    if factor < 1:
        raise ValueError(f"factor must be at least 1. Received: factor={factor}")
    if factor == 1:
        return images
    return tf.nn.avg_pool2d(images, factor, factor, "SAME").numpy()


def max_abs(maps: np.ndarray) -> np.ndarray:
    """Largest absolute value of each channel, the scale a diverging colour map needs.

    Args:
        maps: float32 array of shape `(batch, height, width, channels)`.

    Returns:
        float32 array of shape `(channels,)`.
    """
    return tf.reduce_max(tf.abs(maps), axis=(0, 1, 2)).numpy()


def output_size(size: int, kernel_size: int, stride: int, padding: str) -> int:
    """Length of one spatial axis after `tf.nn.conv2d` or pooling.

    Args:
        size: Input length along the axis.
        kernel_size: Kernel (or pooling window) length along the axis.
        stride: Step between windows.
        padding: `"SAME"` (pad with zeros so every input position starts a window) or `"VALID"`
            (windows stay inside the input).

    Returns:
        `ceil(size / stride)` for `"SAME"`, `ceil((size - kernel_size + 1) / stride)` for
        `"VALID"`.
    """
    if padding == "SAME":
        return -(-size // stride)
    return -(-(size - kernel_size + 1) // stride)


def padding_offsets(
    height: int, width: int, kernel_height: int, kernel_width: int, stride: int, padding: str
) -> tuple[int, int]:
    """Zeros TensorFlow adds above and left of the input, so output pixel `(i, j)` reads the
    input window whose top-left corner is `(i * stride - top, j * stride - left)`.

    Args:
        height: Input height.
        width: Input width.
        kernel_height: Kernel (or window) height.
        kernel_width: Kernel (or window) width.
        stride: Step between windows.
        padding: `"SAME"` or `"VALID"`.

    Returns:
        `(top, left)`: 0 for `"VALID"`; for `"SAME"` half the total padding, rounded down (the
        odd zero goes below and right, as in TensorFlow).
    """
    if padding == "VALID":
        return 0, 0

    def before(size: int, k: int) -> int:
        total = max((output_size(size, k, stride, "SAME") - 1) * stride + k - size, 0)
        return total // 2

    return before(height, kernel_height), before(width, kernel_width)


def conv2d(
    images: np.ndarray,
    kernels: np.ndarray,
    stride: int = 1,
    padding: str = "SAME",
    mode: str = "correlation",
) -> np.ndarray:
    """Applies a bank of 2-D kernels with `tf.nn.conv2d`.

    On a multi-channel input each kernel is repeated over the channels and the products summed,
    so the filter tensor has the course's shape `(kernel_height, kernel_width, in_channels,
    out_channels)`.

    Example:

    >>> edges = conv2d(image, kernel_preset("sobel_x")[None], padding="VALID")

    Args:
        images: float32 array of shape `(batch, height, width, channels)`.
        kernels: Array of shape `(count, kernel_height, kernel_width)`, at most `MAX_KERNELS`
            kernels of at most `MAX_KERNEL_SIDE` a side, all finite.
        stride: Step of the kernel in both directions, 1 to `MAX_STRIDE` and not more than the
            input's smaller side. Defaults to 1.
        padding: `"SAME"` or `"VALID"`. Defaults to `"SAME"`.
        mode: `"correlation"` (what `tf.nn.conv2d` computes) or `"convolution"` (the kernel is
            flipped by 180° first). Defaults to `"correlation"`.

    Returns:
        float32 array of shape `(batch, out_height, out_width, count)`: one feature map per
        kernel, sizes given by `output_size`.
    """
    images = _check_images(images)
    kernels = _check_kernels(kernels)
    _check_window(images.shape, kernels.shape[1:], stride, padding, "kernel")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}")
    if mode == "convolution":
        kernels = flip_kernel(kernels)
    channels = images.shape[-1]
    # (count, kh, kw) -> (kh, kw, in_channels, count), the same 2-D weights on every channel.
    filters = np.repeat(np.transpose(kernels, (1, 2, 0))[:, :, np.newaxis, :], channels, axis=2)
    return tf.nn.conv2d(images, filters, strides=stride, padding=padding).numpy()


def pool2d(
    maps: np.ndarray,
    pool: str = "max",
    window: int = 2,
    stride: int = 2,
    padding: str = "VALID",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Max or average pooling with `tf.nn.max_pool2d` / `tf.nn.avg_pool2d`.

    Args:
        maps: float32 array of shape `(batch, height, width, channels)`.
        pool: `"max"` or `"avg"`. Defaults to `"max"`.
        window: Side of the square pooling window, 1 to `MAX_POOL_WINDOW`. Defaults to 2.
        stride: Step between windows, 1 to `MAX_STRIDE`. Defaults to 2.
        padding: `"SAME"` or `"VALID"`. Defaults to `"VALID"`.

    Returns:
        `(pooled, argmax)`: `pooled` is float32 of shape `(batch, out_height, out_width,
        channels)`. For max pooling `argmax` has the same shape and holds, for every output,
        the flat index `y * width + x` of the input it came from (from
        `tf.nn.max_pool_with_argmax`); for average pooling it is `None`, every input of the
        window contributing equally.
    """
    maps = _check_images(maps, name="maps")
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}. Received: pool={pool!r}")
    if not isinstance(window, int | np.integer) or not 1 <= window <= MAX_POOL_WINDOW:
        raise ValueError(
            f"window must be an integer in [1, {MAX_POOL_WINDOW}]. Received: window={window}"
        )
    _check_window(maps.shape, (window, window), stride, padding, "pooling window")
    if pool == "avg":
        return tf.nn.avg_pool2d(maps, window, stride, padding).numpy(), None
    pooled = tf.nn.max_pool2d(maps, window, stride, padding)
    _, argmax = tf.nn.max_pool_with_argmax(maps, window, stride, padding)
    # TensorFlow's index is (y * width + x) * channels + c within each batch item.
    return pooled.numpy(), argmax.numpy() // maps.shape[-1]


def activate(x: np.ndarray, name: str) -> np.ndarray:
    """Applies one of `ACTIVATIONS` element-wise.

    Args:
        x: float32 array of any shape, e.g. feature maps `(batch, height, width, channels)`.
        name: One of `ACTIVATIONS`.

    Returns:
        float32 array of the same shape; `"relu"` turns every negative value into 0.
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"name must be one of {list(ACTIVATIONS)}. Received: name={name!r}")
    return ACTIVATIONS[name](tf.constant(x, tf.float32)).numpy()


def activation_curves(x: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every activation and its derivative, the derivative taken by `tf.GradientTape`.

    Args:
        x: float32 array of shape `(points,)`.

    Returns:
        `{name: (y, dy_dx)}` for every name of `ACTIVATIONS`, each array of shape `(points,)`.
    """
    x = tf.constant(x, tf.float32)
    curves = {}
    for name, fn in ACTIVATIONS.items():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        curves[name] = (y.numpy(), tape.gradient(y, x).numpy())
    return curves


def make_signal(name: str, t: np.ndarray) -> np.ndarray:
    """One of the course's 1-D signals.

    Args:
        name: `"box"` (1 on [-0.5, 0.5]), `"spiky"` (jumps to 1 at t = 0, then decays as
            `exp(-t / 0.3)`) or `"gaussian"` (bell of standard deviation 0.25).
        t: float array of sample times, shape `(points,)`.

    Returns:
        float32 array of shape `(points,)`.
    """
    t = np.asarray(t, np.float32)
    if name == "box":
        return (np.abs(t) <= 0.5).astype(np.float32)
    if name == "spiky":
        return np.where(t >= 0, np.exp(-np.maximum(t, 0) / SPIKY_DECAY), 0).astype(np.float32)
    if name == "gaussian":
        return np.exp(-(t**2) / (2 * 0.25**2)).astype(np.float32)
    raise ValueError(f"name must be one of {list(SIGNALS)}. Received: name={name!r}")


@dataclass(frozen=True)
class SignalConvolution:
    """A 1-D convolution `(f * g)(t) = ∫ f(τ) g(t - τ) dτ` and the frames that animate it.

    Attributes:
        t: Sample times, shape `(points,)`.
        f: The signal, shape `(points,)`.
        g: The kernel, shape `(points,)`.
        output: `(f * g)(t)`, shape `(points,)`.
        shifts: Index into `t` of each animation frame, shape `(frames,)`, spanning where the
            output is not zero plus a margin.
        kernel_at: `g(t[shift] - τ)`, the flipped kernel slid to each shift, `(frames, points)`.
        products: `f(τ) g(t[shift] - τ)`, whose area is `output[shift]`, `(frames, points)`.
    """

    t: np.ndarray
    f: np.ndarray
    g: np.ndarray
    output: np.ndarray
    shifts: np.ndarray
    kernel_at: np.ndarray
    products: np.ndarray


def convolve_signals(
    signal: str, kernel: str, points: int = 241, frames: int = 61
) -> SignalConvolution:
    """Convolves two 1-D signals with `tf.nn.conv1d` and slides the kernel for an animation.

    `tf.nn.conv1d` is a correlation too, so the kernel goes in reversed; the sum is scaled by the
    sample spacing to approximate the integral.

    Args:
        signal: Name of `f`, one of `SIGNALS`.
        kernel: Name of `g`, one of `SIGNALS`.
        points: Odd number of samples on [-SIGNAL_SPAN, SIGNAL_SPAN], 21 to 1001. Defaults to
            241.
        frames: Number of kernel positions to animate, 2 to `points`, spread over the span
            where the output is not zero (and a margin). Defaults to 61.

    Returns:
        A `SignalConvolution`.
    """
    if not (21 <= points <= 1001 and points % 2 == 1):
        raise ValueError(f"points must be odd and in [21, 1001]. Received: points={points}")
    if not 2 <= frames <= points:
        raise ValueError(f"frames must be in [2, points={points}]. Received: frames={frames}")
    t = np.linspace(-SIGNAL_SPAN, SIGNAL_SPAN, points, dtype=np.float32)
    f, g = make_signal(signal, t), make_signal(kernel, t)
    dt = float(t[1] - t[0])
    output = tf.nn.conv1d(f[None, :, None], g[::-1, None, None], stride=1, padding="SAME")
    output = output.numpy()[0, :, 0] * dt
    centre = points // 2
    # Animate where the output is not zero, plus a margin: the overlap is the interesting part.
    support = np.flatnonzero(np.abs(output) > 1e-3 * max(np.abs(output).max(), 1e-12))
    lo, hi = (support[0], support[-1]) if support.size else (0, points - 1)
    margin = max((hi - lo) // 4, 1)
    lo, hi = max(lo - margin, 0), min(hi + margin, points - 1)
    shifts = np.round(np.linspace(lo, hi, frames)).astype(int)
    # g(t_s - τ_i) sits at index centre + s - i of g's grid; outside the grid it is 0.
    index = centre + shifts[:, None] - np.arange(points)[None, :]
    inside = (index >= 0) & (index < points)
    kernel_at = np.where(inside, g[np.clip(index, 0, points - 1)], 0).astype(np.float32)
    return SignalConvolution(t, f, g, output, shifts, kernel_at, f[None, :] * kernel_at)


@dataclass(frozen=True)
class CnnForward:
    """Every tensor of `simple_cnn`, batch first.

    Attributes:
        conv: `(batch, h, w, kernels)` feature maps of `conv2d`.
        activated: The same shape after the activation.
        pooled: `(batch, h', w', kernels)` after pooling.
        argmax: Source index `y * w + x` of every max-pooled value, or `None` for average pooling.
        flat: `(batch, h' * w' * kernels)`, the pooled maps flattened.
        logits: `(batch, units)` outputs of the dense layer.
        probabilities: `(batch, units)` softmax of the logits.
    """

    conv: np.ndarray
    activated: np.ndarray
    pooled: np.ndarray
    argmax: np.ndarray | None
    flat: np.ndarray
    logits: np.ndarray
    probabilities: np.ndarray


def simple_cnn(
    images: np.ndarray,
    kernels: np.ndarray,
    *,
    stride: int = 1,
    padding: str = "SAME",
    mode: str = "correlation",
    activation: str = "relu",
    pool: str = "max",
    pool_window: int = 2,
    pool_stride: int = 2,
    units: int = 3,
    seed: int = 0,
) -> CnnForward:
    """The course's simple CNN, forward only: conv → activation → pool → flatten → dense.

    The dense layer's weights are Glorot-uniform from `seed` and untrained, so its outputs show
    shapes, not predictions.

    Args:
        images: float32 array of shape `(batch, height, width, channels)`.
        kernels: `(count, kernel_height, kernel_width)` weights of the convolution.
        stride: Convolution stride. Defaults to 1.
        padding: Convolution padding, `"SAME"` or `"VALID"`. Defaults to `"SAME"`.
        mode: `"correlation"` or `"convolution"`. Defaults to `"correlation"`.
        activation: One of `ACTIVATIONS`. Defaults to `"relu"`.
        pool: `"max"` or `"avg"`. Defaults to `"max"`.
        pool_window: Pooling window side. Defaults to 2.
        pool_stride: Pooling stride. Defaults to 2.
        units: Outputs of the dense layer, 1 to 10. Defaults to 3.
        seed: Seed of the dense weights. Defaults to 0.

    Returns:
        A `CnnForward` holding every intermediate tensor.
    """
    if not 1 <= units <= 10:
        raise ValueError(f"units must be in [1, 10]. Received: units={units}")
    conv = conv2d(images, kernels, stride, padding, mode)
    activated = activate(conv, activation)
    pooled, argmax = pool2d(activated, pool, pool_window, pool_stride)
    flat = pooled.reshape(pooled.shape[0], -1)
    limit = np.sqrt(6 / (flat.shape[1] + units))
    w = tf.random.stateless_uniform((flat.shape[1], units), (seed, 0), -limit, limit)
    logits = tf.matmul(flat, w)
    return CnnForward(
        conv=conv,
        activated=activated,
        pooled=pooled,
        argmax=argmax,
        flat=flat,
        logits=logits.numpy(),
        probabilities=tf.nn.softmax(logits).numpy(),
    )


def _check_images(images: np.ndarray, name: str = "images") -> np.ndarray:
    """float32 (batch, height, width, channels) finite values within MAX_ABS_VALUE."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or min(images.shape) < 1:
        raise ValueError(
            f"{name} must have shape (batch, height, width, channels). Received: shape="
            f"{images.shape}"
        )
    if not np.isfinite(images).all() or np.abs(images).max() > MAX_ABS_VALUE:
        raise ValueError(
            f"{name} must hold finite values within ±{MAX_ABS_VALUE:g}. Received: values in "
            f"[{images.min()}, {images.max()}]"
        )
    return images


def _check_kernels(kernels: np.ndarray) -> np.ndarray:
    """float32 (count, height, width) of sane size and finite, bounded weights."""
    kernels = np.asarray(kernels, dtype=np.float32)
    if kernels.ndim != 3:
        raise ValueError(
            f"kernels must have shape (count, height, width). Received: shape={kernels.shape}"
        )
    count, kh, kw = kernels.shape
    if not 1 <= count <= MAX_KERNELS:
        raise ValueError(f"Give 1 to {MAX_KERNELS} kernels. Received: {count} kernels")
    if not (1 <= kh <= MAX_KERNEL_SIDE and 1 <= kw <= MAX_KERNEL_SIDE):
        raise ValueError(
            f"Kernels must be 1 to {MAX_KERNEL_SIDE} cells a side. Received: {kh}×{kw}"
        )
    if not np.isfinite(kernels).all():
        raise ValueError("Kernel weights must be finite numbers. Received: NaN or inf")
    if np.abs(kernels).max() > MAX_ABS_WEIGHT:
        raise ValueError(
            f"Kernel weights must be within ±{MAX_ABS_WEIGHT:g}. Received: "
            f"{np.abs(kernels).max():g}"
        )
    return kernels


def _check_window(
    shape: tuple[int, ...], window: tuple[int, int], stride: int, padding: str, what: str
) -> None:
    """Stride and padding valid, and the window fits the input under VALID padding."""
    height, width = shape[1:3]
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}. Received: padding={padding!r}")
    if not isinstance(stride, int | np.integer) or not 1 <= stride <= MAX_STRIDE:
        raise ValueError(f"stride must be an integer in [1, {MAX_STRIDE}]. Received: {stride}")
    if stride > min(height, width):
        raise ValueError(
            f"stride {stride} is larger than the {height}×{width} input. Received: stride={stride}"
        )
    if padding == "VALID" and (window[0] > height or window[1] > width):
        raise ValueError(
            f"A {window[0]}×{window[1]} {what} does not fit in the {height}×{width} input with "
            "padding VALID; use SAME or a smaller window."
        )
