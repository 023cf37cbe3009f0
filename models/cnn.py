"""Training a convolutional network on photos: from scratch, or on a pretrained network.

Three models, `MODELS`:

- `"scratch"`: the course's small CNN, learned from random weights:

      image [size, size, 3] in [0, 255] → x / 255 → (conv k×k → ReLU → max-pool 2×2) × blocks
      → flatten → dense softmax

- `"transfer"`: transfer learning: a new dense softmax on the 1280 pooled features of
  EfficientNet-Lite0 (`models/efficientnet.py`, ImageNet weights), which stays frozen. A photo's
  features are computed once and cached (`FeatureCache`), so an epoch costs milliseconds.
- `"finetune"`: the same, with its top block trained too (block 7a and the 1×1 top conv; their
  batch norms stay frozen), on the cached output of block 6d.

Augmentation (`Augmentation`: flip, crop, rotation, brightness, contrast) is a `keras.Sequential`
of random layers applied to the training batches only; `augment_images` shows what the network is
fed. With augmentation, transfer learning computes the features of each batch's new variants, which
is slower: the cache only holds the photos as they are.

`train` runs the loop (one traced step a batch; the first runs eagerly, so progress shows while
the step is traced) and reports to a `Monitor`: per batch and per
epoch (loss and accuracy on the training and validation photos, images/s, ETA), and pictures (the
first conv layer's filters, one probe photo's feature maps). The monitor's `checkpoint` pauses or
stops it. It returns a `Trained`: the Keras model (float32 `[batch, size, size, 3]` in [0, 255] →
probabilities), the confusion matrix of the validation photos and Grad-CAM for the misclassified
ones (`models/classifier.py`). `export_script` writes the Python that builds and trains the same
model with Keras (`image_dataset_from_directory`, the same layers and hyperparameters).

`make_generated` draws data sets of shapes or colours, so that everything works without photos;
`list_breeds` and `load_breeds` read a folder in the Stanford Dogs layout
(`Images/n02085620-Chihuahua/*.jpg`).
"""

import hashlib
import json
import math
import re
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from models.classifier import Classifier
from models.efficientnet import IMAGE_SIZE as PRETRAINED_SIZE
from models.efficientnet import load_efficientnet_lite0
from models.images import ImageRejected, decode_image

MODELS = ("scratch", "transfer", "finetune")
AUGMENTATIONS = ("flip", "crop", "rotation", "brightness", "contrast")
# The learning rate each model trains well with on a few photos: a fine-tuned block needs less.
DEFAULT_LEARNING_RATES = {"scratch": 1e-3, "transfer": 1e-3, "finetune": 1e-4}
DEFAULT_IMAGE_SIZE = 64  # scratch; transfer and finetune take EfficientNet-Lite0's 224
MIN_IMAGE_SIZE = 16
MAX_BLOCKS = 4
MAX_FILTERS = 64
MAX_KERNEL_SIZE = 7
POOL_SIZE = 2
# The pooled features a transfer head learns on, and where fine-tuning's frozen part ends: after
# block 6d the network is a chain (block 7a has no residual: 192 → 320 channels).
FEATURE_LAYER = "avg_pool"
FINETUNE_FROM = "block6d_add"
# Layers of EfficientNet-Lite0 whose feature maps are shown (frozen: computed once).
PRETRAINED_MAP_LAYERS = ("stem_activation", "block3a_activation")
MAX_MAPS = 8  # channels shown per layer
FED_IMAGES = 8  # training photos shown as the network is fed them
FEATURE_BATCH = 16  # photos per call of the pretrained network
EVAL_BATCH = 64
PICTURE_SECONDS = 1.0  # filters and feature maps are redrawn at most this often within an epoch
FEATURE_CACHE_BYTES = 256 * 1024 * 1024
MAX_MISTAKES = 32  # misclassified validation photos explained with Grad-CAM
GENERATED = {
    "shapes": ("circle", "square", "triangle"),
    "colours": ("red", "green", "blue"),
}
SHAPES = ("circle", "square", "triangle", "star", "cross")
HUES = {"red": 0.0, "yellow": 55.0, "green": 120.0, "blue": 225.0, "purple": 285.0}
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")


class TrainingStopped(Exception):
    """Raised by `Monitor.checkpoint` to end training early; `train` returns what it learned."""


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite: the learning rate overshoots."""


# --- data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSet:
    """Photos and their classes.

    Attributes:
        images: uint8 `[n, height, width, 3]`.
        labels: int32 `[n]`: indices into `class_names`.
        class_names: The classes, in the order of the model's outputs.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(
                f"images must be uint8 [n, height, width, 3]. Received: {self.images.dtype} "
                f"{self.images.shape}"
            )
        if self.labels.shape != (len(self.images),):
            raise ValueError(
                f"labels must hold one class per image ({len(self.images)}). "
                f"Received: {self.labels.shape}"
            )

    def counts(self) -> list[int]:
        """Photos per class, in the order of `class_names`."""
        return np.bincount(self.labels, minlength=len(self.class_names)).tolist()


def square_photo(pixels: np.ndarray, side: int) -> np.ndarray:
    """The central square of a photo, resized: what a model of that side takes.

    Args:
        pixels: uint8 `[height, width, 3]` (or `[height, width, 1]`, gray).
        side: The output's width and height.

    Returns:
        uint8 `[side, side, 3]`.
    """
    x = np.asarray(pixels)
    if x.ndim != 3 or x.shape[2] not in (1, 3) or x.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8 [height, width, 1 or 3]. Received: {x.shape}")
    if x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    height, width = x.shape[:2]
    crop = min(height, width)
    top, left = (height - crop) // 2, (width - crop) // 2
    x = x[top : top + crop, left : left + crop]
    if crop == side:
        return np.ascontiguousarray(x)
    return np.asarray(
        Image.fromarray(np.ascontiguousarray(x)).resize((side, side), Image.Resampling.BILINEAR)
    )


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Square photos resized to `size` (bilinear, antialiased when shrinking).

    Args:
        images: uint8 `[n, side, side, 3]`.
        size: The new side.

    Returns:
        uint8 `[n, size, size, 3]`; `images` itself if it already has that size.
    """
    if images.shape[1:3] == (size, size):
        return images
    resized = [square_photo(image, size) for image in images]
    return np.stack(resized) if resized else np.zeros((0, size, size, 3), np.uint8)


def split_indices(
    labels: np.ndarray, validation_split: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A stratified split: each class gives the same share of its photos to validation.

    Every class keeps at least one photo on each side.

    Args:
        labels: int `[n]`.
        validation_split: The share of each class held out, in (0, 1).
        seed: The shuffle's seed. Defaults to 0.

    Returns:
        `(train, validation)`: int arrays of indices into `labels`; `train` shuffled.
    """
    rng = np.random.default_rng(seed)
    train, validation = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        if len(members) < 2:
            raise ValueError(
                f"Every class needs at least 2 photos, one to train on and one to validate. "
                f"Received: {len(members)} photo of class {int(c)}"
            )
        held = min(len(members) - 1, max(1, round(len(members) * validation_split)))
        validation.extend(members[:held])
        train.extend(members[held:])
    return rng.permutation(np.array(train, np.int64)), np.sort(np.array(validation, np.int64))


def _hsv(hue: float, saturation: float, value: float) -> np.ndarray:
    """An RGB colour (0–255) from hue in degrees, saturation and value in [0, 1]."""
    h = (hue % 360) / 60
    c = value * saturation
    x = c * (1 - abs(h % 2 - 1))
    rgb = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][int(h) % 6]
    return np.round((np.array(rgb) + value - c) * 255)


def _outline(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple]:
    """The polygon of a shape of radius `r` centred at (cx, cy), turned by `angle` radians."""
    if shape == "square":
        points = [(1, 1), (-1, 1), (-1, -1), (1, -1)]
        points = [(x * 0.8, y * 0.8) for x, y in points]
    elif shape == "triangle":
        points = [(math.cos(a), math.sin(a)) for a in np.radians([90, 210, 330])]
    elif shape == "star":
        points = [
            (
                (1.0 if i % 2 == 0 else 0.42) * math.cos(a),
                (1.0 if i % 2 == 0 else 0.42) * math.sin(a),
            )
            for i, a in enumerate(np.radians(np.arange(90, 450, 36)))
        ]
    elif shape == "cross":
        w = 0.33
        points = [
            (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w),
            (-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w),
        ]  # fmt: skip
    else:
        raise ValueError(f"shape must be one of {SHAPES}. Received: shape={shape!r}")
    cos, sin = math.cos(angle), math.sin(angle)
    return [(cx + r * (x * cos - y * sin), cy - r * (x * sin + y * cos)) for x, y in points]


def _draw(shape: str, fill: np.ndarray, background: np.ndarray, size: int, rng) -> np.ndarray:
    """One generated photo: a shape at a random place, size and angle, on a noisy background."""
    big = 2 * size  # drawn at twice the size, then shrunk: smooth edges
    canvas = Image.new("RGB", (big, big), tuple(int(v) for v in background))
    pen = ImageDraw.Draw(canvas)
    r = big * rng.uniform(0.2, 0.36)
    cx, cy = rng.uniform(r, big - r, size=2)
    colour = tuple(int(v) for v in fill)
    if shape == "circle":
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    else:
        pen.polygon(_outline(shape, cx, cy, r, 0.0), fill=colour)
    pixels = np.asarray(canvas.resize((size, size), Image.Resampling.LANCZOS), np.float32)
    noise = rng.normal(0, 8, pixels.shape)
    return np.clip(np.round(pixels + noise), 0, 255).astype(np.uint8)


def make_generated(
    kind: str = "shapes",
    classes: tuple[str, ...] | None = None,
    per_class: int = 30,
    size: int = 64,
    seed: int = 0,
) -> ImageSet:
    """A drawn data set, so that the lab works with no photos at all.

    `"shapes"`: the class is the shape (`SHAPES`: circle, square, triangle, star, cross), in a
    random colour on a random background; `"colours"`: the class is the colour (`HUES`: red,
    yellow, green, blue, purple) of a random shape. Position, size and angle are random too.

    Args:
        kind: `"shapes"` or `"colours"`. Defaults to `"shapes"`.
        classes: The classes to draw, e.g. `("circle", "square")`. Defaults to
            `GENERATED[kind]` (three classes).
        per_class: Photos per class. Defaults to 30.
        size: Width and height of each photo. Defaults to 64.
        seed: The drawing's seed: the same seed draws the same photos. Defaults to 0.

    Returns:
        An `ImageSet` of `len(classes) * per_class` photos, uint8 `[size, size, 3]`, classes
        interleaved.
    """
    if kind not in GENERATED:
        raise ValueError(f"kind must be one of {tuple(GENERATED)}. Received: kind={kind!r}")
    allowed = SHAPES if kind == "shapes" else tuple(HUES)
    classes = tuple(classes or GENERATED[kind])
    if len(classes) < 2 or len(set(classes)) != len(classes) or not set(classes) <= set(allowed):
        raise ValueError(
            f"classes must be 2 or more different names of {allowed}. Received: classes={classes}"
        )
    if per_class < 1 or size < 8:
        raise ValueError(f"per_class must be >= 1 and size >= 8. Received: {per_class=}, {size=}")
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for _ in range(per_class):
        for label, name in enumerate(classes):
            if kind == "shapes":
                shape, hue = name, rng.uniform(0, 360)
                fill = _hsv(hue, rng.uniform(0.6, 1), rng.uniform(0.7, 1))
                background = _hsv(
                    hue + rng.uniform(90, 270), rng.uniform(0, 0.4), rng.uniform(0.1, 0.5)
                )
            else:
                shape = SHAPES[rng.integers(len(SHAPES))]
                fill = _hsv(
                    HUES[name] + rng.uniform(-12, 12), rng.uniform(0.7, 1), rng.uniform(0.7, 1)
                )
                background = _hsv(rng.uniform(0, 360), rng.uniform(0, 0.15), rng.uniform(0.15, 0.9))
            images.append(_draw(shape, fill, background, size, rng))
            labels.append(label)
    return ImageSet(np.stack(images), np.array(labels, np.int32), classes)


@dataclass(frozen=True)
class Breed:
    """A class folder of a data set on disk.

    Attributes:
        name: Readable: `"Chihuahua"` for `n02085620-Chihuahua`, underscores made spaces.
        folder: The folder.
        photos: How many photo files it holds.
    """

    name: str
    folder: Path
    photos: int


def _photo_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())


def list_breeds(root: str | Path) -> tuple[Breed, ...]:
    """The classes of a data set folder in the Stanford Dogs layout.

    Args:
        root: A folder holding `Images/<wnid>-<Breed>/*.jpg` (Stanford Dogs as downloaded), or
            one sub-folder of photos per class directly.

    Returns:
        The breeds with at least one photo, sorted by name; none if `root` does not exist.
    """
    root = Path(root)
    images = root / "Images" if (root / "Images").is_dir() else root
    if not images.is_dir():
        return ()
    breeds = []
    for folder in sorted(p for p in images.iterdir() if p.is_dir()):
        count = len(_photo_files(folder))
        if count:
            name = re.sub(r"^n\d+-", "", folder.name).replace("_", " ")
            breeds.append(Breed(name, folder, count))
    return tuple(sorted(breeds, key=lambda b: b.name.lower()))


def load_breeds(
    breeds: list[Breed],
    per_class: int,
    side: int,
    *,
    max_bytes: int,
    max_pixels: int,
    max_side: int,
) -> ImageSet:
    """The first `per_class` photos of each breed, decoded safely (`models/images.py`).

    A file that is not a decodable image of an allowed format is skipped, and the next one taken.

    Args:
        breeds: From `list_breeds`.
        per_class: Photos per breed at most.
        side: The side of the square photos kept (`square_photo`).
        max_bytes: `decode_image`'s byte cap per file.
        max_pixels: `decode_image`'s pixel cap per file.
        max_side: `decode_image`'s cap on either side.

    Returns:
        An `ImageSet` of uint8 `[side, side, 3]` photos, classes in the order of `breeds`.
    """
    images, labels = [], []
    for label, breed in enumerate(breeds):
        taken = 0
        for path in _photo_files(breed.folder):
            if taken == per_class:
                break
            try:
                decoded = decode_image(
                    path.read_bytes(),
                    max_bytes=max_bytes,
                    max_pixels=max_pixels,
                    max_side=max_side,
                    max_output_side=2 * side,
                )
            except (ImageRejected, OSError):
                continue
            images.append(square_photo(decoded.pixels, side))
            labels.append(label)
            taken += 1
    if not images:
        raise ValueError(f"No photo could be read in {[b.folder.name for b in breeds]}.")
    return ImageSet(np.stack(images), np.array(labels, np.int32), tuple(b.name for b in breeds))


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvBlock:
    """One block of the scratch CNN: conv (`filters` kernels of `kernel_size`²) → ReLU → max-pool."""

    filters: int = 16
    kernel_size: int = 3


# Three blocks learn shapes from a few hundred photos where two barely beat chance.
DEFAULT_BLOCKS = (ConvBlock(16, 3), ConvBlock(32, 3), ConvBlock(64, 3))


@dataclass(frozen=True)
class Augmentation:
    """Random changes to each training batch; 0 (or False) turns one off.

    Attributes:
        flip: Mirror left–right at random (`RandomFlip("horizontal")`).
        crop: Cut a random window of `1 - crop` of each side, resized back (`RandomCrop`, then
            `Resizing`), in [0, 0.5].
        rotation: Turn by up to ± this fraction of a full turn (`RandomRotation`), in [0, 0.5].
        brightness: Add up to ± this fraction of the 0–255 range (`RandomBrightness`), in [0, 1].
        contrast: Scale the contrast by a factor in [1 - contrast, 1 + contrast]
            (`RandomContrast`), in [0, 1].
    """

    flip: bool = False
    crop: float = 0.0
    rotation: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0

    @property
    def active(self) -> bool:
        return any(getattr(self, name) for name in AUGMENTATIONS)


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how.

    Attributes:
        model: One of `MODELS`.
        epochs: Passes over the training photos.
        learning_rate: Adam's learning rate; `None` takes `DEFAULT_LEARNING_RATES[model]`.
        batch_size: Photos per step.
        image_size: The side photos are resized to for `"scratch"`; `None` takes
            `DEFAULT_IMAGE_SIZE`. Transfer and fine-tuning always take 224.
        validation_split: The share of each class held out for validation.
        blocks: The scratch CNN's conv blocks.
        augment: Random changes to the training batches.
        seed: The split's and the shuffles' seed.
    """

    model: str = "scratch"
    epochs: int = 10
    learning_rate: float | None = None
    batch_size: int = 32
    image_size: int | None = None
    validation_split: float = 0.2
    blocks: tuple[ConvBlock, ...] = DEFAULT_BLOCKS
    augment: Augmentation = field(default_factory=Augmentation)
    seed: int = 0

    @property
    def size(self) -> int:
        """The side of the images the model takes."""
        if self.model != "scratch":
            return PRETRAINED_SIZE
        return self.image_size or DEFAULT_IMAGE_SIZE

    @property
    def lr(self) -> float:
        return self.learning_rate or DEFAULT_LEARNING_RATES[self.model]


def check_config(config: TrainConfig) -> None:
    """Raises a ValueError naming the first setting out of range, Keras-style."""
    c = config
    if c.model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}. Received: model={c.model!r}")
    if c.model != "scratch" and c.image_size not in (None, PRETRAINED_SIZE):
        raise ValueError(
            f"image_size: {c.model} uses EfficientNet-Lite0's {PRETRAINED_SIZE}×{PRETRAINED_SIZE} "
            f"inputs; leave it out. Received: image_size={c.image_size}"
        )
    if c.epochs < 1 or c.batch_size < 1 or not 0 < c.validation_split < 1:
        raise ValueError(
            f"epochs and batch_size must be >= 1 and validation_split in (0, 1). Received: "
            f"epochs={c.epochs}, batch_size={c.batch_size}, validation_split={c.validation_split}"
        )
    if not (math.isfinite(c.lr) and c.lr > 0):
        raise ValueError(f"learning_rate must be > 0. Received: learning_rate={c.learning_rate}")
    if c.size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}. Received: image_size={c.size}")
    if c.model == "scratch":
        if not 1 <= len(c.blocks) <= MAX_BLOCKS:
            raise ValueError(
                f"blocks must hold 1 to {MAX_BLOCKS} conv blocks. Received: {len(c.blocks)} blocks"
            )
        for i, b in enumerate(c.blocks):
            if not 1 <= b.filters <= MAX_FILTERS or not 1 <= b.kernel_size <= MAX_KERNEL_SIZE:
                raise ValueError(
                    f"blocks[{i}]: filters must be in [1, {MAX_FILTERS}] and kernel_size in "
                    f"[1, {MAX_KERNEL_SIZE}]. Received: filters={b.filters}, "
                    f"kernel_size={b.kernel_size}"
                )
        if c.size < POOL_SIZE ** len(c.blocks):
            raise ValueError(
                f"image_size must be at least {POOL_SIZE ** len(c.blocks)} for {len(c.blocks)} "
                f"blocks: each max-pool halves it. Received: image_size={c.size}"
            )
    a = c.augment
    for name, high in (("crop", 0.5), ("rotation", 0.5), ("brightness", 1.0), ("contrast", 1.0)):
        value = getattr(a, name)
        if not 0 <= value <= high:
            raise ValueError(f"augment.{name} must be in [0, {high:g}]. Received: {name}={value}")


# --- layers: one list of specs, built here and written out by `export_script` -----------------


@dataclass(frozen=True)
class LayerSpec:
    """A Keras layer as `keras.layers.<kind>(*args, **kwargs)`."""

    kind: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def build(self, seed: int | None = None) -> keras.layers.Layer:
        """The layer; `seed` seeds a random layer."""
        seeded = {"seed": seed} if seed is not None and self.kind.startswith("Random") else {}
        return getattr(keras.layers, self.kind)(*self.args, **self.kwargs, **seeded)

    def source(self) -> str:
        """The Python that makes the layer, as `export_script` writes it."""
        parts = [_literal(a) for a in self.args]
        parts += [f"{k}={_literal(v)}" for k, v in self.kwargs.items()]
        return f"keras.layers.{self.kind}({', '.join(parts)})"


def _literal(value: object) -> str:
    """A value as the source of a script writes it: strings in double quotes, 1/255 as such."""
    if isinstance(value, str):
        return json.dumps(value)
    return "1 / 255" if value == 1 / 255 else repr(value)


def augmentation_specs(augment: Augmentation, size: int) -> list[LayerSpec]:
    """The random layers of `augment` for images of `size`², in the order they apply."""
    specs = []
    if augment.flip:
        specs.append(LayerSpec("RandomFlip", ("horizontal",)))
    if augment.crop:
        window = max(1, round(size * (1 - augment.crop)))
        specs += [LayerSpec("RandomCrop", (window, window)), LayerSpec("Resizing", (size, size))]
    if augment.rotation:
        specs.append(LayerSpec("RandomRotation", (augment.rotation,)))
    if augment.brightness:
        specs.append(LayerSpec("RandomBrightness", (augment.brightness,)))
    if augment.contrast:
        specs.append(LayerSpec("RandomContrast", (augment.contrast,)))
    return specs


def scratch_specs(num_classes: int, blocks: tuple[ConvBlock, ...]) -> list[LayerSpec]:
    """The scratch CNN's layers after its input: scaling, conv blocks, flatten, dense softmax."""
    specs = [LayerSpec("Rescaling", (1 / 255,), {"name": "preprocess"})]
    for i, block in enumerate(blocks, start=1):
        specs += [
            LayerSpec("Conv2D", (block.filters, block.kernel_size), {"padding": "same", "name": f"conv{i}"}),
            LayerSpec("ReLU", (), {"name": f"relu{i}"}),
            LayerSpec("MaxPooling2D", (POOL_SIZE,), {"name": f"pool{i}"}),
        ]  # fmt: skip
    return [
        *specs,
        LayerSpec("Flatten", (), {"name": "flatten"}),
        _head_spec(num_classes),
    ]


def _head_spec(num_classes: int) -> LayerSpec:
    return LayerSpec("Dense", (num_classes,), {"activation": "softmax", "name": "predictions"})


def build_augmentation(
    augment: Augmentation, size: int, seed: int | None = None
) -> keras.Sequential | None:
    """The augmentation as a `keras.Sequential` named `"augment"`, or None if all are off."""
    specs = augmentation_specs(augment, size)
    if not specs:
        return None
    return keras.Sequential([spec.build(seed) for spec in specs], name="augment")


def build_scratch_model(
    num_classes: int, size: int = DEFAULT_IMAGE_SIZE, blocks: tuple[ConvBlock, ...] = DEFAULT_BLOCKS
) -> keras.Model:
    """The course's small CNN.

    Args:
        num_classes: Outputs of the dense softmax.
        size: The input's side. Defaults to `DEFAULT_IMAGE_SIZE` (64).
        blocks: Conv → ReLU → max-pool blocks. Defaults to `DEFAULT_BLOCKS` (16, 32 and 64
            kernels of 3×3).

    Returns:
        A `keras.Model` named `"scratch_cnn"` from `"image"`, float32 `[batch, size, size, 3]` in
        [0, 255], to probabilities `[batch, num_classes]`; layers `conv1`, `relu1`, `pool1`, …,
        `flatten`, `predictions`.
    """
    x = image = keras.Input((size, size, 3), name="image")
    for spec in scratch_specs(num_classes, blocks):
        x = spec.build()(x)
    return keras.Model(image, x, name="scratch_cnn")


# --- the pretrained network ------------------------------------------------------------------

_bases: dict[str | None, keras.Model] = {}
_bases_lock = threading.Lock()
_extractors: dict[tuple[int, str], tf.types.experimental.GenericFunction] = {}


def load_base(cache_dir: str | Path | None = None) -> keras.Model:
    """EfficientNet-Lite0 with its ImageNet weights, loaded once per process and never changed.

    Args:
        cache_dir: Where its `.keras` file is cached (`load_efficientnet_lite0`). Defaults to None.

    Returns:
        The shared `keras.Model`: models built on it reuse its layers read-only; fine-tuning
        trains copies.
    """
    key = None if cache_dir is None else str(cache_dir)
    with _bases_lock:
        if key not in _bases:
            _bases[key] = load_efficientnet_lite0(cache_dir)
        return _bases[key]


def _extractor(base: keras.Model, layer: str):
    """A traced call of `base` from uint8 photos to `layer`'s output, one per process."""
    key = (id(base), layer)
    with _bases_lock:
        if key not in _extractors:
            part = keras.Model(base.input, base.get_layer(layer).output)
            spec = tf.TensorSpec([None, PRETRAINED_SIZE, PRETRAINED_SIZE, 3], tf.float32)
            _extractors[key] = tf.function(
                lambda x: part(x, training=False), input_signature=[spec]
            )
        return _extractors[key]


class FeatureCache:
    """A pretrained layer's output for each photo already seen: least recently used out.

    Thread-safe; keyed by the layer and a digest of the photo's pixels, so the same photo in
    another data set or another job is not computed again.

    Args:
        max_bytes: The most feature bytes kept. Defaults to `FEATURE_CACHE_BYTES` (256 MiB).
    """

    def __init__(self, max_bytes: int = FEATURE_CACHE_BYTES):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, bytes], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.computed = 0  # photos whose features were computed, not found

    def get(self, key: tuple[str, bytes]) -> np.ndarray | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[str, bytes], value: np.ndarray) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._bytes += value.nbytes
            while self._bytes > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


FEATURES = FeatureCache()


def pretrained_features(
    base: keras.Model,
    images: np.ndarray,
    layer: str = FEATURE_LAYER,
    cache: FeatureCache = FEATURES,
) -> np.ndarray:
    """A layer of EfficientNet-Lite0 for each photo, from the cache when it was computed before.

    Args:
        base: From `load_base`.
        images: uint8 `[n, 224, 224, 3]`.
        layer: A layer name of `base`. Defaults to `FEATURE_LAYER` (`"avg_pool"`, 1280 features).
        cache: Defaults to the process's `FEATURES`.

    Returns:
        float32 `[n, *layer's shape]`, e.g. `[n, 1280]`.
    """
    keys = [(layer, hashlib.blake2b(image.tobytes(), digest_size=16).digest()) for image in images]
    found = [cache.get(key) for key in keys]
    missing = [i for i, value in enumerate(found) if value is None]
    if missing:
        out = _in_batches(_extractor(base, layer), images[missing].astype(np.float32))
        for i, value in zip(missing, out, strict=True):
            found[i] = value
            cache.put(keys[i], value)
        cache.computed += len(missing)
    shape = tuple(base.get_layer(layer).output.shape[1:])
    return np.stack(found) if found else np.zeros((0, *shape), np.float32)


def _in_batches(extract, x: np.ndarray) -> np.ndarray:
    """`extract` over `x` in batches of exactly `FEATURE_BATCH` (the last one padded): every call
    has the shape of the first, whose kernels are already set up (a new shape costs seconds when
    TensorFlow runs each op on one thread, as `playground serve` does)."""
    out = []
    for start in range(0, len(x), FEATURE_BATCH):
        chunk = x[start : start + FEATURE_BATCH]
        padded = np.zeros((FEATURE_BATCH, *x.shape[1:]), np.float32)
        padded[: len(chunk)] = chunk
        out.append(extract(tf.constant(padded)).numpy()[: len(chunk)])
    return np.concatenate(out)


def warm_up(cache_dir: str | Path | None = None) -> None:
    """Loads EfficientNet-Lite0 and traces its features once, then trains a tiny model of each
    kind for one epoch, so that no first job waits for TensorFlow's first traces (they cost
    seconds more than the next ones).

    Args:
        cache_dir: Where its `.keras` file is cached. Defaults to None.
    """
    base = load_base(cache_dir)
    _in_batches(_extractor(base, FEATURE_LAYER), np.zeros((1, *base.input.shape[1:]), np.float32))
    drawn = make_generated("shapes", ("circle", "square"), 3, PRETRAINED_SIZE)
    for config in (
        TrainConfig(model="transfer", epochs=1, batch_size=4),
        TrainConfig(model="scratch", epochs=1, batch_size=4, image_size=MIN_IMAGE_SIZE),
    ):
        train(drawn, config, Monitor(), cache_dir)


def _top_block(base: keras.Model, x):
    """Trainable copies of the layers after `FINETUNE_FROM` up to the pooling, applied to `x`
    (that layer's output); their batch norms stay frozen."""
    names = [layer.name for layer in base.layers]
    for layer in base.layers[names.index(FINETUNE_FROM) + 1 : names.index(FEATURE_LAYER) + 1]:
        copy = layer.__class__.from_config(layer.get_config())
        x = copy(x)
        copy.set_weights(layer.get_weights())
        # Batch norm stays in inference mode with its ImageNet statistics (Keras's fine-tuning
        # guide): a few photos would ruin them.
        copy.trainable = not isinstance(copy, keras.layers.BatchNormalization)
    return x


@dataclass
class _Parts:
    """A model split for training: `trainable` learns on `inputs` (photos or cached features)."""

    full: keras.Model  # photos → probabilities: what is exported
    trainable: keras.Model  # what the optimizer trains
    layer: str | None  # the pretrained layer `trainable` starts from; None: from the photos


def _parts(config: TrainConfig, num_classes: int, cache_dir) -> _Parts:
    """The full model and its trainable part, for any of `MODELS`."""
    if config.model == "scratch":
        model = build_scratch_model(num_classes, config.size, config.blocks)
        return _Parts(model, model, None)
    base = load_base(cache_dir)
    layer = FEATURE_LAYER if config.model == "transfer" else FINETUNE_FROM
    start = base.get_layer(layer).output
    features = start if config.model == "transfer" else _top_block(base, start)
    outputs = _head_spec(num_classes).build()(features)
    # Every new layer is called once, in the full model's graph (Grad-CAM reads its tensors);
    # the trainable part is the same graph from `start` on.
    full = keras.Model(base.input, outputs, name=f"{config.model}_cnn")
    return _Parts(full, keras.Model(start, outputs, name=f"{config.model}_head"), layer)


def rebuild(
    config: TrainConfig, num_classes: int, weights: list[np.ndarray], cache_dir=None
) -> keras.Model:
    """The full model of a finished training from its trainable part's weights (`Trained.weights`).

    Args:
        config: The configuration it was trained with.
        num_classes: Its outputs.
        weights: `Trained.weights`: what training changed (for transfer, the head only).
        cache_dir: Where EfficientNet-Lite0 is cached. Defaults to None.

    Returns:
        The `keras.Model` that `train` returned, float32 `[batch, size, size, 3]` in [0, 255] →
        probabilities.
    """
    parts = _parts(config, num_classes, cache_dir)
    parts.trainable.set_weights(weights)
    return parts.full


def model_bytes(model: keras.Model) -> bytes:
    """The model as a `.keras` file's bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def load_model_bytes(data: bytes) -> keras.Model:
    """A model from a `.keras` file's bytes (Keras's safe mode: no custom code)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(data)
        return keras.saving.load_model(path)


# --- training --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """What a training is about to do.

    Attributes:
        class_names: The classes.
        train_images: Photos trained on.
        val_images: Photos held out for validation.
        batches: Steps per epoch.
        epochs: Epochs planned.
        image_size: The side of the images the model takes.
        learning_rate: Adam's learning rate.
        parameters: The model's parameters.
        trainable_parameters: Those that training changes.
        fed: uint8 `[k, size, size, 3]`: training photos as the network is fed them
            (augmented), with `fed_labels` int `[k]`.
        fed_labels: Their classes.
        cached: Whether the pretrained features come from the cache, so epochs are fast.
    """

    class_names: tuple[str, ...]
    train_images: int
    val_images: int
    batches: int
    epochs: int
    image_size: int
    learning_rate: float
    parameters: int
    trainable_parameters: int
    fed: np.ndarray
    fed_labels: np.ndarray
    cached: bool


@dataclass(frozen=True)
class BatchReport:
    """One training step.

    Attributes:
        epoch: 1-based.
        batch: 1-based, within the epoch.
        batches: Steps per epoch.
        step: 1-based, over the whole training.
        loss: The mean cross-entropy over the epoch's batches so far.
        accuracy: The share of the epoch's photos so far classified right.
        progress: The share of the planned steps done, in [0, 1].
        images_per_second: Training photos per second of training (pauses left out).
        eta_seconds: Seconds left at that speed.
    """

    epoch: int
    batch: int
    batches: int
    step: int
    loss: float
    accuracy: float
    progress: float
    images_per_second: float
    eta_seconds: float


@dataclass(frozen=True)
class EpochReport:
    """One epoch: training metrics (means over the epoch) and validation metrics (at its end)."""

    epoch: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float  # since the training began, pauses left out
    progress: float
    images_per_second: float
    eta_seconds: float


@dataclass(frozen=True)
class LayerMaps:
    """A layer's activations for the probe photo.

    Attributes:
        name: The layer, e.g. `"relu1"`.
        shape: Its whole output, `(height, width, channels)`.
        maps: float32 `[k, height, width]` in [0, 1]: its first `k <= MAX_MAPS` channels, each
            divided by its largest value.
    """

    name: str
    shape: tuple[int, int, int]
    maps: np.ndarray


@dataclass(frozen=True)
class Pictures:
    """What the network looks like inside.

    Attributes:
        filters_layer: The first conv layer: `"conv1"`, or EfficientNet-Lite0's `"stem_conv"`.
        filters: float32 `[filters, k, k, 3]` in [0, 1]: its kernels as colour images, 0.5
            meaning a weight of 0 (all scaled by the largest |weight|).
        feature_maps: The probe photo's activations, layer by layer.
        probe: uint8 `[size, size, 3]`: the probe photo (the first validation photo).
        step: The training step they show (0: before training).
    """

    filters_layer: str
    filters: np.ndarray
    feature_maps: tuple[LayerMaps, ...]
    probe: np.ndarray
    step: int


class Monitor:
    """What `train` reports to, as `keras.callbacks.Callback`: override what you need."""

    def on_start(self, start: Start) -> None:
        pass

    def on_batch(self, report: BatchReport) -> None:
        pass

    def on_epoch(self, report: EpochReport) -> None:
        pass

    def on_pictures(self, pictures: Pictures) -> None:
        pass

    def checkpoint(self) -> None:
        """Called before every step: may block (a pause) or raise `TrainingStopped`."""


@dataclass(frozen=True)
class Mistake:
    """A misclassified validation photo.

    Attributes:
        index: Its place among the validation photos.
        true: Its class.
        predicted: The class the model gave it.
        probability: The model's probability for `predicted`.
        image: uint8 `[size, size, 3]`.
        grad_cam: float32 `[height, width]` in [0, 1]: where the evidence for `predicted` lay
            (Grad-CAM at the model's last feature layer).
    """

    index: int
    true: int
    predicted: int
    probability: float
    image: np.ndarray
    grad_cam: np.ndarray


@dataclass
class Trained:
    """The outcome of `train`.

    Attributes:
        model: photos float32 `[batch, size, size, 3]` in [0, 255] → probabilities
            `[batch, classes]`.
        config: The configuration trained with.
        class_names: The classes, in the order of the outputs.
        history: One `EpochReport` per finished epoch.
        confusion: int `[classes, classes]`: validation photos of class `i` (row) given class `j`.
        val_images: uint8 `[m, size, size, 3]`: the validation photos as the model took them.
        val_labels: int `[m]`: their classes.
        val_probabilities: float32 `[m, classes]`: the model's answers.
        weights: What training changed: the trainable part's weights, for `rebuild`.
        stopped: Whether training was stopped before its last epoch.
        steps: Training steps taken.
    """

    model: keras.Model
    config: TrainConfig
    class_names: tuple[str, ...]
    history: list[EpochReport]
    confusion: np.ndarray
    val_images: np.ndarray = field(repr=False)
    val_labels: np.ndarray
    val_probabilities: np.ndarray
    weights: list[np.ndarray] = field(repr=False)
    stopped: bool
    steps: int

    def mistakes(self, limit: int = MAX_MISTAKES) -> list[Mistake]:
        """The misclassified validation photos (at most `limit`), each with its Grad-CAM."""
        predicted = self.val_probabilities.argmax(axis=1)
        wrong = np.flatnonzero(predicted != self.val_labels)[:limit]
        if not len(wrong):
            return []
        classifier = Classifier(self.model)
        images = self.val_images[wrong]
        cams = classifier.grad_cam(images.astype(np.float32), predicted[wrong])
        return [
            Mistake(
                int(i),
                int(self.val_labels[i]),
                int(predicted[i]),
                float(self.val_probabilities[i, predicted[i]]),
                image,
                cam,
            )
            for i, image, cam in zip(wrong, images, cams, strict=True)
        ]


def _scaled_filters(kernel: np.ndarray) -> np.ndarray:
    """Conv kernels `[k, k, 3, filters]` as images `[filters, k, k, 3]` in [0, 1], 0.5 at zero."""
    kernel = np.nan_to_num(kernel, posinf=0.0, neginf=0.0)  # a diverged run's are drawn grey
    peak = float(np.abs(kernel).max()) or 1.0
    return (np.transpose(kernel, (3, 0, 1, 2)) / (2 * peak) + 0.5).astype(np.float32)


def _layer_maps(name: str, activations: np.ndarray) -> LayerMaps:
    """The first channels of one photo's activations `[height, width, channels]`, each to [0, 1]."""
    maps = np.transpose(activations[..., :MAX_MAPS], (2, 0, 1)).astype(np.float32)
    maps = np.nan_to_num(maps, posinf=0.0, neginf=0.0)  # a diverged run's are drawn black
    peaks = np.abs(maps).max(axis=(1, 2), keepdims=True)
    return LayerMaps(name, tuple(activations.shape), np.divide(maps, np.where(peaks > 0, peaks, 1)))


def augment_images(
    images: np.ndarray, augment: Augmentation, size: int, seed: int | None = None
) -> np.ndarray:
    """What the network is fed: the photos resized and randomly augmented, as in training.

    Args:
        images: uint8 `[n, side, side, 3]`.
        augment: The augmentation.
        size: The model's input side.
        seed: Seeds the random layers: the same seed gives the same images. Defaults to None.

    Returns:
        uint8 `[n, size, size, 3]`.
    """
    x = resize_images(images, size)
    layers = build_augmentation(augment, size, seed)
    if layers is None or not len(x):
        return x
    out = layers(tf.constant(x, tf.float32), training=True)
    return np.clip(np.round(np.asarray(out)), 0, 255).astype(np.uint8)


class _Loop:
    """The traced steps of one training: the optimizer, a train step and an evaluation step."""

    def __init__(self, parts: _Parts, config: TrainConfig, input_shape: tuple, input_dtype):
        self.model = parts.trainable
        self.augment = build_augmentation(config.augment, config.size)
        # Transfer and fine-tuning augment the photos before the frozen network, outside the step.
        self.augment_in_step = parts.layer is None and self.augment is not None
        self.optimizer = keras.optimizers.Adam(config.lr)
        self.optimizer.build(self.model.trainable_variables)
        self.loss = keras.losses.SparseCategoricalCrossentropy()
        spec = [tf.TensorSpec([None, *input_shape], input_dtype), tf.TensorSpec([None], tf.int32)]
        self.train_step = tf.function(self._train_step, input_signature=spec)
        self.eval_step = tf.function(self._eval_step, input_signature=spec)

    def eager_step(self, x, y):
        """`train_step` without tracing it: slower, but it starts at once."""
        return self._train_step(tf.constant(x), tf.constant(y))

    def _train_step(self, x, y):
        x = tf.cast(x, tf.float32)
        if self.augment_in_step:
            x = self.augment(x, training=True)
        with tf.GradientTape() as tape:
            # No dropout here, and batch norm stays in inference mode (see `_top_block`).
            p = self.model(x, training=False)
            loss = self.loss(y, p)
        variables = self.model.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return loss, self._correct(y, p)

    def _eval_step(self, x, y):
        p = self.model(tf.cast(x, tf.float32), training=False)
        return self.loss(y, p) * tf.cast(tf.shape(y)[0], tf.float32), self._correct(y, p), p

    @staticmethod
    def _correct(y, p):
        return tf.reduce_sum(
            tf.cast(tf.equal(tf.argmax(p, axis=1, output_type=tf.int32), y), tf.float32)
        )


def _finite(value: float, epoch: int, batch: int, lr: float) -> float:
    """`value`, or `TrainingDiverged` if it is NaN or infinite."""
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"Diverged: the loss became {value} at epoch {epoch}, batch {batch}; the learning "
            f"rate overshoots. Try a smaller one. Received: learning_rate={lr:g}"
        )
    return value


def train(
    data: ImageSet,
    config: TrainConfig = TrainConfig(),
    monitor: Monitor | None = None,
    cache_dir: str | Path | None = None,
) -> Trained:
    """Trains a model on photos and evaluates it on the held-out ones.

    Adam minimises the sparse categorical cross-entropy, one traced step per batch (the first
    runs eagerly); the training photos are shuffled every epoch. Transfer and fine-tuning learn on EfficientNet-Lite0's
    cached features (computed once per photo) unless augmentation is on.

    Args:
        data: The photos, uint8 `[n, side, side, 3]` (square), at least 2 classes of 2 photos.
        config: What to train. Defaults to `TrainConfig()` (scratch, 10 epochs).
        monitor: Receives the reports and may pause or stop training. Defaults to None.
        cache_dir: Where EfficientNet-Lite0 is cached (transfer and finetune). Defaults to None.

    Returns:
        A `Trained`.

    Raises:
        ValueError: A setting out of range or too few photos (the message names it).
        TrainingDiverged: The loss became NaN or infinite.
    """
    check_config(config)
    monitor = monitor or Monitor()
    if len(data.class_names) < 2:
        raise ValueError(f"Training needs at least 2 classes. Received: {list(data.class_names)}")
    train_idx, val_idx = split_indices(data.labels, config.validation_split, config.seed)
    size, n_classes = config.size, len(data.class_names)
    images = resize_images(data.images, size)
    labels = data.labels.astype(np.int32)
    parts = _parts(config, n_classes, cache_dir)
    base = None if parts.layer is None else load_base(cache_dir)
    cached = base is not None and not config.augment.active
    if base is None:
        inputs = images
    elif cached:
        inputs = pretrained_features(base, images, parts.layer)
    else:
        inputs = None  # the features of each augmented batch, computed as it comes
    val_inputs = (
        inputs[val_idx]
        if inputs is not None
        else pretrained_features(base, images[val_idx], parts.layer)
    )
    loop = _Loop(parts, config, val_inputs.shape[1:], tf.uint8 if base is None else tf.float32)
    batches = math.ceil(len(train_idx) / config.batch_size)
    total_steps = batches * config.epochs
    fed_idx = train_idx[:FED_IMAGES]
    monitor.on_start(
        Start(
            class_names=data.class_names,
            train_images=len(train_idx),
            val_images=len(val_idx),
            batches=batches,
            epochs=config.epochs,
            image_size=size,
            learning_rate=config.lr,
            parameters=parts.full.count_params(),
            trainable_parameters=sum(int(np.prod(v.shape)) for v in loop.model.trainable_variables),
            fed=augment_images(images[fed_idx], config.augment, size, seed=config.seed),
            fed_labels=labels[fed_idx],
            cached=cached,
        )
    )
    pictures = _PictureTaker(parts, config, images[val_idx[0]], base)
    monitor.on_pictures(pictures.take(0))
    extract = None if inputs is not None else _extractor(base, parts.layer)
    rng = np.random.default_rng(config.seed + 1)
    history: list[EpochReport] = []
    seconds, step, trained_images, stopped = 0.0, 0, 0, False
    val_probabilities = np.zeros((len(val_idx), n_classes), np.float32)
    try:
        for epoch in range(1, config.epochs + 1):
            order = rng.permutation(train_idx)
            seen, loss_sum, correct = 0, 0.0, 0.0
            for batch in range(1, batches + 1):
                monitor.checkpoint()
                began = time.perf_counter()
                chosen = order[(batch - 1) * config.batch_size : batch * config.batch_size]
                if extract is None:
                    x = inputs[chosen]
                else:
                    fed = loop.augment(tf.constant(images[chosen], tf.float32), training=True)
                    x = _in_batches(extract, np.asarray(fed))
                # The first step runs eagerly: its progress shows while later steps are traced.
                train_step = loop.train_step if step else loop.eager_step
                loss, right = train_step(x, labels[chosen])
                loss = _finite(float(loss), epoch, batch, config.lr)
                seconds += time.perf_counter() - began
                step += 1
                seen += len(chosen)
                trained_images += len(chosen)
                loss_sum += loss * len(chosen)
                correct += float(right)
                monitor.on_batch(
                    BatchReport(
                        epoch=epoch,
                        batch=batch,
                        batches=batches,
                        step=step,
                        loss=loss_sum / seen,
                        accuracy=correct / seen,
                        progress=step / total_steps,
                        images_per_second=trained_images / seconds,
                        eta_seconds=(total_steps - step) * seconds / step,
                    )
                )
                if pictures.due():
                    monitor.on_pictures(pictures.take(step))
            began = time.perf_counter()
            val_loss, val_accuracy, val_probabilities = _evaluate(loop, val_inputs, labels[val_idx])
            seconds += time.perf_counter() - began
            report = EpochReport(
                epoch=epoch,
                loss=loss_sum / seen,
                accuracy=correct / seen,
                val_loss=_finite(val_loss, epoch, batches, config.lr),
                val_accuracy=val_accuracy,
                seconds=seconds,
                progress=step / total_steps,
                images_per_second=trained_images / seconds,
                eta_seconds=(total_steps - step) * seconds / step,
            )
            history.append(report)
            monitor.on_epoch(report)
            if pictures.changes:
                monitor.on_pictures(pictures.take(step))
    except TrainingStopped:
        stopped = True
        if len(history) < epoch:  # evaluate what the unfinished epoch learned
            _, _, val_probabilities = _evaluate(loop, val_inputs, labels[val_idx])
    confusion = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(confusion, (labels[val_idx], val_probabilities.argmax(axis=1)), 1)
    return Trained(
        model=parts.full,
        config=config,
        class_names=data.class_names,
        history=history,
        confusion=confusion,
        val_images=images[val_idx],
        val_labels=labels[val_idx],
        val_probabilities=val_probabilities,
        weights=parts.trainable.get_weights(),
        stopped=stopped,
        steps=step,
    )


def _evaluate(loop: _Loop, inputs: np.ndarray, labels: np.ndarray):
    """(mean loss, accuracy, probabilities `[n, classes]`) on held-out inputs."""
    loss, correct, probabilities = 0.0, 0.0, []
    for start in range(0, len(inputs), EVAL_BATCH):
        x, y = inputs[start : start + EVAL_BATCH], labels[start : start + EVAL_BATCH]
        batch_loss, right, p = loop.eval_step(x, y)
        loss += float(batch_loss)
        correct += float(right)
        probabilities.append(p.numpy())
    return loss / len(inputs), correct / len(inputs), np.concatenate(probabilities)


class _PictureTaker:
    """The first conv layer's filters and the probe photo's feature maps, at most every
    `PICTURE_SECONDS`; a pretrained network's are taken once (they do not change)."""

    def __init__(self, parts: _Parts, config: TrainConfig, probe: np.ndarray, base):
        self.probe = probe
        self.changes = base is None
        self.last = time.monotonic()
        model = parts.full if self.changes else base
        self.filters_layer = "conv1" if self.changes else "stem_conv"
        self.kernel = model.get_layer(self.filters_layer).kernel
        if self.changes:
            names = [f"relu{i}" for i in range(1, len(config.blocks) + 1)]
        else:
            names = list(PRETRAINED_MAP_LAYERS)
        self.names = names
        inside = keras.Model(model.input, [model.get_layer(n).output for n in names])
        self.maps = inside(probe[np.newaxis].astype(np.float32), training=False)
        self.inside = inside if self.changes else None

    def due(self) -> bool:
        return self.changes and time.monotonic() - self.last >= PICTURE_SECONDS

    def take(self, step: int) -> Pictures:
        self.last = time.monotonic()
        maps = self.maps
        if self.inside is not None:
            maps = self.inside(self.probe[np.newaxis].astype(np.float32), training=False)
        if not isinstance(maps, list | tuple):  # a model of one output returns it bare
            maps = [maps]
        return Pictures(
            filters_layer=self.filters_layer,
            filters=_scaled_filters(np.asarray(self.kernel)),
            feature_maps=tuple(
                _layer_maps(name, np.asarray(m)[0])
                for name, m in zip(self.names, maps, strict=True)
            ),
            probe=self.probe,
            step=step,
        )


# --- export ----------------------------------------------------------------------------------

_SCRIPT_HEAD = '''"""Builds and trains {what} with Keras, as the playground's CNN lab did.

The same layers and hyperparameters. Put your photos in one folder per class (the lab's classes
were {classes}), then:

    python train.py path/to/photos{extra_usage}

It prints the loss and accuracy of every epoch and saves the trained model as trained.keras.
"""

import argparse

import keras

IMAGE_SIZE = {config.size}
BATCH_SIZE = {config.batch_size}
EPOCHS = {config.epochs}
LEARNING_RATE = {config.lr!r}
VALIDATION_SPLIT = {config.validation_split!r}
SEED = {config.seed}

parser = argparse.ArgumentParser(description="Trains the CNN lab's model on a folder of photos.")
parser.add_argument("data_dir", help="a folder with one sub-folder of photos per class")
parser.add_argument("--epochs", type=int, default=EPOCHS)
parser.add_argument("--output", default="trained.keras")
{extra_args}args = parser.parse_args()

# Photos are cropped to their central square and resized, as in the lab; the classes are the
# sub-folders' names, in alphabetical order.
train_ds, val_ds = keras.utils.image_dataset_from_directory(
    args.data_dir,
    validation_split=VALIDATION_SPLIT,
    subset="both",
    seed=SEED,
    image_size=(IMAGE_SIZE, IMAGE_SIZE),
    crop_to_aspect_ratio=True,
    batch_size=BATCH_SIZE,
)
num_classes = len(train_ds.class_names)
'''

_SCRIPT_AUGMENT = """
# Random changes to the training photos only, new at every epoch.
augment = keras.Sequential(
    [
{layers}
    ],
    name="augment",
)
train_ds = train_ds.map(lambda x, y: (augment(x, training=True), y))
"""

_SCRIPT_SCRATCH = """
model = keras.Sequential(
    [
        keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), name="image"),
{layers}
    ],
    name="scratch_cnn",
)
"""

_SCRIPT_PRETRAINED = """
# EfficientNet-Lite0 and its ImageNet weights are not part of keras.applications: the network is
# taken from the model.keras downloaded with this script, up to its pooled features, with a new
# dense softmax on top.
pretrained = keras.saving.load_model(args.pretrained)
features = pretrained.get_layer("{feature_layer}").output
outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(features)
model = keras.Model(pretrained.input, outputs, name="{model}_cnn")
{freeze}"""

_FREEZE = {
    "transfer": (
        "# Transfer learning: only the new softmax learns.\n"
        "for layer in model.layers[:-1]:\n"
        "    layer.trainable = False\n"
    ),
    "finetune": (
        "# Fine-tuning: the new softmax and the layers after {cut} learn (from the downloaded\n"
        "# model's weights); batch norm keeps its ImageNet statistics.\n"
        "names = [layer.name for layer in model.layers]\n"
        'first = names.index("{cut}") + 1\n'
        "for i, layer in enumerate(model.layers):\n"
        "    trainable = i >= first and not isinstance(layer, keras.layers.BatchNormalization)\n"
        "    layer.trainable = trainable\n"
    ),
}

_SCRIPT_TAIL = """
model.compile(
    optimizer=keras.optimizers.Adam(LEARNING_RATE),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
model.summary()
model.fit(train_ds, validation_data=val_ds, epochs=args.epochs)
model.save(args.output)
print(f"Saved {args.output}")
"""


def export_script(config: TrainConfig, class_names: tuple[str, ...]) -> str:
    """A runnable Python script that builds and trains the same model with Keras.

    It reads a folder of photos with `keras.utils.image_dataset_from_directory` (one sub-folder
    per class, central square crop, the same image size, batch size and validation split),
    applies the same augmentation layers to the training batches, builds the same layers (for
    transfer and fine-tuning, EfficientNet-Lite0 comes from the downloaded `model.keras`) and
    trains them with Adam at the same learning rate for the same number of epochs.

    Args:
        config: The configuration trained with.
        class_names: The classes trained on, named in the script's docstring.

    Returns:
        The script's source.
    """
    check_config(config)
    pretrained = config.model != "scratch"
    text = _SCRIPT_HEAD.format(
        what="a small CNN from scratch"
        if not pretrained
        else "a softmax on EfficientNet-Lite0"
        + (" with its top block fine-tuned" if config.model == "finetune" else " (frozen)"),
        classes=", ".join(class_names),
        extra_usage=" [--pretrained model.keras]" if pretrained else "",
        config=config,
        extra_args=(
            'parser.add_argument("--pretrained", default="model.keras", help="the lab\'s model")\n'
            if pretrained
            else ""
        ),
    )
    augment = augmentation_specs(config.augment, config.size)
    if augment:
        text += _SCRIPT_AUGMENT.format(layers=_layer_lines(augment, config.size))
    if pretrained:
        text += _SCRIPT_PRETRAINED.format(
            feature_layer=FEATURE_LAYER,
            model=config.model,
            freeze=_FREEZE[config.model].format(cut=FINETUNE_FROM),
        )
    else:
        specs = scratch_specs(0, config.blocks)
        lines = _layer_lines(specs[:-1], config.size)
        head = '        keras.layers.Dense(num_classes, activation="softmax", name="predictions"),'
        text += _SCRIPT_SCRATCH.format(layers=f"{lines}\n{head}")
    return text + _SCRIPT_TAIL


def _layer_lines(specs: list[LayerSpec], size: int) -> str:
    """Layer specs as the lines of a list literal; the image size written as `IMAGE_SIZE`."""
    lines = []
    for spec in specs:
        source = spec.source()
        if spec.kind == "Resizing":
            source = "keras.layers.Resizing(IMAGE_SIZE, IMAGE_SIZE)"
        lines.append(f"        {source},")
    return "\n".join(lines)
