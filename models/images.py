"""Safe decoding of untrusted image bytes: size cap, header check with a pixel cap, content allowlist.

Every upload passes three gates before a single pixel is decoded:

1. its length against `max_bytes` (the web layer caps the body earlier still, while streaming);
2. its first bytes against an allowlist of formats (JPEG, PNG, GIF, BMP, WebP): the client's file
   name and `Content-Type` are never trusted, so a ZIP renamed `dog.png` is refused here;
3. the width and height in its header against `max_side` and `max_pixels`, so a 20000×20000 PNG
   of a few hundred kilobytes (a decompression bomb) is refused before Pillow allocates 400 MB.

Only then is the image decoded, by the one Pillow plugin its content named, first frame only.

Besides the RGB pixels every lab computes on, a decode reports what the file is (`ImageFile`:
mode, bit depth, frames, EXIF orientation) and can keep a `native` copy: the pixels as
`tf.io.decode_image` gives them — the file's own channels (gray, gray + alpha, RGB, RGBA) and
16 bits kept, EXIF ignored. TensorFlow itself never decodes untrusted bytes here: its WebP decoder
(TensorFlow 2.21) corrupts memory on an animated WebP and takes the whole process down.
"""

import math
from dataclasses import dataclass
from io import BytesIO

import numpy as np
from PIL import Image, ImageOps

ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP")
# Leading bytes of the allowed formats (WebP is checked apart: "RIFF", a size, then "WEBP").
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)
# Formats people send by mistake, named in the refusal so the reason is useful.
_KNOWN_OTHERS = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"%PDF", "a PDF document"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x00\x00\x01\x00", "an ICO icon"),
    (b"SIMPLE", "a FITS file"),
    (b"%!PS", "a PostScript file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
)
# 16-bit and 32-bit integer modes, scaled down to 8 bits rather than clipped.
_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
EXIF_ORIENTATION_TAG = 0x0112
# EXIF orientation → what a viewer does to show the photo upright, and the same with tf.image.
ORIENTATIONS = {
    1: ("upright", "{x}"),
    2: ("mirror left–right to display", "tf.image.flip_left_right({x})"),
    3: ("rotate 180° to display", "tf.image.rot90({x}, k=2)"),
    4: ("mirror top–bottom to display", "tf.image.flip_up_down({x})"),
    5: ("mirror along the main diagonal to display", "tf.image.transpose({x})"),
    6: ("rotate 90° clockwise to display", "tf.image.rot90({x}, k=3)"),
    7: (
        "mirror along the other diagonal to display",
        "tf.image.rot90(tf.image.transpose({x}), k=2)",
    ),
    8: ("rotate 90° counter-clockwise to display", "tf.image.rot90({x}, k=1)"),
}
# Pillow's modes, as a student reads them.
MODES = {
    "1": "1-bit black and white",
    "L": "8-bit grayscale",
    "LA": "8-bit grayscale with alpha",
    "P": "palette: each pixel an 8-bit index into a table of colours",
    "PA": "palette with alpha",
    "RGB": "8-bit red, green, blue",
    "RGBA": "8-bit red, green, blue and alpha (transparency)",
    "CMYK": "cyan, magenta, yellow, black: a print file",
    "YCbCr": "luma and two chroma channels",
    "I;16": "16-bit grayscale",
    "I;16B": "16-bit grayscale",
    "I;16L": "16-bit grayscale",
    "I;16N": "16-bit grayscale",
    "I": "32-bit integer grayscale",
}


class ImageRejected(ValueError):
    """An upload that is not a safe, decodable image of an allowed format.

    Args:
        kind: `"too_large"` (bytes or pixels over a limit), `"unsupported_format"` (not
            JPEG/PNG/GIF/BMP/WebP by content) or `"invalid"` (empty, damaged or truncated).
        reason: A sentence for the user that says what was wrong and what is allowed.
    """

    KINDS = ("too_large", "unsupported_format", "invalid")

    def __init__(self, kind: str, reason: str):
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}. Received: kind={kind!r}")
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class ImageFile:
    """What an image file holds, from its header, and what `tf.io.decode_image` makes of it.

    Attributes:
        format: The format found in the content, one of `ALLOWED_FORMATS`.
        bytes: The file's length.
        mode: Pillow's mode (`"RGB"`, `"RGBA"`, `"P"`, `"L"`, `"LA"`, `"1"`, `"I;16"`,
            `"CMYK"`…); `MODES` says what each means.
        width: Width as stored, before any EXIF orientation.
        height: Height as stored.
        bit_depth: Bits per channel: 1, 8 or 16.
        frames: Frames in the file: more than 1 for an animated GIF or WebP.
        orientation: The EXIF orientation, 1 (upright or no tag) to 8; see `ORIENTATIONS`.
        has_alpha: Whether the file has transparency (an alpha channel or a transparent
            palette colour).
        tf_channels: The channels `tf.io.decode_image(data)` gives: 1, 2, 3 or 4.
    """

    format: str
    bytes: int
    mode: str
    width: int
    height: int
    bit_depth: int
    frames: int
    orientation: int
    has_alpha: bool
    tf_channels: int

    @property
    def tf_shape(self) -> tuple[int, ...]:
        """What `tf.io.decode_image(data)` returns: GIF and WebP come with a frames axis."""
        shape = (self.height, self.width, self.tf_channels)
        return (self.frames, *shape) if self.format in ("GIF", "WEBP") else shape

    @property
    def tf_dtype(self) -> str:
        """`tf.io.decode_image`'s default dtype: uint8, even for a 16-bit PNG (high byte kept)."""
        return "uint8"


@dataclass(frozen=True)
class DecodedImage:
    """An image that passed every gate.

    Attributes:
        pixels: uint8 array of shape `(height, width, channels)`, channels 3 (RGB) or 1 (gray).
        format: The format found in the content, one of `ALLOWED_FORMATS`.
        original_size: `(width, height)` declared by the file, before any downscaling.
        file: What the file is (`ImageFile`).
        native: With `native_side` only: uint8, or uint16 for a 16-bit grayscale file, of shape
            `(height, width, file.tf_channels)`: the first frame as `tf.io.decode_image` gives
            it (EXIF ignored), shrunk so that neither side exceeds `native_side`.
    """

    pixels: np.ndarray
    format: str
    original_size: tuple[int, int]
    file: ImageFile | None = None
    native: np.ndarray | None = None


def sniff_format(data: bytes) -> str:
    """Names the image format of `data` from its first bytes, ignoring any file name.

    Args:
        data: The raw bytes of an upload.

    Returns:
        One of `ALLOWED_FORMATS`.

    Raises:
        ImageRejected: `"invalid"` if `data` is empty, `"unsupported_format"` if the content is
            not one of the allowed formats (the reason names what it looks like, if known).
    """
    if not data:
        raise ImageRejected("invalid", "The file is empty (0 bytes).")
    for signature, fmt in _SIGNATURES:
        if data.startswith(signature):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    allowed = ", ".join(ALLOWED_FORMATS)
    for signature, what in _KNOWN_OTHERS:
        if data.startswith(signature):
            raise ImageRejected(
                "unsupported_format", f"The file is {what}, not an image. Allowed: {allowed}."
            )
    if data.lstrip()[:1] == b"<":
        raise ImageRejected(
            "unsupported_format",
            f"The file is text markup (SVG, HTML or XML), not an image. Allowed: {allowed}.",
        )
    raise ImageRejected(
        "unsupported_format", f"The file's content is not a known image format. Allowed: {allowed}."
    )


def decode_image(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    max_side: int,
    channels: int = 3,
    max_output_side: int | None = None,
    native_side: int | None = None,
) -> DecodedImage:
    """Decodes untrusted bytes into pixels, refusing anything over a limit before decoding it.

    EXIF rotation is applied, transparency is composited over white, 16-bit images are scaled
    to 8 bits, and only the first frame of an animated GIF or WebP is decoded.

    Args:
        data: The raw bytes of an upload.
        max_bytes: Largest accepted length of `data`, in bytes.
        max_pixels: Largest accepted `width * height` declared in the header.
        max_side: Largest accepted width or height declared in the header.
        channels: 3 for RGB, 1 for grayscale. Defaults to 3.
        max_output_side: If given, the decoded image is shrunk (aspect kept) so that neither side
            exceeds it; JPEGs are then decoded at a reduced scale directly. Defaults to `None`.
        native_side: If given, `native` is kept too, at most this many pixels a side. Defaults
            to `None`.

    Returns:
        A `DecodedImage` whose `pixels` are uint8 of shape `(height, width, channels)`.

    Raises:
        ImageRejected: With `kind` `"too_large"`, `"unsupported_format"` or `"invalid"`.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3. Received: channels={channels}")
    if len(data) > max_bytes:
        raise ImageRejected(
            "too_large", f"The file is {len(data):,} bytes; at most {max_bytes:,} are accepted."
        )
    fmt = sniff_format(data)
    try:
        # `formats` stops Pillow from trying any other plugin on these bytes.
        im = Image.open(BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:  # Pillow's own cap, far above ours
        raise ImageRejected(
            "too_large",
            f"The image declares over {2 * Image.MAX_IMAGE_PIXELS:,} pixels; at most "
            f"{max_pixels:,} pixels and {max_side} per side are accepted.",
        ) from exc
    except Exception as exc:  # Pillow's plugins raise many types for a damaged header.
        raise ImageRejected("invalid", f"The {fmt} header is damaged or truncated: {exc}") from exc
    with im:
        width, height = im.size
        if width > max_side or height > max_side or width * height > max_pixels:
            raise ImageRejected(
                "too_large",
                f"The image is {width}×{height} = {width * height:,} pixels; at most "
                f"{max_pixels:,} pixels and {max_side} per side are accepted.",
            )
        if width < 1 or height < 1:
            raise ImageRejected("invalid", f"The image is {width}×{height}: it has no pixels.")
        sides = [side for side in (max_output_side, native_side) if side is not None]
        try:
            file = _describe(im, fmt, data)  # before `draft`, which shrinks `im.size`
            if sides and fmt == "JPEG":
                # The DCT scale (1/2, 1/4, 1/8) that still covers the largest output wanted.
                scale = min(1.0, max(sides) / max(width, height))
                im.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
            im.load()
            native = None if native_side is None else _shrink(_native(im, file), native_side)
            pixels = _to_array(ImageOps.exif_transpose(im), channels, max_output_side)
        except Exception as exc:  # Truncated or corrupt data surfaces only while decoding.
            raise ImageRejected(
                "invalid", f"The {fmt} data is damaged or truncated: {exc}"
            ) from exc
    return DecodedImage(pixels, fmt, (width, height), file, native)


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turns pixels stored with an EXIF orientation upright, as a photo viewer shows them.

    Args:
        pixels: Array of shape `(height, width, channels)`, as stored in the file.
        orientation: The EXIF orientation, 1 to 8 (`ORIENTATIONS`).

    Returns:
        A view of `pixels` turned upright: height and width swap for orientations 5 to 8.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be 1 to 8. Received: orientation={orientation!r}")
    if orientation in (5, 7):
        pixels = pixels.transpose(1, 0, 2)
    turns = {3: 2, 6: 3, 7: 2, 8: 1}.get(orientation, 0)  # counter-clockwise, as tf.image.rot90
    pixels = np.rot90(pixels, turns)
    if orientation == 2:
        pixels = pixels[:, ::-1]
    elif orientation == 4:
        pixels = pixels[::-1]
    return pixels


def _describe(im: Image.Image, fmt: str, data: bytes) -> ImageFile:
    """The file's facts from its header (a GIF's or WebP's frames are counted)."""
    try:
        orientation = int(im.getexif().get(EXIF_ORIENTATION_TAG, 1))
    except Exception:  # an unreadable EXIF block is no reason to refuse the pixels
        orientation = 1
    has_alpha = "A" in im.getbands() or "transparency" in im.info
    return ImageFile(
        format=fmt,
        bytes=len(data),
        mode=im.mode,
        width=im.width,
        height=im.height,
        bit_depth=_bit_depth(im, fmt, data),
        frames=getattr(im, "n_frames", 1),
        orientation=orientation if orientation in ORIENTATIONS else 1,
        has_alpha=has_alpha,
        tf_channels=_tf_channels(im, fmt, data, has_alpha),
    )


def _bit_depth(im: Image.Image, fmt: str, data: bytes) -> int:
    """Bits per channel; a PNG says it in its header (Pillow reads 16-bit colour as 8-bit)."""
    if fmt == "PNG" and im.mode != "P":
        return data[24]  # IHDR's bit depth
    return 1 if im.mode == "1" else 16 if im.mode in _WIDE_MODES else 8


def _tf_channels(im: Image.Image, fmt: str, data: bytes, has_alpha: bool) -> int:
    """The channels TensorFlow's decoder for this format gives when asked for none in particular."""
    if fmt == "GIF":
        return 3  # colours looked up; transparency dropped (transparent pixels come out black)
    if fmt == "BMP":
        header = int.from_bytes(data[14:18], "little")
        bits = int.from_bytes(data[28:30] if header >= 40 else data[24:26], "little")
        return {8: 1, 32: 4}.get(bits, 3)  # 8-bit: TensorFlow reads the palette *indices*
    if im.mode in ("1", "L", *_WIDE_MODES):
        return 1
    if im.mode == "LA":
        return 2
    return 4 if has_alpha else 3


def _native(im: Image.Image, file: ImageFile) -> np.ndarray:
    """(H, W, tf_channels) pixels of a loaded image as TensorFlow decodes them, 16 bits kept."""
    if im.mode in _WIDE_MODES:
        return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)[..., np.newaxis]
    if file.format == "BMP" and file.tf_channels == 1:
        return np.asarray(im)[..., np.newaxis]  # palette indices, or gray levels
    if file.format == "GIF":
        rgba = np.asarray(im.convert("RGBA"))
        return rgba[..., :3] * (rgba[..., 3:] > 0).astype(np.uint8)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[file.tf_channels]
    return np.asarray(im.convert(mode)).reshape(im.height, im.width, file.tf_channels)


def _shrink(pixels: np.ndarray, side: int) -> np.ndarray:
    """Area-averages (H, W, C) pixels so that neither side exceeds `side`; channel by channel, so
    that the colour under a transparent pixel is kept as TensorFlow keeps it."""
    height, width, channels = pixels.shape
    if max(height, width) <= side:
        return pixels
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if pixels.dtype == np.uint16:
        band = Image.fromarray(pixels[..., 0].astype(np.float32), "F")
        out = np.asarray(band.resize(size, Image.Resampling.BOX, reducing_gap=2.0))
        return np.clip(np.rint(out), 0, 65535).astype(np.uint16)[..., np.newaxis]
    if channels == 3:
        return np.asarray(
            Image.fromarray(pixels).resize(size, Image.Resampling.BOX, reducing_gap=2.0)
        )
    bands = [
        np.asarray(
            Image.fromarray(pixels[..., c]).resize(size, Image.Resampling.BOX, reducing_gap=2.0)
        )
        for c in range(channels)
    ]
    return np.stack(bands, axis=-1)


def _to_array(im: Image.Image, channels: int, max_side: int | None) -> np.ndarray:
    """uint8 (H, W, channels) pixels of a loaded image, shrunk to fit `max_side`."""
    if im.mode in _WIDE_MODES:
        wide = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(np.round(wide / 257.0), 0, 255).astype(np.uint8), "L")
    if "A" in im.getbands() or "transparency" in im.info:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    im = im.convert("RGB" if channels == 3 else "L")
    if max_side is not None:
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    pixels = np.asarray(im, dtype=np.uint8)
    return pixels if channels == 3 else pixels[..., np.newaxis]
