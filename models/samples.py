"""Sample images the convolution lab starts from, generated here so no image files ship.

Every generator returns a float32 batch of shape `(batch, height, width, 3)` with values in
[0, 1], ready for `tf.nn.conv2d`.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SAMPLES = {
    "checkerboard": "Checkerboard",
    "shapes": "Shapes",
    "gradient": "Gradient",
    "text": "Text",
    "image_batch": "image_batch (2 tiny images)",
}
MIN_SIZE = 8
MAX_SIZE = 512
CHECKER_SQUARES = 8
TEXT = "TF"


def make_sample(name: str, size: int = 64) -> np.ndarray:
    """Draws one of the built-in sample images.

    Args:
        name: One of `SAMPLES`: `"checkerboard"` (8×8 black and white squares), `"shapes"` (a
            disc, a square and a triangle in colour), `"gradient"` (black on the left to white on
            the right), `"text"` (dark letters on white) or `"image_batch"` (the course's batch
            of two 2×3 RGB images, one green, one blue, whose size ignores `size`).
        size: Side of the square image in pixels, `MIN_SIZE` to `MAX_SIZE`. Defaults to 64.

    Returns:
        float32 array of shape `(1, size, size, 3)`, or `(2, 2, 3, 3)` for `"image_batch"`.
    """
    if name not in SAMPLES:
        raise ValueError(f"name must be one of {sorted(SAMPLES)}. Received: name={name!r}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be in [{MIN_SIZE}, {MAX_SIZE}]. Received: size={size}")
    if name == "image_batch":
        return _image_batch()
    pixels = _DRAWERS[name](size)
    return (pixels.astype(np.float32) / 255.0)[np.newaxis]


def _image_batch() -> np.ndarray:
    """The course's `image_batch`: two 2×3 images, all green then all blue, scaled to [0, 1]."""
    green = np.tile(np.array([0, 255, 0], np.float32), (2, 3, 1))
    blue = np.tile(np.array([0, 0, 255], np.float32), (2, 3, 1))
    return np.stack([green, blue]) / 255.0


def _checkerboard(size: int) -> np.ndarray:
    """uint8 (size, size, 3) board of CHECKER_SQUARES squares a side, top-left black."""
    cells = np.arange(size) * CHECKER_SQUARES // size
    board = ((cells[:, None] + cells[None, :]) % 2).astype(np.uint8) * 255
    return np.repeat(board[..., None], 3, axis=-1)


def _gradient(size: int) -> np.ndarray:
    """uint8 (size, size, 3) ramp from black at the left edge to white at the right."""
    ramp = np.round(np.linspace(0, 255, size)).astype(np.uint8)
    return np.repeat(np.tile(ramp, (size, 1))[..., None], 3, axis=-1)


def _shapes(size: int) -> np.ndarray:
    """uint8 (size, size, 3): a blue disc, an orange square and a green triangle on dark grey."""
    im = Image.new("RGB", (size, size), (40, 40, 40))
    d = ImageDraw.Draw(im)
    s = size / 64  # shapes are laid out on a 64-unit grid
    d.ellipse([6 * s, 6 * s, 30 * s, 30 * s], fill=(0, 114, 178))
    d.rectangle([36 * s, 8 * s, 58 * s, 30 * s], fill=(230, 159, 0))
    d.polygon([(32 * s, 36 * s), (56 * s, 58 * s), (8 * s, 58 * s)], fill=(0, 158, 115))
    return np.asarray(im, dtype=np.uint8)


def _text(size: int) -> np.ndarray:
    """uint8 (size, size, 3): the letters TEXT in near-black on white, centred."""
    im = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=max(6, round(size * 0.6)))
    d.text((size / 2, size / 2), TEXT, fill=(20, 20, 20), font=font, anchor="mm")
    return np.asarray(im, dtype=np.uint8)


_DRAWERS = {"checkerboard": _checkerboard, "shapes": _shapes, "gradient": _gradient, "text": _text}
