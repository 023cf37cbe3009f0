"""models/images.py: every gate, with fixtures generated in the test (no files shipped)."""

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from models.images import ALLOWED_FORMATS, ImageRejected, decode_image, orient, sniff_format

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


@pytest.mark.parametrize("side", [20000, 30000])
def test_a_decompression_bomb_is_refused_from_its_header(side: int) -> None:
    bomb = png_header(side, side)  # a few hundred bytes: only the header can be read
    assert len(bomb) < 2000
    with pytest.raises(ImageRejected) as err:
        decode_image(bomb, **LIMITS)
    assert err.value.kind == "too_large"
    assert err.value.reason.endswith("16,777,216 pixels and 8192 per side are accepted.")


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


def _animated_gif(count: int, size=(8, 6)) -> bytes:
    frames = [Image.new("RGB", size, (i * 40, 90, 200)) for i in range(count)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "facts"),
    [
        (encode(photo(), "JPEG"), ("JPEG", "RGB", 8, 1, False, (30, 40, 3))),
        (encode(photo().convert("L"), "JPEG"), ("JPEG", "L", 8, 1, False, (30, 40, 1))),
        (encode(photo().convert("CMYK"), "JPEG"), ("JPEG", "CMYK", 8, 1, False, (30, 40, 3))),
        (encode(photo().convert("RGBA"), "PNG"), ("PNG", "RGBA", 8, 1, True, (30, 40, 4))),
        (encode(photo().convert("LA"), "PNG"), ("PNG", "LA", 8, 1, True, (30, 40, 2))),
        (encode(photo().convert("P"), "PNG"), ("PNG", "P", 8, 1, False, (30, 40, 3))),
        (
            encode(photo().convert("P"), "PNG", transparency=0),
            ("PNG", "P", 8, 1, True, (30, 40, 4)),
        ),
        (encode(photo().convert("1"), "PNG"), ("PNG", "1", 1, 1, False, (30, 40, 1))),
        (
            encode(Image.fromarray(np.full((30, 40), 40000, np.uint16)), "PNG"),
            ("PNG", "I;16", 16, 1, False, (30, 40, 1)),
        ),
        (_animated_gif(5), ("GIF", "P", 8, 5, False, (5, 6, 8, 3))),
        (encode(photo(), "BMP"), ("BMP", "RGB", 8, 1, False, (30, 40, 3))),
        (encode(photo().convert("P"), "BMP"), ("BMP", "P", 8, 1, False, (30, 40, 1))),
        (encode(photo(), "WEBP"), ("WEBP", "RGB", 8, 1, False, (1, 30, 40, 3))),
    ],
)
def test_the_file_is_described_from_its_header(data: bytes, facts: tuple) -> None:
    file = decode_image(data, **LIMITS).file
    fmt, mode, bits, frames, alpha, tf_shape = facts
    assert (file.format, file.mode, file.bit_depth, file.frames) == (fmt, mode, bits, frames)
    assert (file.has_alpha, file.tf_shape, file.tf_dtype) == (alpha, tf_shape, "uint8")
    assert file.bytes == len(data) and file.orientation == 1


def test_a_16_bit_colour_png_says_16_bits() -> None:
    wide = np.full((4, 5, 3), 40000, np.uint16)
    file = decode_image(tf.io.encode_png(wide).numpy(), **LIMITS).file
    assert (file.mode, file.bit_depth, file.tf_channels) == ("RGB", 16, 3)


def test_the_exif_orientation_is_read_and_junk_is_upright() -> None:
    for tag, orientation in ((6, 6), (8, 8), (0, 1), (42, 1)):
        exif = Image.Exif()
        exif[0x0112] = tag
        assert decode_image(encode(photo(), "JPEG", exif=exif), **LIMITS).file.orientation == (
            orientation
        )


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_turns_pixels_as_a_photo_viewer_does(orientation: int) -> None:
    stored = np.asarray(photo((5, 3)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    with Image.open(io.BytesIO(encode(Image.fromarray(stored), "PNG", exif=exif))) as im:
        viewer = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(orient(stored, orientation), viewer)
    with pytest.raises(ValueError, match="orientation must be 1 to 8"):
        orient(stored, 9)


def test_the_native_copy_is_tensorflows_decode_reduced() -> None:
    rgba = np.asarray(photo((1600, 1200)).convert("RGBA")).copy()
    rgba[:, :800, 3] = 0  # the left half transparent: its colour is hidden, not gone
    data = encode(Image.fromarray(rgba), "PNG")
    out = decode_image(data, **LIMITS, max_output_side=300, native_side=400)
    assert out.pixels.shape == (225, 300, 3)  # what every lab computes on, unchanged
    assert out.native.shape == (300, 400, 4) and out.native.dtype == np.uint8
    full = tf.io.decode_image(data).numpy().astype(np.float32)
    area = tf.image.resize(full, (300, 400), method="area").numpy()
    # Within rounding everywhere: a premultiplied resize would have blackened the hidden half.
    assert np.abs(out.native.astype(np.float32) - area).max() <= 1
    assert out.native[:, :190, 1].mean() > 150  # the hidden colour (bright green) is there
    assert decode_image(data, **LIMITS).native is None  # only when asked


def test_the_native_copy_keeps_16_bits_and_jpeg_drafts_still_fit() -> None:
    ramp = np.linspace(0, 65535, 900 * 1200).reshape(900, 1200).astype(np.uint16)
    out = decode_image(encode(Image.fromarray(ramp), "PNG"), **LIMITS, native_side=300)
    assert out.native.shape == (225, 300, 1) and out.native.dtype == np.uint16
    assert out.native.max() > 60000
    jpeg = encode(photo((4000, 3000)), "JPEG")
    out = decode_image(jpeg, **LIMITS, max_output_side=512, native_side=768)
    assert out.pixels.shape == (384, 512, 3) and out.native.shape == (576, 768, 3)
    assert out.file.width == 4000  # the header's size, not the reduced decode's


def test_a_truncated_animation_keeps_its_first_frame_or_is_refused() -> None:
    data = _animated_gif(6, (64, 48))
    for cut in (len(data) // 2, len(data) - 20):
        try:
            out = decode_image(data[:cut], **LIMITS, native_side=64)
        except ImageRejected as exc:
            assert exc.kind == "invalid"
        else:
            assert out.native.shape == (48, 64, 3) and 1 <= out.file.frames <= 6
