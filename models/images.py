"""Safe decoding of untrusted image bytes: size cap, header check with a pixel cap, content allowlist.

Every upload passes three gates before a single pixel is decoded:

1. its length against `max_bytes` (the web layer caps the body earlier still, while streaming);
2. its first bytes against an allowlist of formats (JPEG, PNG, GIF, BMP, WebP): the client's file
   name and `Content-Type` are never trusted, so a ZIP renamed `dog.png` is refused here;
3. the width and height in its header against `max_side` and `max_pixels`, so a 20000×20000 PNG
   of a few hundred kilobytes (a decompression bomb) is refused before Pillow allocates 400 MB.

Only then is the image decoded, by the one Pillow plugin its content named, first frame only.
"""

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
class DecodedImage:
    """An image that passed every gate.

    Attributes:
        pixels: uint8 array of shape `(height, width, channels)`, channels 3 (RGB) or 1 (gray).
        format: The format found in the content, one of `ALLOWED_FORMATS`.
        original_size: `(width, height)` declared by the file, before any downscaling.
    """

    pixels: np.ndarray
    format: str
    original_size: tuple[int, int]


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
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_large", f"The image declares too many pixels: {exc}") from exc
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
        if max_output_side is not None and fmt == "JPEG":
            im.draft(None, (max_output_side, max_output_side))
        try:
            im.load()
            pixels = _to_array(ImageOps.exif_transpose(im), channels, max_output_side)
        except Exception as exc:  # Truncated or corrupt data surfaces only while decoding.
            raise ImageRejected(
                "invalid", f"The {fmt} data is damaged or truncated: {exc}"
            ) from exc
    return DecodedImage(pixels=pixels, format=fmt, original_size=(width, height))


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
