"""models/images.py: every gate, with fixtures generated in the test (no files shipped)."""

import io
import struct
import time
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from models.images import ALLOWED_FORMATS, ImageRejected, decode_image, sniff_format

LIMITS = {"max_bytes": 8 * 1024 * 1024, "max_pixels": 4096 * 4096, "max_side": 8192}


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width×height but carries a few hundred bytes: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    idat = zlib.compress(b"\x00" * (width + 1) * 4)  # the first rows only
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def photo(size=(40, 30)) -> Image.Image:
    x = np.linspace(0, 255, size[0], dtype=np.uint8)
    rgb = np.stack(np.broadcast_arrays(x[None, :], x[::-1][None, :], np.full((size[1], 1), 90)), -1)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


@pytest.mark.parametrize("fmt", ALLOWED_FORMATS)
def test_every_allowed_format_decodes_to_rgb(fmt: str) -> None:
    data = encode(photo(), fmt)
    assert sniff_format(data) == fmt
    out = decode_image(data, **LIMITS)
    assert out.format == fmt and out.original_size == (40, 30)
    assert out.pixels.shape == (30, 40, 3) and out.pixels.dtype == np.uint8
    gray = decode_image(data, **LIMITS, channels=1)
    assert gray.pixels.shape == (30, 40, 1)


def test_lossless_formats_keep_the_pixels() -> None:
    original = np.asarray(photo())
    for fmt in ("PNG", "BMP"):
        np.testing.assert_array_equal(decode_image(encode(photo(), fmt), **LIMITS).pixels, original)


def test_format_is_found_by_content_not_name() -> None:
    jpeg = encode(photo(), "JPEG")
    assert decode_image(jpeg, **LIMITS).format == "JPEG"  # whatever the client called it
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("dog.png", encode(photo(), "PNG"))
    with pytest.raises(ImageRejected, match="ZIP archive") as err:
        decode_image(buf.getvalue(), **LIMITS)  # a zip renamed .png
    assert err.value.kind == "unsupported_format"


@pytest.mark.parametrize(
    ("data", "kind", "words"),
    [
        (b"", "invalid", "empty"),
        (b"\x13\x37random bytes", "unsupported_format", "not a known image format"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', None, "SVG"),
        (b"  <!doctype html><html><body>hi</body></html>", "unsupported_format", "markup"),
        (b"%PDF-1.7\n...", "unsupported_format", "PDF"),
        (b"II*\x00\x08\x00\x00\x00", "unsupported_format", "TIFF"),
        (b"SIMPLE  =                    T", "unsupported_format", "FITS"),
        (b"%!PS-Adobe-3.0 EPSF-3.0", "unsupported_format", "PostScript"),
    ],
)
def test_non_images_are_rejected_with_a_reason(data: bytes, kind: str | None, words: str) -> None:
    with pytest.raises(ImageRejected, match=words) as err:
        decode_image(data, **LIMITS)
    assert err.value.kind == (kind or "unsupported_format")


def test_tiff_and_ico_images_are_not_allowed() -> None:
    for fmt in ("TIFF", "ICO"):
        with pytest.raises(ImageRejected) as err:
            decode_image(encode(photo(), fmt), **LIMITS)
        assert err.value.kind == "unsupported_format"


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    bomb = png_header(20000, 20000)
    assert len(bomb) < 2000
    start = time.perf_counter()
    with pytest.raises(ImageRejected, match="too many pixels|20000×20000") as err:
        decode_image(bomb, **LIMITS)
    assert err.value.kind == "too_large"
    assert time.perf_counter() - start < 0.5  # no 400-megapixel decode happened


@pytest.mark.parametrize(("width", "height"), [(5000, 5000), (9000, 10), (10, 8193)])
def test_pixel_and_side_caps(width: int, height: int) -> None:
    with pytest.raises(ImageRejected, match=f"{width}×{height}") as err:
        decode_image(png_header(width, height), **LIMITS)
    assert err.value.kind == "too_large"
    assert "16,777,216 pixels and 8192 per side" in err.value.reason


def test_byte_cap() -> None:
    data = encode(photo(), "PNG")
    with pytest.raises(ImageRejected, match="at most 100 are accepted") as err:
        decode_image(data, **(LIMITS | {"max_bytes": 100}))
    assert err.value.kind == "too_large"
    assert decode_image(data, **(LIMITS | {"max_bytes": len(data)})).format == "PNG"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_truncated_files_are_rejected(fmt: str) -> None:
    noisy = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8))
    data = encode(noisy, fmt)
    with pytest.raises(ImageRejected, match="damaged|truncated") as err:
        decode_image(data[: len(data) // 2], **LIMITS)
    assert err.value.kind == "invalid"


def test_jpeg_without_end_marker_and_png_with_bad_crc() -> None:
    noisy = Image.fromarray(np.random.default_rng(2).integers(0, 255, (32, 32, 3), np.uint8))
    jpeg = encode(noisy, "JPEG")
    with pytest.raises(ImageRejected):
        decode_image(jpeg[:-200], **LIMITS)
    png = bytearray(encode(noisy, "PNG"))
    png[29] ^= 0xFF  # inside the IHDR chunk: its CRC no longer matches
    with pytest.raises(ImageRejected) as err:
        decode_image(bytes(png), **LIMITS)
    assert err.value.kind == "invalid"


def test_one_pixel_images_work() -> None:
    for fmt in ("PNG", "JPEG"):
        out = decode_image(encode(Image.new("RGB", (1, 1), (200, 10, 10)), fmt), **LIMITS)
        assert out.pixels.shape == (1, 1, 3)


def test_modes_are_normalised() -> None:
    wide = np.array([[0, 32896, 65535]], np.uint16)
    sixteen = decode_image(encode(Image.fromarray(wide), "PNG"), **LIMITS, channels=1)
    np.testing.assert_array_equal(sixteen.pixels[..., 0], [[0, 128, 255]])
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # one opaque red pixel, the rest fully transparent
    out = decode_image(encode(Image.fromarray(rgba), "PNG"), **LIMITS).pixels
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[1, 1], [255, 255, 255])  # transparency over white
    cmyk = decode_image(encode(photo().convert("CMYK"), "JPEG"), **LIMITS)
    assert cmyk.pixels.shape == (30, 40, 3)
    gray = decode_image(encode(photo().convert("L"), "JPEG"), **LIMITS)
    assert gray.pixels.shape == (30, 40, 3)
    paletted = decode_image(encode(photo().convert("P"), "GIF"), **LIMITS)
    assert paletted.pixels.shape == (30, 40, 3)


def test_exif_rotation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = decode_image(encode(photo((40, 30)), "JPEG", exif=exif), **LIMITS)
    assert out.pixels.shape == (40, 30, 3)
    assert out.original_size == (40, 30)


def test_animated_gif_decodes_its_first_frame_only() -> None:
    frames = [Image.new("RGB", (8, 8), (i * 50, 0, 0)) for i in range(5)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    out = decode_image(buf.getvalue(), **LIMITS)
    assert out.pixels.shape == (8, 8, 3)
    assert out.pixels[0, 0, 0] == 0


def test_large_images_are_shrunk_keeping_their_aspect() -> None:
    for fmt in ("JPEG", "PNG"):
        out = decode_image(encode(photo((1600, 1200)), fmt), **LIMITS, max_output_side=400)
        assert out.pixels.shape == (300, 400, 3)
        assert out.original_size == (1600, 1200)
    small = decode_image(encode(photo((40, 30)), "PNG"), **LIMITS, max_output_side=400)
    assert small.pixels.shape == (30, 40, 3)  # never enlarged
