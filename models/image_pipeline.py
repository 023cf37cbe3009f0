"""What TensorFlow sees at every step from an image file to a batch tensor.

The course's "Working with images" lesson: a file is decoded (`tf.io.decode_image`), resized,
cast, normalized and batched, and can be cropped, flipped, recoloured or augmented on the way.
Every step here runs the TensorFlow call it names, on a numpy array `(height, width, channels)`,
and `inspect` says what a student should look at: shape, dtype, per-channel statistics and
histograms, and a picture drawn so that a normalized image is never shown as black.

Decoding itself starts from the `native` pixels `models.images.decode_image` keeps (what
`tf.io.decode_image` gives, made by Pillow: TensorFlow never decodes untrusted bytes here).

- `run_pipeline`: decode options and a list of `(op, params)` steps → one `Stage` per step;
- `OPERATIONS`: each step's parameters (with their ranges) and its `tf.image` call;
- `NORMALIZATIONS`, `normalize` and `first_step_gradients`: why a network wants its inputs scaled;
- `AUGMENTATIONS` and `augment`: a batch of `tf.image.stateless_random_*` augmentations from one
  seed, each reporting the random parameters it drew;
- `inspect`, `render`, `encode_png`: statistics, histograms and pictures of any array;
- `snippet`: the pipeline as a short runnable TensorFlow program;
- `SAMPLE_FILES` and `sample_file`: generated files in every format, so nothing ships.
"""

import functools
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from models.backprop import check_integer, check_number  # the course's shared Keras-style checks
from models.images import ORIENTATIONS, ImageFile, orient

MAX_SIDE = 1024  # the largest height or width a step may make (resize, pad)
MAX_STEPS = 16
MAX_ABS_PARAM = 1e6
HISTOGRAM_BINS = (8, 16, 32, 64, 128, 256)
DECODE_CHANNELS = (0, 1, 3, 4)  # 0: as many as the file has
DECODE_DTYPES = ("uint8", "uint16", "float32")
CAST_DTYPES = ("float32", "float16", "uint8", "uint16", "int32")
CONVERT_DTYPES = ("float32", "uint8", "uint16")
RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area")
RESIZE_FITS = ("stretch", "keep_aspect", "pad")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The tiny network of `first_step_gradients`.
GRADIENT_SIDE = 32
GRADIENT_HIDDEN = 16
GRADIENT_CLASSES = 10
GRADIENT_LEARNING_RATE = 0.01
NAN_COLOR = (255, 0, 255)  # how `render` marks a NaN or infinite value
_DTYPE_MAX = {"uint8": 255, "uint16": 65535}
_CHANNEL_NAMES = {1: ("gray",), 2: ("gray", "alpha"), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}


class StepError(ValueError):
    """A step that cannot run on the image it receives (too few channels, a box that does not
    fit…). `index` is its place in the pipeline: 0 is the decode, 1 the first step."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index


# --- Parameters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One parameter of a step or an augmentation.

    Attributes:
        name: Its keyword, as in the `tf.image` call.
        default: Its default value; its type (bool, int, float or str) is the parameter's type.
        low: Smallest allowed number (numbers only).
        high: Largest allowed number (numbers only).
        choices: The allowed values (strings and enumerated integers only).
        doc: One line for the page and the API documentation.
    """

    name: str
    default: bool | int | float | str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    doc: str = ""

    def check(self, owner: str, value: object) -> bool | int | float | str:
        """`value` if allowed, else a Keras-style ValueError naming `owner.name`, value and range."""
        name = f"{owner}.{self.name}"
        if self.choices:
            if type(value) is not type(self.default) or value not in self.choices:
                raise ValueError(
                    f"{name} must be one of {list(self.choices)}. Received: {name}={value!r}"
                )
            return value
        if isinstance(self.default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false. Received: {name}={value!r}")
            return value
        if isinstance(self.default, int):
            return check_integer(name, value, int(self.low), int(self.high))
        return check_number(name, value, self.low, self.high)


def check_params(owner: str, params: Sequence[Param], given: Mapping[str, object]) -> dict:
    """Every parameter of `params`, from `given` or its default, checked.

    Args:
        owner: The step or augmentation, for the messages (`"resize"`).
        params: Its parameters.
        given: The values received, by name.

    Returns:
        Every parameter's value, by name.

    Raises:
        ValueError: naming an unknown parameter, or a value out of its range.
    """
    known = {p.name for p in params}
    if unknown := sorted(set(given) - known):
        raise ValueError(f"{owner} takes {sorted(known) or 'no parameters'}. Received: {unknown}")
    return {p.name: p.check(owner, given.get(p.name, p.default)) for p in params}


# --- One step ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """What one step made.

    Attributes:
        x: The result, numpy `(height, width, channels)`.
        call: The TensorFlow expression that made it from `x`, e.g.
            `tf.image.resize(x, (224, 224), method="bilinear")`.
        note: What the student should notice here; empty if nothing.
        jpeg_bytes: `jpeg_quality` only: the size of the JPEG it encoded.
    """

    x: np.ndarray
    call: str
    note: str = ""
    jpeg_bytes: int | None = None


def _num(value: float) -> str:
    """A number as Python code writes it (`0.2`, `1.0`, `3`)."""
    return repr(value) if isinstance(value, int) else repr(float(value))


def _is_float(x: np.ndarray) -> bool:
    return np.issubdtype(x.dtype, np.floating)


def _as_float(x: np.ndarray) -> tuple[np.ndarray, str]:
    """`x` as float32, and the expression that made it: integer tensors cannot be divided by
    a float in TensorFlow (`uint8 / 255.0` is a TypeError)."""
    if _is_float(x):
        return x, "x"
    return x.astype(np.float32), "tf.cast(x, tf.float32)"


def _needs_channels(x: np.ndarray, allowed: tuple[int, ...], what: str) -> None:
    if x.shape[-1] not in allowed:
        names = {1: "1 (gray)", 3: "3 (RGB)"}
        wanted = " or ".join(names.get(c, str(c)) for c in allowed)
        raise ValueError(
            f"{what} needs {wanted} channels. Received: shape={tuple(x.shape)}; "
            + (
                "decode with channels=3 or add grayscale_to_rgb first."
                if x.shape[-1] != 3
                else "add grayscale first."
            )
        )


def _resize(x, *, height, width, method, fit, antialias) -> Applied:
    extra = f', method="{method}"' + (", antialias=True" if antialias else "")
    if fit == "pad":
        y = tf.image.resize_with_pad(x, height, width, method=method, antialias=antialias)
        call = f"tf.image.resize_with_pad(x, {height}, {width}{extra})"
    else:
        keep = fit == "keep_aspect"
        y = tf.image.resize(x, (height, width), method, keep, antialias)
        aspect = ", preserve_aspect_ratio=True" if keep else ""
        call = f"tf.image.resize(x, ({height}, {width}){extra}{aspect})"
    y = y.numpy()
    notes = []
    if y.dtype != x.dtype:
        notes.append(f"tf.image.resize returns {y.dtype.name}, values on the same scale as before")
    shrink = max(x.shape[0] / max(y.shape[0], 1), x.shape[1] / max(y.shape[1], 1))
    if shrink > 2 and method in ("bilinear", "bicubic") and not antialias:
        notes.append(
            f"shrunk {shrink:.1f}× without antialias: most pixels are skipped (aliasing); "
            "antialias=True or method='area' averages them"
        )
    if fit == "stretch" and y.shape[0] * x.shape[1] != y.shape[1] * x.shape[0]:
        notes.append("the aspect ratio changed: shapes are stretched")
    return Applied(y, call, "; ".join(notes))


def _central_crop(x, *, central_fraction) -> Applied:
    y = tf.image.central_crop(x, central_fraction).numpy()
    return Applied(y, f"tf.image.central_crop(x, central_fraction={_num(central_fraction)})")


def _check_box(x, offset_height, offset_width, target_height, target_width, crop: bool) -> None:
    height, width = x.shape[:2]
    for axis, offset, target, side in (
        ("height", offset_height, target_height, height),
        ("width", offset_width, target_width, width),
    ):
        if crop and offset + target > side:
            raise ValueError(
                f"crop_to_box: offset_{axis} + target_{axis} must be at most the image {axis} "
                f"{side}. Received: {offset} + {target} = {offset + target}"
            )
        if not crop and target < offset + side:
            raise ValueError(
                f"pad_to_box: target_{axis} must be at least offset_{axis} + the image {axis} "
                f"= {offset} + {side} = {offset + side}. Received: target_{axis}={target}"
            )


def _crop_to_box(x, *, offset_height, offset_width, target_height, target_width) -> Applied:
    _check_box(x, offset_height, offset_width, target_height, target_width, crop=True)
    args = (offset_height, offset_width, target_height, target_width)
    y = tf.image.crop_to_bounding_box(x, *args).numpy()
    return Applied(y, f"tf.image.crop_to_bounding_box(x, {', '.join(map(str, args))})")


def _pad_to_box(x, *, offset_height, offset_width, target_height, target_width) -> Applied:
    _check_box(x, offset_height, offset_width, target_height, target_width, crop=False)
    args = (offset_height, offset_width, target_height, target_width)
    y = tf.image.pad_to_bounding_box(x, *args).numpy()
    return Applied(
        y, f"tf.image.pad_to_bounding_box(x, {', '.join(map(str, args))})", "padding is zeros"
    )


def _crop_or_pad(x, *, target_height, target_width) -> Applied:
    y = tf.image.resize_with_crop_or_pad(x, target_height, target_width).numpy()
    call = f"tf.image.resize_with_crop_or_pad(x, {target_height}, {target_width})"
    return Applied(y, call, "crops the centre, or pads evenly with zeros")


def _flip_left_right(x) -> Applied:
    return Applied(tf.image.flip_left_right(x).numpy(), "tf.image.flip_left_right(x)")


def _flip_up_down(x) -> Applied:
    return Applied(tf.image.flip_up_down(x).numpy(), "tf.image.flip_up_down(x)")


def _rot90(x, *, k) -> Applied:
    return Applied(tf.image.rot90(x, k).numpy(), f"tf.image.rot90(x, k={k})", "counter-clockwise")


def _grayscale(x) -> Applied:
    _needs_channels(x, (3,), "tf.image.rgb_to_grayscale")
    y = tf.image.rgb_to_grayscale(x).numpy()
    return Applied(y, "tf.image.rgb_to_grayscale(x)", "0.2989 R + 0.5870 G + 0.1140 B: 1 channel")


def _grayscale_to_rgb(x) -> Applied:
    _needs_channels(x, (1,), "tf.image.grayscale_to_rgb")
    y = tf.image.grayscale_to_rgb(tf.constant(x)).numpy()
    return Applied(y, "tf.image.grayscale_to_rgb(x)", "the gray channel three times")


def _largest(x: np.ndarray) -> float:
    """The largest finite |value| of `x`, 0 if none."""
    finite = _finite_values(x)
    return max(-float(finite.min()), float(finite.max())) if finite.size else 0.0


def _float_scale_note(x: np.ndarray, what: str) -> str:
    """A caution when a [0, 1] adjustment meets float values on the 0–255 scale."""
    if _is_float(x) and _largest(x) > 2:
        return f"{what} assumes floats in [0, 1]; on 0–255 values it is almost invisible"
    return ""


def _brightness(x, *, delta) -> Applied:
    y = tf.image.adjust_brightness(x, delta).numpy()
    note = _float_scale_note(x, "delta") or (
        "uint8 is converted to [0, 1], shifted, then clipped back" if x.dtype == np.uint8 else ""
    )
    return Applied(y, f"tf.image.adjust_brightness(x, delta={_num(delta)})", note)


def _contrast(x, *, contrast_factor) -> Applied:
    y = tf.image.adjust_contrast(x, contrast_factor).numpy()
    call = f"tf.image.adjust_contrast(x, contrast_factor={_num(contrast_factor)})"
    return Applied(y, call, "(x − mean) · factor + mean, per channel")


def _saturation(x, *, saturation_factor) -> Applied:
    _needs_channels(x, (3,), "tf.image.adjust_saturation")
    y = tf.image.adjust_saturation(x, saturation_factor).numpy()
    call = f"tf.image.adjust_saturation(x, saturation_factor={_num(saturation_factor)})"
    return Applied(y, call, "in HSV: S · factor")


def _hue(x, *, delta) -> Applied:
    _needs_channels(x, (3,), "tf.image.adjust_hue")
    y = tf.image.adjust_hue(x, delta).numpy()
    return Applied(y, f"tf.image.adjust_hue(x, delta={_num(delta)})", "in HSV: H + delta, wrapped")


def _gamma(x, *, gamma, gain) -> Applied:
    if x.dtype.name in _DTYPE_MAX:
        # Each of the dtype's values through TensorFlow's own call, then looked up: the same
        # numbers, without tf.pow's slow CPU kernel (13 ms on a 768×576 working copy).
        values = np.arange(_DTYPE_MAX[x.dtype.name] + 1, dtype=x.dtype)
        y = tf.image.adjust_gamma(values, gamma, gain).numpy()[x]
    else:
        y = tf.image.adjust_gamma(x, gamma, gain).numpy()
    note = _float_scale_note(x, "gamma")
    if _is_float(x) and np.any(x < 0) and gamma != int(gamma):
        note = "a negative value to a fractional power is NaN (drawn magenta)"
    return Applied(y, f"tf.image.adjust_gamma(x, gamma={_num(gamma)}, gain={_num(gain)})", note)


def _jpeg_quality(x, *, jpeg_quality) -> Applied:
    _needs_channels(x, (1, 3), "tf.image.adjust_jpeg_quality")
    y = tf.image.adjust_jpeg_quality(x, jpeg_quality).numpy()
    as_uint8 = tf.image.convert_image_dtype(x, tf.uint8, saturate=True)
    size = len(tf.io.encode_jpeg(as_uint8, quality=jpeg_quality).numpy())
    call = f"tf.image.adjust_jpeg_quality(x, jpeg_quality={jpeg_quality})"
    note = f"encoded as a JPEG of {size:,} bytes and decoded again"
    finite = _finite_values(x)
    if _is_float(x) and finite.size and (finite.min() < 0 or finite.max() > 1):
        # convert_image_dtype saturates: a float image on the 0–255 scale comes back all white.
        note += "; floats are taken as [0, 1], so values outside it were clipped"
    return Applied(y, call, note, size)


def _cast(x, *, dtype) -> Applied:
    y = tf.cast(x, dtype).numpy()
    notes = []
    if dtype in _DTYPE_MAX and _is_float(x):
        finite = _finite_values(x)
        if finite.size and (finite.min() < 0 or finite.max() > _DTYPE_MAX[dtype]):
            notes.append(
                f"tf.cast neither scales nor clips: values outside 0–{_DTYPE_MAX[dtype]} wrap"
            )
        elif finite.size and finite.max() <= 1:
            notes.append(
                f"values in [0, 1] cast to {dtype} become 0 or 1 (black): "
                "tf.image.convert_image_dtype scales them"
            )
    if dtype == "float16" and _is_float(x) and x.dtype != np.float16:
        notes.append("float16 keeps about 3 significant digits")
    return Applied(y, f"tf.cast(x, tf.{dtype})", "; ".join(notes))


def _convert_dtype(x, *, dtype, saturate) -> Applied:
    y = tf.image.convert_image_dtype(x, dtype, saturate=saturate).numpy()
    call = f"tf.image.convert_image_dtype(x, tf.{dtype}" + (", saturate=True)" if saturate else ")")
    if _is_float(x) and dtype != "float32":
        note = f"floats are assumed in [0, 1] and multiplied by {_DTYPE_MAX[dtype]}"
    elif not _is_float(x) and dtype == "float32":
        note = f"scaled to [0, 1]: divided by {_DTYPE_MAX[x.dtype.name]}"
    elif not _is_float(x):
        note = "rescaled between integer ranges"
    else:
        note = "float to float: the values are not changed"
    return Applied(y, call, note)


def _clip(x, *, clip_value_min, clip_value_max) -> Applied:
    if clip_value_min > clip_value_max:
        raise ValueError(
            f"clip.clip_value_min must be at most clip_value_max. Received: "
            f"clip_value_min={clip_value_min}, clip_value_max={clip_value_max}"
        )
    f, cast = _as_float(x)
    y = tf.clip_by_value(f, clip_value_min, clip_value_max).numpy()
    call = f"tf.clip_by_value({cast}, {_num(clip_value_min)}, {_num(clip_value_max)})"
    return Applied(y, call)


# --- Normalization -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Normalization:
    """One way to scale pixel values for a network.

    Attributes:
        title: Its name on the page, e.g. `"[−1, 1]"`.
        why: One line on why a network wants it.
    """

    title: str
    why: str


NORMALIZATIONS = {
    "unit": Normalization(
        "[0, 1]",
        "x / 255: small, positive inputs, the usual default (keras.layers.Rescaling(1 / 255)).",
    ),
    "symmetric": Normalization(
        "[−1, 1]",
        "x / 127.5 − 1: centred on zero, as MobileNet, Inception and EfficientNet-Lite were "
        "trained; the first layer's gradients no longer all share one sign.",
    ),
    "per_image": Normalization(
        "per-image standardization",
        "Each image to mean 0 and standard deviation 1: the differences in exposure and "
        "contrast between photos are gone before the network sees them.",
    ),
    "imagenet": Normalization(
        "ImageNet mean/std",
        "(x / 255 − mean) / std per channel, with ImageNet's statistics: what a pretrained "
        "ResNet (torchvision-style) saw in training; feed it the same.",
    ),
}
RAW = Normalization(
    "uint8 0–255",
    "tf.cast only: inputs in the hundreds make activations and gradients hundreds of times "
    "larger; a learning rate that suits [0, 1] makes the first step overshoot.",
)


def normalize(x: np.ndarray, mode: str, max_value: float = 255.0) -> Applied:
    """Scales pixel values as a network expects them.

    Args:
        x: Array `(height, width, channels)`, any dtype.
        mode: One of `NORMALIZATIONS`: `"unit"` (x / max_value), `"symmetric"`
            (x / (max_value / 2) − 1), `"per_image"` (`tf.image.per_image_standardization`) or
            `"imagenet"` ((x / max_value − mean) / std, 3 channels only).
        max_value: The value of white: 255 for 8-bit images, 65535 for 16-bit. Defaults to 255.

    Returns:
        `Applied` with float32 `x` of the same shape.
    """
    if mode not in NORMALIZATIONS:
        raise ValueError(f"mode must be one of {list(NORMALIZATIONS)}. Received: mode={mode!r}")
    max_value = check_number("normalize.max_value", max_value, 1e-6, MAX_ABS_PARAM)
    if mode == "per_image":
        y = tf.image.per_image_standardization(x).numpy()
        return Applied(y, "tf.image.per_image_standardization(x)", "mean 0, std 1 per image")
    f, cast = _as_float(x)
    t = tf.constant(f)
    if mode == "unit":
        y, call = t / max_value, f"{cast} / {_num(max_value)}"
    elif mode == "symmetric":
        half = max_value / 2
        y, call = t / half - 1.0, f"{cast} / {_num(half)} - 1.0"
    else:
        _needs_channels(x, (3,), "ImageNet normalization")
        y = (t / max_value - list(IMAGENET_MEAN)) / list(IMAGENET_STD)
        call = f"({cast} / {_num(max_value)} - {list(IMAGENET_MEAN)}) / {list(IMAGENET_STD)}"
    note = ""
    if _is_float(x) and _largest(x) <= 1:
        note = f"x was already in [0, 1]: dividing by {_num(max_value)} again makes it almost black"
    return Applied(y.numpy(), call, note)


def _normalize(x, *, mode, max_value) -> Applied:
    return normalize(x, mode, max_value)


# --- The operations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """A pipeline step.

    Attributes:
        title: Its name on the page.
        tf_function: The TensorFlow function it calls.
        params: Its parameters, with defaults and ranges.
        apply: `apply(x, **params) -> Applied`.
    """

    title: str
    tf_function: str
    params: tuple[Param, ...]
    apply: Callable[..., Applied] = field(repr=False)


def _side(name: str, default: int, low: int = 1, doc: str = "") -> Param:
    return Param(name, default, low, MAX_SIDE, doc=doc or f"pixels, {low} to {MAX_SIDE}")


def _offset(name: str) -> Param:
    return Param(name, 0, 0, MAX_SIDE, doc="pixels from the top or left edge")


OPERATIONS: dict[str, Operation] = {
    "resize": Operation(
        "resize",
        "tf.image.resize",
        (
            _side("height", 224),
            _side("width", 224),
            Param("method", "bilinear", choices=RESIZE_METHODS, doc="interpolation"),
            Param(
                "fit",
                "stretch",
                choices=RESIZE_FITS,
                doc="stretch to the size; keep_aspect: fit inside it "
                "(preserve_aspect_ratio=True); pad: fit and pad (tf.image.resize_with_pad)",
            ),
            Param("antialias", False, doc="average the pixels a shrink skips"),
        ),
        _resize,
    ),
    "central_crop": Operation(
        "central crop",
        "tf.image.central_crop",
        (Param("central_fraction", 0.875, 0.01, 1.0, doc="the part of each side kept"),),
        _central_crop,
    ),
    "crop_to_box": Operation(
        "crop to box",
        "tf.image.crop_to_bounding_box",
        (
            _offset("offset_height"),
            _offset("offset_width"),
            _side("target_height", 224),
            _side("target_width", 224),
        ),
        _crop_to_box,
    ),
    "pad_to_box": Operation(
        "pad to box",
        "tf.image.pad_to_bounding_box",
        (
            _offset("offset_height"),
            _offset("offset_width"),
            _side("target_height", MAX_SIDE),
            _side("target_width", MAX_SIDE),
        ),
        _pad_to_box,
    ),
    "crop_or_pad": Operation(
        "crop or pad to a size",
        "tf.image.resize_with_crop_or_pad",
        (_side("target_height", 224), _side("target_width", 224)),
        _crop_or_pad,
    ),
    "flip_left_right": Operation(
        "flip left–right", "tf.image.flip_left_right", (), _flip_left_right
    ),
    "flip_up_down": Operation("flip up–down", "tf.image.flip_up_down", (), _flip_up_down),
    "rot90": Operation(
        "rotate 90°",
        "tf.image.rot90",
        (Param("k", 1, choices=(0, 1, 2, 3), doc="quarter turns counter-clockwise"),),
        _rot90,
    ),
    "grayscale": Operation("grayscale", "tf.image.rgb_to_grayscale", (), _grayscale),
    "grayscale_to_rgb": Operation(
        "gray to RGB", "tf.image.grayscale_to_rgb", (), _grayscale_to_rgb
    ),
    "brightness": Operation(
        "brightness",
        "tf.image.adjust_brightness",
        (Param("delta", 0.2, -1.0, 1.0, doc="added to every value in [0, 1] units"),),
        _brightness,
    ),
    "contrast": Operation(
        "contrast",
        "tf.image.adjust_contrast",
        (Param("contrast_factor", 1.5, 0.0, 5.0, doc="spread around each channel's mean"),),
        _contrast,
    ),
    "saturation": Operation(
        "saturation",
        "tf.image.adjust_saturation",
        (Param("saturation_factor", 1.5, 0.0, 5.0, doc="0: gray, 1: unchanged"),),
        _saturation,
    ),
    "hue": Operation(
        "hue",
        "tf.image.adjust_hue",
        (Param("delta", 0.1, -0.5, 0.5, doc="turn of the colour wheel: 0.5 is half a turn"),),
        _hue,
    ),
    "gamma": Operation(
        "gamma",
        "tf.image.adjust_gamma",
        (
            Param("gamma", 0.5, 0.05, 5.0, doc="< 1 brightens the shadows, > 1 darkens"),
            Param("gain", 1.0, 0.0, 5.0, doc="multiplies the result"),
        ),
        _gamma,
    ),
    "jpeg_quality": Operation(
        "JPEG quality",
        "tf.image.adjust_jpeg_quality",
        (Param("jpeg_quality", 30, 0, 100, doc="0 (worst) to 100"),),
        _jpeg_quality,
    ),
    "cast": Operation(
        "cast",
        "tf.cast",
        (Param("dtype", "float32", choices=CAST_DTYPES, doc="no scaling, no clipping"),),
        _cast,
    ),
    "convert_dtype": Operation(
        "convert dtype",
        "tf.image.convert_image_dtype",
        (
            Param("dtype", "float32", choices=CONVERT_DTYPES, doc="scales between ranges"),
            Param("saturate", False, doc="clip before converting to an integer type"),
        ),
        _convert_dtype,
    ),
    "normalize": Operation(
        "normalize",
        "arithmetic, or tf.image.per_image_standardization",
        (
            Param("mode", "unit", choices=tuple(NORMALIZATIONS), doc="see NORMALIZATIONS"),
            Param("max_value", 255.0, 1e-6, MAX_ABS_PARAM, doc="white: 255, or 65535 for 16 bits"),
        ),
        _normalize,
    ),
    "clip": Operation(
        "clip",
        "tf.clip_by_value",
        (
            Param("clip_value_min", 0.0, -MAX_ABS_PARAM, MAX_ABS_PARAM),
            Param("clip_value_max", 1.0, -MAX_ABS_PARAM, MAX_ABS_PARAM),
        ),
        _clip,
    ),
    "batch": Operation("batch", "tf.expand_dims", (), lambda x: Applied(x, "tf.expand_dims(x, 0)")),
}


def apply(x: np.ndarray, op: str, **params) -> Applied:
    """Runs one operation of `OPERATIONS` on an image.

    Args:
        x: Array `(height, width, channels)`.
        op: A key of `OPERATIONS`.
        **params: Its parameters; missing ones take their defaults.

    Returns:
        `Applied`: the result, the TensorFlow call, a note.

    Raises:
        ValueError: an unknown op or parameter, a value out of range, or an image the step
            cannot take (the message names the step, the value and the rule).
    """
    if op not in OPERATIONS:
        raise ValueError(f"op must be one of {list(OPERATIONS)}. Received: op={op!r}")
    operation = OPERATIONS[op]
    checked = check_params(op, operation.params, params)
    try:
        return operation.apply(x, **checked)
    except (tf.errors.OpError, TypeError) as exc:  # what TensorFlow refused, said as it says it
        message = getattr(exc, "message", str(exc)).split("[Op:")[0].strip()
        raise ValueError(f"{operation.tf_function}: {message}") from None


# --- Decoding and the pipeline -----------------------------------------------------------------


def decode(
    native: np.ndarray,
    file: ImageFile,
    *,
    channels: int = 0,
    dtype: str = "uint8",
    apply_exif: bool = False,
) -> Applied:
    """What `tf.io.decode_image(data, channels, dtype, expand_animations=False)` returns.

    Args:
        native: The file's pixels as `models.images.decode_image` keeps them (`native`): uint8,
            or uint16 for a 16-bit grayscale file, `(height, width, file.tf_channels)`.
        file: The file's `ImageFile`.
        channels: 0 (as in the file), 1, 3 or 4, as TensorFlow converts: gray is
            0.299 R + 0.587 G + 0.114 B, alpha is dropped, not blended. Defaults to 0.
        dtype: `"uint8"` (16-bit values keep their high byte), `"uint16"` (8-bit values × 257
            for a PNG, × 256 otherwise, as TensorFlow does) or `"float32"` (scaled to [0, 1]).
            Defaults to `"uint8"`.
        apply_exif: Turn the pixels upright by the file's EXIF orientation with `tf.image`
            calls, which TensorFlow's decoder never does. Defaults to False.

    Returns:
        `Applied` with the decoded array.
    """
    if channels not in DECODE_CHANNELS:
        raise ValueError(f"channels must be one of {DECODE_CHANNELS}. Received: {channels=}")
    if dtype not in DECODE_DTYPES:
        raise ValueError(f"dtype must be one of {DECODE_DTYPES}. Received: {dtype=}")
    x = _convert_channels(native, channels)
    if dtype == "float32":
        x = x.astype(np.float32) * np.float32(1 / _DTYPE_MAX[x.dtype.name])
    elif dtype == "uint8" and x.dtype == np.uint16:
        x = (x >> 8).astype(np.uint8)
    elif dtype == "uint16" and x.dtype == np.uint8:
        # libpng widens 8-bit samples exactly (× 257); other formats go through
        # convert_image_dtype, which shifts (× 256).
        x = x.astype(np.uint16) * np.uint16(257 if file.format == "PNG" else 256)
    args = ["data"] + [f"channels={channels}"] * (channels != 0)
    args += [f"dtype=tf.{dtype}"] * (dtype != "uint8") + ["expand_animations=False"]
    call = f"tf.io.decode_image({', '.join(args)})"
    if apply_exif:
        x = orient(x, file.orientation)
        call = ORIENTATIONS[file.orientation][1].format(x=call)
    notes = decode_notes(file, channels, dtype, apply_exif)
    return Applied(np.ascontiguousarray(x), call, "; ".join(notes))


def _convert_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """TensorFlow's channel conversions: gray by Rec. 601 weights, alpha dropped or made opaque."""
    have = x.shape[-1]
    if channels in (0, have):
        return x
    gray = x[..., :1] if have <= 2 else _luma(x[..., :3])
    if channels == 1:
        return gray
    rgb = np.repeat(gray, 3, axis=-1) if have <= 2 else x[..., :3]
    if channels == 3:
        return rgb
    alpha = x[..., 1:2] if have == 2 else np.full_like(gray, np.iinfo(x.dtype).max)
    return np.concatenate([rgb, alpha], axis=-1)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 1) gray of integer RGB, rounded as libjpeg and libpng round it."""
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    return np.rint(rgb.astype(np.float32) @ weights)[..., np.newaxis].astype(rgb.dtype)


def decode_notes(
    file: ImageFile, channels: int = 0, dtype: str = "uint8", apply_exif: bool = False
) -> list[str]:
    """What a student should know about decoding this file with these `decode` options."""
    notes = []
    if file.orientation != 1 and not apply_exif:
        notes.append(
            f"EXIF orientation {file.orientation} ({ORIENTATIONS[file.orientation][0]}) is "
            "ignored by tf.io.decode_image: the pixels come out as stored"
        )
    if file.format in ("GIF", "WEBP"):
        notes.append(
            f"expand_animations=False gives the first frame; without it a {file.format} is "
            f"{list(file.tf_shape)} (frames first)"
        )
    if file.bit_depth == 16:
        if dtype == "uint8":
            notes.append("16-bit file: uint8 keeps the high byte (dtype=tf.uint16 keeps all 16)")
        if file.tf_channels != 1:
            notes.append("16-bit colour is read at 8 bits here (Pillow's limit)")
    if file.mode == "CMYK":
        notes.append("CMYK converted to RGB by the decoder")
    if file.mode == "P" and file.format != "BMP":
        notes.append("palette looked up: each index becomes its colour")
    if file.format == "BMP" and file.tf_channels == 1 and file.mode == "P":
        notes.append("an 8-bit BMP decodes to its palette indices, not colours")
    if file.format == "GIF" and file.has_alpha:
        notes.append("transparent GIF pixels come out black")
    if file.tf_channels in (2, 4) and channels in (1, 3):
        notes.append("alpha dropped, not blended: transparent pixels show their hidden colour")
    return notes


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline, done.

    Attributes:
        op: `"decode"` or a key of `OPERATIONS`.
        call: The TensorFlow expression that made `x` from the previous stage's `x`.
        x: The result, numpy `(height, width, channels)`.
        batched: Whether a batch axis was added (`shape` then starts with 1).
        note: What to notice; empty if nothing.
        jpeg_bytes: `jpeg_quality` only: the size of the JPEG.
    """

    op: str
    call: str
    x: np.ndarray
    batched: bool = False
    note: str = ""
    jpeg_bytes: int | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return (1, *self.x.shape) if self.batched else tuple(self.x.shape)


def run_pipeline(
    native: np.ndarray,
    file: ImageFile,
    steps: Sequence[tuple[str, Mapping[str, object]]],
    *,
    channels: int = 0,
    dtype: str = "uint8",
    apply_exif: bool = False,
) -> list[Stage]:
    """Decodes an image and runs the steps on it, keeping every intermediate result.

    Args:
        native: The file's `native` pixels (see `decode`).
        file: The file's `ImageFile`.
        steps: `(op, params)` pairs, ops from `OPERATIONS`, at most `MAX_STEPS`; `"batch"`
            may only come last.
        channels: The decode's `channels` (see `decode`). Defaults to 0.
        dtype: The decode's `dtype`. Defaults to `"uint8"`.
        apply_exif: The decode's `apply_exif`. Defaults to False.

    Returns:
        One `Stage` for the decode, then one per step.

    Raises:
        StepError: a step that cannot run; its `index` is 1 for the first step.
    """
    if len(steps) > MAX_STEPS:
        raise ValueError(f"At most {MAX_STEPS} steps. Received: {len(steps)}")
    for i, (op, _) in enumerate(steps[:-1], start=1):
        if op == "batch":
            raise StepError(i, f"steps[{i - 1}]: batch adds the batch axis, so it comes last")
    done = decode(native, file, channels=channels, dtype=dtype, apply_exif=apply_exif)
    stages = [Stage("decode", done.call, done.x, note=done.note)]
    for i, (op, params) in enumerate(steps, start=1):
        try:
            done = apply(stages[-1].x, op, **params)
        except ValueError as exc:
            raise StepError(i, f"steps[{i - 1}] ({op}): {exc}") from None
        batched = op == "batch"
        stages.append(Stage(op, done.call, done.x, batched, done.note, done.jpeg_bytes))
    return stages


def snippet(stages: Sequence[Stage], file_name: str) -> str:
    """The pipeline as a short runnable TensorFlow program.

    Args:
        stages: What `run_pipeline` returned.
        file_name: The image file the program reads.

    Returns:
        Python source: read, one line per step with its shape and dtype, a print.
    """
    lines = ["import tensorflow as tf", "", f'data = tf.io.read_file("{file_name}")']
    for stage in stages:
        lines.append(f"x = {stage.call}  # {tuple(stage.shape)} {stage.x.dtype.name}")
    lines.append("print(x.shape, x.dtype, float(tf.reduce_min(x)), float(tf.reduce_max(x)))")
    return "\n".join(lines) + "\n"


# --- Inspection and pictures -------------------------------------------------------------------


@dataclass(frozen=True)
class Display:
    """How values map to grey levels: `"sequential"` maps [low, high] to black…white;
    `"diverging"` maps [−high, high] with zero as mid-grey (low = −high)."""

    kind: str
    low: float
    high: float


@dataclass(frozen=True)
class ChannelStats:
    name: str
    min: float
    max: float
    mean: float
    std: float


@dataclass(frozen=True)
class Inspection:
    """What a student reads about an array.

    Attributes:
        channels: Per-channel min, max, mean and std of the finite values.
        non_finite: How many values are NaN or infinite.
        display: The scale `render` draws with and the histograms span.
        histogram_low: The left edge of the first bin.
        histogram_high: The right edge of the last bin.
        histograms: `(channels, bins)` counts; integer dtypes get whole-number bins.
    """

    channels: tuple[ChannelStats, ...]
    non_finite: int
    display: Display
    histogram_low: float
    histogram_high: float
    histograms: np.ndarray


def display_range(x: np.ndarray) -> Display:
    """The scale to draw `x` on, chosen from its dtype and values.

    Integers span their dtype (uint8 0–255, uint16 0–65535). Non-negative floats span [0, 1],
    [0, 255] or [0, 65535], the smallest that holds them (or their maximum); floats with
    negative values get a diverging scale, ±1 or ±their largest magnitude, zero in the middle.

    Args:
        x: Array `(height, width, channels)`.

    Returns:
        A `Display`.
    """
    if x.dtype.name in _DTYPE_MAX:
        return Display("sequential", 0.0, float(_DTYPE_MAX[x.dtype.name]))
    finite = _finite_values(x)
    if finite.size == 0:
        return Display("sequential", 0.0, 1.0)
    low, high = float(finite.min()), float(finite.max())
    if low < 0:
        reach = max(-low, high)
        reach = 1.0 if reach <= 1 else reach
        return Display("diverging", -reach, reach)
    top = next((t for t in (1.0, 255.0, 65535.0) if high <= t), high)
    return Display("sequential", 0.0, top)


def _finite_values(x: np.ndarray) -> np.ndarray:
    """`x` itself if every value is finite (the usual case, and cheap to check), else a copy of
    its finite values, flattened."""
    if not _is_float(x) or np.isfinite(x).all():
        return x
    return x[np.isfinite(x)]


def inspect(x: np.ndarray, bins: int = 64) -> Inspection:
    """Per-channel statistics and histograms of an image array.

    Args:
        x: Array `(height, width, channels)`, any dtype; NaN and infinities are counted, not
            summed.
        bins: Histogram bins per channel, one of `HISTOGRAM_BINS`. Defaults to 64.

    Returns:
        An `Inspection`.
    """
    if bins not in HISTOGRAM_BINS:
        raise ValueError(f"bins must be one of {HISTOGRAM_BINS}. Received: {bins=}")
    display = display_range(x)
    channels = x.shape[-1]
    names = _CHANNEL_NAMES.get(channels, tuple(str(c) for c in range(channels)))
    integer = x.dtype.name in _DTYPE_MAX
    rows = np.ascontiguousarray(
        np.moveaxis(x, -1, 0).reshape(channels, -1), None if integer else np.float32
    )
    finite = None if integer or np.isfinite(rows).all() else np.isfinite(rows)
    stats = []
    for name, c in zip(names, range(channels), strict=True):
        values = rows[c] if finite is None else rows[c][finite[c]]
        if values.size == 0:
            stats.append(ChannelStats(name, 0.0, 0.0, 0.0, 0.0))
            continue
        # numpy's defaults: float64 sums for integers, pairwise float32 sums for float32.
        mean, std = float(values.mean()), float(values.std())
        stats.append(ChannelStats(name, float(values.min()), float(values.max()), mean, std))
    low, high = display.low, display.high
    if integer:
        high += 1  # whole numbers: bin i holds exactly the values i·w … (i+1)·w − 1
        shift = int(math.log2((high - low) / bins))
        counts = [np.bincount(row >> shift, minlength=bins) for row in rows]
        histograms = np.stack(counts).astype(np.int64)
    else:
        if high == low:
            high = low + 1.0
        index = (rows - np.float32(low)) * np.float32(bins / (high - low))
        if finite is not None:
            index[~finite] = -1.0  # counted nowhere: their weight is 0 below
        np.clip(index, 0, bins - 1, out=index)
        index = index.astype(np.intp)  # what bincount counts in: no second conversion
        index += (np.arange(channels, dtype=np.intp) * bins)[:, np.newaxis]
        weights = None if finite is None else finite.ravel()
        counts = np.bincount(index.ravel(), weights, minlength=bins * channels)
        histograms = counts.reshape(channels, bins).astype(np.int64)
    non_finite = 0 if finite is None else int(finite.size - np.count_nonzero(finite))
    return Inspection(tuple(stats), non_finite, display, low, high, histograms)


def render(x: np.ndarray, display: Display | None = None) -> np.ndarray:
    """Draws an image array as 8-bit pixels a browser can show.

    Values map linearly by `display` (`display_range(x)` if not given): a diverging display
    puts zero at mid-grey, so an image normalized to [−1, 1] looks like itself rather than
    black. NaN and infinities are drawn magenta (`NAN_COLOR`).

    Args:
        x: Array `(height, width, channels)`, channels 1 (gray), 2 (gray, alpha), 3 (RGB) or 4
            (RGBA).
        display: The scale. Defaults to `display_range(x)`.

    Returns:
        uint8 `(height, width, 3)`, or `(height, width, 4)` when `x` has alpha.
    """
    display = display or display_range(x)
    if x.dtype == np.uint8 and (display.kind, display.low, display.high) == ("sequential", 0, 255):
        pixels, bad = x, None  # already what a browser shows
    else:
        if display.kind == "diverging":
            scale, offset = 127.5 / display.high, 127.5
        else:
            scale = 255 / (display.high - display.low)
            offset = -display.low * scale
        y = x.astype(np.float32) * np.float32(scale) + np.float32(offset)
        bad = None if np.isfinite(y).all() else ~np.isfinite(y)
        if bad is not None:
            y[bad] = 0
        pixels = np.clip(np.rint(y, out=y), 0, 255, out=y).astype(np.uint8)
    channels = x.shape[-1]
    if channels in (1, 2):
        pixels = np.concatenate([np.repeat(pixels[..., :1], 3, -1), pixels[..., 1:]], axis=-1)
        if bad is not None:
            bad = np.repeat(bad[..., :1], 3, -1) if channels == 1 else bad[..., [0, 0, 0, 1]]
    elif channels > 4:
        pixels = pixels[..., :3]
        bad = None if bad is None else bad[..., :3]
    if bad is not None:
        pixels = pixels.copy() if pixels is x else pixels
        marked = bad.any(axis=-1)
        pixels[marked, :3] = NAN_COLOR
        if pixels.shape[-1] == 4:
            pixels[marked, 3] = 255
    return np.ascontiguousarray(pixels)


def fit_within(height: int, width: int, side: int) -> tuple[int, int]:
    """`(height, width)` scaled so that the longer is `side`, aspect kept, neither below 1 (a
    1×8000 strip stays 1 pixel wide, where `preserve_aspect_ratio=True` would make it 0)."""
    scale = side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def thumbnail(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """uint8 pixels area-averaged so that neither side exceeds `max_side` (never enlarged)."""
    height, width = pixels.shape[:2]
    if max(height, width) <= max_side:
        return pixels
    height, width = fit_within(height, width, max_side)
    resized = Image.fromarray(pixels).resize(
        (width, height), Image.Resampling.BOX, reducing_gap=2.0
    )
    return np.asarray(resized)


def encode_png(pixels: np.ndarray) -> bytes:
    """uint8 `(height, width, 3 or 4)` pixels as a PNG, compressed fast rather than small."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


# --- Why normalize: the first step of a tiny network -------------------------------------------


@dataclass(frozen=True)
class GradientSize:
    """The first training step of a tiny network on one image.

    Attributes:
        input_abs_mean: Mean |value| of the network's input.
        preactivation_std: Std of the first layer's pre-activations.
        loss: The cross-entropy before the step.
        grad_norm: ‖∂loss/∂W1‖, the first layer's kernel gradient (L2 norm).
        update_ratio: learning rate · ‖∂loss/∂W1‖ / ‖W1‖: how far the first SGD step moves the
            weights, relative to their size; near or above 1 means the step overshoots.
    """

    input_abs_mean: float
    preactivation_std: float
    loss: float
    grad_norm: float
    update_ratio: float


def first_step_gradients(image: np.ndarray, seed: int = 0) -> dict[str, GradientSize]:
    """The size of a tiny network's first gradient with raw and with normalized inputs.

    The network: the image area-resized to 32×32×3, flattened → Dense(16, ReLU) → Dense(10),
    Glorot-uniform weights from `seed`, zero biases, cross-entropy against class 0, plain SGD
    at learning rate 0.01. Only the input's scaling changes between the rows.

    Args:
        image: RGB `(height, width, 3)` on the 0–255 scale (uint8 or float).
        seed: The weights' seed. Defaults to 0.

    Returns:
        `"raw"` and each key of `NORMALIZATIONS` → `GradientSize`.
    """
    _needs_channels(image, (3,), "first_step_gradients")
    small = tf.image.resize(tf.cast(image, tf.float32), (GRADIENT_SIDE, GRADIENT_SIDE), "area")
    small = small.numpy()
    inputs = {"raw": small} | {mode: normalize(small, mode).x for mode in NORMALIZATIONS}
    rng = np.random.default_rng(seed)
    fan_in = GRADIENT_SIDE * GRADIENT_SIDE * 3

    def glorot(n_in: int, n_out: int) -> tf.Tensor:
        limit = math.sqrt(6 / (n_in + n_out))
        return tf.constant(rng.uniform(-limit, limit, (n_in, n_out)), tf.float32)

    w1, w2 = glorot(fan_in, GRADIENT_HIDDEN), glorot(GRADIENT_HIDDEN, GRADIENT_CLASSES)
    sizes = {}
    for name, x in inputs.items():
        flat = tf.reshape(tf.constant(x), (1, fan_in))
        with tf.GradientTape() as tape:
            tape.watch(w1)
            pre = flat @ w1
            logits = tf.nn.relu(pre) @ w2
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits([0], logits)[0]
        grad = tape.gradient(loss, w1)
        grad_norm = float(tf.norm(grad))
        sizes[name] = GradientSize(
            input_abs_mean=float(np.mean(np.abs(x))),
            preactivation_std=float(tf.math.reduce_std(pre)),
            loss=float(loss),
            grad_norm=grad_norm,
            update_ratio=GRADIENT_LEARNING_RATE * grad_norm / float(tf.norm(w1)),
        )
    return sizes


# --- Augmentation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Augmentation:
    """A random augmentation, replayable from its seed.

    Attributes:
        title: Its name on the page.
        tf_function: The `tf.image.stateless_random_*` function it calls.
        params: Its parameters (the ranges it draws from).
        draw: `draw(seed, shape, **params) -> dict`: the values the stateless function draws.
        apply: `apply(x, seed, **params) -> tf.Tensor`.
    """

    title: str
    tf_function: str
    params: tuple[Param, ...]
    draw: Callable[..., dict] = field(repr=False)
    apply: Callable[..., tf.Tensor] = field(repr=False)


def _uniform(seed, low, high, dtype=tf.float32) -> float:
    """The draw a stateless_random_* function makes: one uniform number in [low, high)."""
    return tf.random.stateless_uniform([], seed, low, high, dtype).numpy().item()


def _draw_crop(seed, shape, *, fraction) -> dict:
    size = _crop_size(shape, fraction)
    limit = np.array(shape) - np.array(size) + 1
    raw = tf.random.stateless_uniform([3], seed, maxval=np.iinfo(np.int32).max, dtype=tf.int32)
    offset = raw.numpy() % limit
    return {"offset_height": int(offset[0]), "offset_width": int(offset[1]), "size": list(size)}


def _crop_size(shape, fraction) -> tuple[int, int, int]:
    return (max(1, round(shape[0] * fraction)), max(1, round(shape[1] * fraction)), shape[2])


def _ordered(low_name: str, high_name: str) -> Callable:
    """Checks that a range's ends are in order, as the stateless functions require."""

    def check(name: str, params: dict) -> None:
        if params[low_name] >= params[high_name]:
            raise ValueError(
                f"{name}.{low_name} must be below {name}.{high_name}. Received: "
                f"{low_name}={params[low_name]}, {high_name}={params[high_name]}"
            )

    return check


def _shifted(what: str, default: float, high: float) -> Augmentation:
    """`tf.image.stateless_random_<what>` adding a delta drawn in [−max_delta, max_delta)."""
    name = f"stateless_random_{what}"
    op = getattr(tf.image, name)
    return Augmentation(
        f"random {what}",
        f"tf.image.{name}",
        (Param("max_delta", default, 0.0, high, doc="delta drawn in [−max_delta, max_delta)"),),
        lambda seed, shape, max_delta: {"delta": _uniform(seed, -max_delta, max_delta)},
        lambda x, seed, max_delta: op(x, max_delta, seed),
    )


def _scaled(what: str) -> Augmentation:
    """`tf.image.stateless_random_<what>` scaling by a factor drawn in [lower, upper)."""
    name = f"stateless_random_{what}"
    op = getattr(tf.image, name)
    return Augmentation(
        f"random {what}",
        f"tf.image.{name}",
        (Param("lower", 0.7, 0.0, 5.0), Param("upper", 1.3, 0.0, 5.0)),
        lambda seed, shape, lower, upper: {f"{what}_factor": _uniform(seed, lower, upper)},
        lambda x, seed, lower, upper: op(x, lower, upper, seed),
    )


AUGMENTATIONS: dict[str, Augmentation] = {
    "crop": Augmentation(
        "random crop",
        "tf.image.stateless_random_crop",
        (Param("fraction", 0.8, 0.1, 1.0, doc="the part of each side kept"),),
        _draw_crop,
        lambda x, seed, fraction: tf.image.stateless_random_crop(
            x, _crop_size(x.shape, fraction), seed
        ),
    ),
    "flip_left_right": Augmentation(
        "random flip left–right",
        "tf.image.stateless_random_flip_left_right",
        (),
        lambda seed, shape: {"flipped": _uniform(seed, 0.0, 1.0) < 0.5},
        tf.image.stateless_random_flip_left_right,
    ),
    "flip_up_down": Augmentation(
        "random flip up–down",
        "tf.image.stateless_random_flip_up_down",
        (),
        lambda seed, shape: {"flipped": _uniform(seed, 0.0, 1.0) < 0.5},
        tf.image.stateless_random_flip_up_down,
    ),
    "brightness": _shifted("brightness", 0.2, 1.0),
    "contrast": _scaled("contrast"),
    "saturation": _scaled("saturation"),
    "hue": _shifted("hue", 0.05, 0.5),
    "jpeg_quality": Augmentation(
        "random JPEG quality",
        "tf.image.stateless_random_jpeg_quality",
        (Param("min_jpeg_quality", 50, 0, 100), Param("max_jpeg_quality", 95, 0, 100)),
        lambda seed, shape, min_jpeg_quality, max_jpeg_quality: {
            "jpeg_quality": _uniform(seed, min_jpeg_quality, max_jpeg_quality, tf.int32)
        },
        lambda x, seed, min_jpeg_quality, max_jpeg_quality: tf.image.stateless_random_jpeg_quality(
            x, min_jpeg_quality, max_jpeg_quality, seed
        ),
    ),
}
_RANGE_CHECKS = {
    "contrast": _ordered("lower", "upper"),
    "saturation": _ordered("lower", "upper"),
    "jpeg_quality": _ordered("min_jpeg_quality", "max_jpeg_quality"),
}
MAX_AUGMENTED = 16
MAX_SEED = 2**31 - 1


def check_augmentation(name: str, params: Mapping[str, object]) -> dict:
    """The parameters of one augmentation, with defaults, checked (Keras-style ValueError)."""
    if name not in AUGMENTATIONS:
        raise ValueError(f"op must be one of {list(AUGMENTATIONS)}. Received: op={name!r}")
    checked = check_params(name, AUGMENTATIONS[name].params, params)
    if name in _RANGE_CHECKS:
        _RANGE_CHECKS[name](name, checked)
    return checked


@dataclass(frozen=True)
class Draw:
    """One augmentation applied to one image.

    Attributes:
        op: A key of `AUGMENTATIONS`.
        seed: The `(int, int)` seed it was given.
        call: The stateless call, seed included.
        drawn: The random values it drew, e.g. `{"delta": 0.137}`.
    """

    op: str
    seed: tuple[int, int]
    call: str
    drawn: dict


@dataclass(frozen=True)
class Augmented:
    """One image of an augmented batch.

    Attributes:
        x: float32 `(height, width, 3)` in [0, 1].
        seed: Its seed, `(seed, index)`.
        draws: What each augmentation drew, in order.
    """

    x: np.ndarray
    seed: tuple[int, int]
    draws: tuple[Draw, ...]


def augment(
    image: np.ndarray,
    augmentations: Sequence[tuple[str, Mapping[str, object]]],
    *,
    seed: int = 0,
    count: int = 8,
) -> list[Augmented]:
    """A batch of random augmentations of one image, the same for the same seed.

    Image `i` is seeded `(seed, i)`; its augmentations get the seeds
    `tf.random.split((seed, i), len(augmentations))`, in order, and the result is clipped to
    [0, 1]. Each draw is computed as its `tf.image.stateless_random_*` function computes it.

    Args:
        image: float32 `(height, width, 3)` in [0, 1].
        augmentations: `(name, params)` pairs, names from `AUGMENTATIONS`.
        seed: 0 to `MAX_SEED`. Defaults to 0.
        count: Images in the batch, 1 to `MAX_AUGMENTED`. Defaults to 8.

    Returns:
        `count` `Augmented` images.
    """
    seed = check_integer("seed", seed, 0, MAX_SEED)
    count = check_integer("count", count, 1, MAX_AUGMENTED)
    _needs_channels(image, (3,), "augment")
    checked = [(name, check_augmentation(name, params)) for name, params in augmentations]
    batch = []
    for i in range(count):
        x = tf.constant(image, tf.float32)
        seeds = tf.random.split((seed, i), max(len(checked), 1)).numpy()
        draws = []
        for (name, params), pair in zip(checked, seeds, strict=False):
            augmentation = AUGMENTATIONS[name]
            pair = (int(pair[0]), int(pair[1]))
            drawn = augmentation.draw(pair, tuple(x.shape), **params)
            call = f"{augmentation.tf_function}(x{_arguments(name, params, x.shape)}, seed={pair})"
            x = augmentation.apply(x, pair, **params)
            draws.append(Draw(name, pair, call, drawn))
        x = tf.clip_by_value(x, 0.0, 1.0)
        batch.append(Augmented(x.numpy(), (seed, i), tuple(draws)))
    return batch


def _arguments(name: str, params: Mapping[str, object], shape: tuple | None = None) -> str:
    """An augmentation's arguments after `x` in its call: the crop's size for an image of
    `shape`, or as an expression of `x.shape` if none is given."""
    if name != "crop":
        return "".join(f", {k}={_num(v)}" for k, v in params.items())
    if shape is not None:
        return f", size={_crop_size(tuple(shape), params['fraction'])}"
    fraction = _num(params["fraction"])
    return f", size=(round(x.shape[0] * {fraction}), round(x.shape[1] * {fraction}), 3)"


def augment_snippet(
    augmentations: Sequence[tuple[str, Mapping[str, object]]],
    *,
    seed: int,
    count: int,
    size: tuple[int, int],
    file_name: str,
) -> str:
    """The augmentation batch as a short runnable TensorFlow program.

    Args:
        augmentations: What `augment` was given.
        seed: Its seed.
        count: Its count.
        size: `(height, width)` the decoded image is area-resized to first.
        file_name: The image file the program reads.

    Returns:
        Python source whose `batch` is `augment`'s images, stacked.
    """
    checked = [(name, check_augmentation(name, params)) for name, params in augmentations]
    lines = [
        "import tensorflow as tf",
        "",
        "",
        "def augment(x, seed):",
        '    """x: float32 (height, width, 3) in [0, 1]; seed: two integers."""',
        f"    seeds = tf.random.split(seed, {max(len(checked), 1)})",
    ]
    for i, (name, params) in enumerate(checked):
        args = _arguments(name, params)
        lines.append(f"    x = {AUGMENTATIONS[name].tf_function}(x{args}, seed=seeds[{i}])")
    lines += [
        "    return tf.clip_by_value(x, 0.0, 1.0)",
        "",
        "",
        f'data = tf.io.read_file("{file_name}")',
        "image = tf.io.decode_image(data, channels=3, expand_animations=False)",
        "image = tf.image.convert_image_dtype(image, tf.float32)",
        f'image = tf.image.resize(image, {tuple(size)}, method="area")',
        f"batch = tf.stack([augment(image, ({seed}, i)) for i in range({count})])",
        "print(batch.shape)",
    ]
    return "\n".join(lines) + "\n"


# --- Generated sample files --------------------------------------------------------------------

SAMPLE_FILES = {
    "photo": "Photo (JPEG)",
    "phone_photo": "Phone photo, EXIF orientation 6 (JPEG)",
    "cmyk": "Print file (JPEG, CMYK)",
    "logo": "Logo with transparency (PNG, RGBA)",
    "palette": "16-colour palette (PNG, P)",
    "gray": "Grayscale (PNG, L)",
    "gray16": "16-bit grayscale (PNG, I;16)",
    "animation": "Animation, 6 frames (GIF)",
    "bitmap": "Bitmap (BMP)",
    "webp": "WebP",
}
SAMPLE_SIZE = (384, 256)  # width, height of the landscape samples


@functools.cache
def sample_file(name: str) -> bytes:
    """A generated image file of the lab, in the format its name says (`SAMPLE_FILES`).

    Args:
        name: One of `SAMPLE_FILES`.

    Returns:
        The file's bytes, the same on every call.
    """
    if name not in SAMPLE_FILES:
        raise ValueError(f"name must be one of {list(SAMPLE_FILES)}. Received: name={name!r}")
    buf = io.BytesIO()
    scene = _scene(SAMPLE_SIZE)
    if name == "photo":
        scene.save(buf, "JPEG", quality=90)
    elif name == "phone_photo":
        # Stored on its side, as a phone's sensor writes it; orientation 6 turns it upright.
        upright = _scene((SAMPLE_SIZE[1], SAMPLE_SIZE[0]))
        exif = Image.Exif()
        exif[0x0112] = 6
        upright.transpose(Image.Transpose.ROTATE_90).save(buf, "JPEG", quality=90, exif=exif)
    elif name == "cmyk":
        scene.convert("CMYK").save(buf, "JPEG", quality=90)
    elif name == "logo":
        _logo(SAMPLE_SIZE[1]).save(buf, "PNG")
    elif name == "palette":
        scene.quantize(16).save(buf, "PNG")
    elif name == "gray":
        scene.convert("L").save(buf, "PNG")
    elif name == "gray16":
        gray = np.asarray(scene.convert("L"), np.float64) / 255
        ramp = np.linspace(0, 1, SAMPLE_SIZE[0])[np.newaxis, :]
        wide = np.rint(65535 * (0.8 * gray + 0.2 * ramp)).astype(np.uint16)
        Image.fromarray(wide).save(buf, "PNG")
    elif name == "animation":
        frames = [_scene(SAMPLE_SIZE, sun=i / 5).quantize(64) for i in range(6)]
        frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    elif name == "bitmap":
        scene.save(buf, "BMP")
    else:
        scene.save(buf, "WEBP", quality=80)
    return buf.getvalue()


def _scene(size: tuple[int, int], sun: float = 0.3) -> Image.Image:
    """RGB landscape: sky, a sun at `sun` (0 left … 1 right), hills, a house, a little grain."""
    width, height = size
    u = min(width, height) / 256  # everything is laid out on a 256-unit grid
    sky = np.linspace([70, 130, 220], [200, 225, 250], height)[:, np.newaxis, :]
    im = Image.fromarray(np.broadcast_to(sky, (height, width, 3)).astype(np.uint8))
    d = ImageDraw.Draw(im)
    sx, sy = 30 * u + sun * (width - 60 * u), 50 * u
    d.ellipse([sx - 22 * u, sy - 22 * u, sx + 22 * u, sy + 22 * u], fill=(255, 205, 60))
    d.ellipse([-80 * u, height * 0.55, width * 0.7, height * 1.5], fill=(70, 150, 70))
    d.ellipse([width * 0.35, height * 0.6, width + 90 * u, height * 1.6], fill=(40, 120, 55))
    hx, hy = width * 0.62, height * 0.62
    d.rectangle([hx, hy, hx + 60 * u, hy + 45 * u], fill=(235, 230, 215))
    d.polygon([(hx - 8 * u, hy), (hx + 30 * u, hy - 30 * u), (hx + 68 * u, hy)], fill=(190, 50, 40))
    d.rectangle([hx + 24 * u, hy + 20 * u, hx + 38 * u, hy + 45 * u], fill=(90, 60, 40))
    grain = np.random.default_rng(0).normal(0, 4, (height, width, 1))
    return Image.fromarray(np.clip(np.asarray(im) + grain, 0, 255).astype(np.uint8))


def _logo(side: int) -> Image.Image:
    """RGBA: a coloured disc and a "TF" block on a transparent background, a soft shadow."""
    im = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    s = side / 256
    d.ellipse([40 * s, 48 * s, 224 * s, 232 * s], fill=(0, 0, 0, 70))  # shadow, half see-through
    d.ellipse([28 * s, 28 * s, 212 * s, 212 * s], fill=(255, 143, 0, 255))
    d.rectangle([80 * s, 70 * s, 176 * s, 100 * s], fill=(255, 255, 255, 255))
    d.rectangle([113 * s, 100 * s, 143 * s, 180 * s], fill=(255, 255, 255, 255))
    return im
