"""models/image_pipeline.py: every step against numpy, Pillow or a closed form, on small images
made here; every call it names evaluated as TensorFlow code; decoding against tf.io.decode_image."""

import colorsys
import io
import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from models import image_pipeline as ip
from models.images import decode_image

LIMITS = {"max_bytes": 8 * 1024 * 1024, "max_pixels": 4096 * 4096, "max_side": 8192}
RNG = np.random.default_rng(7)
RGB8 = RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8)  # (height, width, channels)
RGBF = RGB8.astype(np.float32) / 255


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def decoded(data: bytes, side: int = 768):
    out = decode_image(data, **LIMITS, native_side=side)
    return out.native, out.file


def smooth(width: int = 40, height: int = 30) -> Image.Image:
    """Smooth colours: JPEG round trips stay within a few levels."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height) + 60], -1)
    return Image.fromarray(rgb.astype(np.uint8))


def same_as_its_call(applied: ip.Applied, x: np.ndarray) -> None:
    """The call a step names, run as TensorFlow code on its input, makes exactly its output."""
    again = eval(applied.call, {"tf": tf, "x": tf.constant(x)})  # noqa: S307 - our own strings
    np.testing.assert_array_equal(np.asarray(again), applied.x)


# --- Manipulations against numpy, Pillow or a closed form --------------------------------------


@pytest.mark.parametrize(
    ("op", "params", "expected"),
    [
        ("flip_left_right", {}, lambda x: x[:, ::-1]),
        ("flip_up_down", {}, lambda x: x[::-1]),
        ("rot90", {"k": 1}, lambda x: np.rot90(x, 1)),
        ("rot90", {"k": 3}, lambda x: np.rot90(x, 3)),
        ("central_crop", {"central_fraction": 0.5}, lambda x: x[3:9, 4:12]),
        (
            "crop_to_box",
            {"offset_height": 2, "offset_width": 3, "target_height": 5, "target_width": 7},
            lambda x: x[2:7, 3:10],
        ),
        (
            "pad_to_box",
            {"offset_height": 1, "offset_width": 2, "target_height": 15, "target_width": 20},
            lambda x: np.pad(x, ((1, 2), (2, 2), (0, 0))),
        ),
        (
            "crop_or_pad",
            {"target_height": 6, "target_width": 20},
            lambda x: np.pad(x[3:9], ((0, 0), (2, 2), (0, 0))),
        ),
        ("grayscale_to_rgb", {}, None),
        ("resize", {"height": 6, "width": 8, "method": "area"}, lambda x: _blocks(x, 2)),
        ("resize", {"height": 6, "width": 8, "method": "bilinear"}, lambda x: _blocks(x, 2)),
        ("resize", {"height": 6, "width": 8, "method": "nearest"}, lambda x: x[1::2, 1::2]),
        (
            "resize",
            {"height": 24, "width": 32, "method": "nearest"},
            lambda x: x.repeat(2, axis=0).repeat(2, axis=1),
        ),
    ],
)
def test_geometry_matches_numpy(op: str, params: dict, expected) -> None:
    x = RGBF[..., :1] if op == "grayscale_to_rgb" else RGBF
    applied = ip.apply(x, op, **params)
    want = np.repeat(x, 3, axis=-1) if expected is None else expected(x)
    np.testing.assert_allclose(applied.x, want, atol=1e-6)
    same_as_its_call(applied, x)


def _blocks(x: np.ndarray, n: int) -> np.ndarray:
    """The mean of each n×n block: area resampling, and bilinear at exactly half the size."""
    h, w, c = x.shape
    return x.reshape(h // n, n, w // n, n, c).mean(axis=(1, 3))


def test_bicubic_halving_uses_keys_weights() -> None:
    """TensorFlow's bicubic is Keys' cubic (a = −0.5): halfway between samples the weights are
    (−1, 9, 9, −1) / 16 on each axis."""
    x = RGBF[..., 0:1]
    out = ip.apply(x, "resize", height=6, width=8, method="bicubic").x
    w = np.array([-1, 9, 9, -1]) / 16
    for i in range(1, 5):  # inside: no edge clamping
        for j in range(1, 7):
            patch = x[2 * i - 1 : 2 * i + 3, 2 * j - 1 : 2 * j + 3, 0]
            assert out[i, j, 0] == pytest.approx(w @ patch @ w, abs=1e-5)


def test_resize_keeps_aspect_or_pads() -> None:
    x = np.ones((20, 40, 3), np.float32)
    assert ip.apply(x, "resize", height=10, width=10, fit="keep_aspect").x.shape == (5, 10, 3)
    padded = ip.apply(x, "resize", height=10, width=10, fit="pad")
    assert padded.x.shape == (10, 10, 3)
    rows = padded.x[:, 5, 0]
    np.testing.assert_array_equal(rows, [0, 0, 1, 1, 1, 1, 1, 0, 0, 0])  # 5 rows, padded 2 / 3
    assert padded.call == 'tf.image.resize_with_pad(x, 10, 10, method="bilinear")'
    stretched = ip.apply(x, "resize", height=10, width=10)
    assert "aspect ratio changed" in stretched.note
    assert "float32" in ip.apply(RGB8, "resize", height=6, width=8).note  # dtype changed
    assert ip.apply(RGB8, "resize", height=6, width=8, method="nearest").x.dtype == np.uint8


def test_shrinking_without_antialias_is_named_aliasing() -> None:
    x = RNG.random((64, 64, 1), np.float32)  # fine detail everywhere
    plain = ip.apply(x, "resize", height=8, width=8)
    assert "aliasing" in plain.note and plain.x.std() > 0.1  # the noise survives, resampled
    smooth_ = ip.apply(x, "resize", height=8, width=8, antialias=True)
    assert "aliasing" not in smooth_.note
    assert smooth_.x.std() < 0.08  # averaged towards mid-grey
    same_as_its_call(smooth_, x)


def test_colour_adjustments_on_floats_match_their_formulas() -> None:
    x = RGBF
    cases = {
        ("brightness", 0.25): x + 0.25,
        ("contrast", 1.5): (x - x.mean(axis=(0, 1))) * 1.5 + x.mean(axis=(0, 1)),
        ("gamma", 0.5): x**0.5,
    }
    for (op, value), want in cases.items():
        params = {"delta": value} if op == "brightness" else {}
        params |= {"contrast_factor": value} if op == "contrast" else {}
        params |= {"gamma": value} if op == "gamma" else {}
        applied = ip.apply(x, op, **params)
        np.testing.assert_allclose(applied.x, want, atol=1e-5, err_msg=op)
        same_as_its_call(applied, x)
    for gamma, gain in ((0.5, 1.0), (2.2, 0.8)):  # integers take a lookup table: the same
        same_as_its_call(ip.apply(RGB8, "gamma", gamma=gamma, gain=gain), RGB8)
        wide = RGB8.astype(np.uint16) * 257
        same_as_its_call(ip.apply(wide, "gamma", gamma=gamma, gain=gain), wide)
    gray = ip.apply(x, "grayscale")
    np.testing.assert_allclose(gray.x[..., 0], x @ [0.2989, 0.5870, 0.1140], atol=1e-5)
    same_as_its_call(gray, x)


@pytest.mark.parametrize(("op", "value"), [("saturation", 0.4), ("saturation", 2.0), ("hue", 0.3)])
def test_saturation_and_hue_match_colorsys(op: str, value: float) -> None:
    x = RGBF[:4, :5]
    params = {"saturation_factor": value} if op == "saturation" else {"delta": value}
    applied = ip.apply(x, op, **params)
    want = np.empty_like(x)
    for i, j in np.ndindex(x.shape[:2]):
        h, s, v = colorsys.rgb_to_hsv(*x[i, j])
        h, s = ((h + value) % 1, s) if op == "hue" else (h, min(s * value, 1.0))
        want[i, j] = colorsys.hsv_to_rgb(h, s, v)
    np.testing.assert_allclose(applied.x, want, atol=2e-5)
    same_as_its_call(applied, x)


def test_uint8_brightness_is_converted_shifted_and_clipped() -> None:
    applied = ip.apply(RGB8, "brightness", delta=0.3)
    want = np.clip(np.floor((RGB8 / 255 + 0.3) * 255.5), 0, 255)  # convert_image_dtype, saturated
    assert applied.x.dtype == np.uint8
    np.testing.assert_allclose(applied.x, want, atol=1)
    assert "clipped" in applied.note
    on_255 = ip.apply(RGB8.astype(np.float32), "brightness", delta=0.3)
    assert "almost invisible" in on_255.note


def test_jpeg_quality_matches_a_pillow_round_trip_and_reports_its_size() -> None:
    x = np.asarray(smooth(64, 48))
    sizes = {}
    for quality in (10, 90):
        applied = ip.apply(x, "jpeg_quality", jpeg_quality=quality)
        pillow = np.asarray(
            Image.open(io.BytesIO(encode(Image.fromarray(x), "JPEG", quality=quality)))
        )
        assert np.abs(applied.x.astype(int) - pillow).mean() < 3
        assert applied.jpeg_bytes == len(tf.io.encode_jpeg(x, quality=quality).numpy())
        assert f"{applied.jpeg_bytes:,} bytes" in applied.note
        sizes[quality] = applied.jpeg_bytes
        same_as_its_call(applied, x)
    assert sizes[10] < sizes[90]


def test_jpeg_quality_of_floats_past_0_1_says_they_were_clipped() -> None:
    x = np.asarray(smooth(64, 48))
    in_range = ip.apply(x.astype(np.float32) / 255, "jpeg_quality", jpeg_quality=50)
    on_255 = ip.apply(x.astype(np.float32) + 2, "jpeg_quality", jpeg_quality=50)

    assert "clipped" not in in_range.note and "clipped" not in ip.apply(x, "jpeg_quality").note
    assert "values outside it were clipped" in on_255.note
    assert on_255.x.min() > 0.9  # what TensorFlow gives: every value past 1, so white


def test_cast_and_convert_dtype_differ_in_scaling() -> None:
    cast = ip.apply(RGB8, "cast", dtype="float32")
    np.testing.assert_array_equal(cast.x, RGB8.astype(np.float32))
    converted = ip.apply(RGB8, "convert_dtype", dtype="float32")
    np.testing.assert_allclose(converted.x, RGB8 / 255, atol=1e-7)
    assert "divided by 255" in converted.note
    back = ip.apply(converted.x, "convert_dtype", dtype="uint8")
    np.testing.assert_array_equal(back.x, RGB8)
    black = ip.apply(RGBF, "cast", dtype="uint8")
    assert black.x.max() <= 1 and "become 0 or 1" in black.note
    wrapped = ip.apply(np.array([[[-1.0, 256.0, 300.0]]], np.float32), "cast", dtype="uint8")
    np.testing.assert_array_equal(wrapped.x, [[[255, 0, 44]]])  # modulo 256, as C casts do
    assert "wrap" in wrapped.note
    for applied, x in ((cast, RGB8), (converted, RGB8), (back, converted.x)):
        same_as_its_call(applied, x)


def test_clip() -> None:
    x = np.linspace(-2, 2, 12 * 16 * 3, dtype=np.float32).reshape(12, 16, 3)
    applied = ip.apply(x, "clip", clip_value_min=-0.5, clip_value_max=1.0)
    np.testing.assert_array_equal(applied.x, np.clip(x, -0.5, 1.0))
    same_as_its_call(applied, x)
    with pytest.raises(ValueError, match="clip_value_min must be at most clip_value_max"):
        ip.apply(x, "clip", clip_value_min=2.0, clip_value_max=1.0)


# --- Normalization -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("unit", lambda x: x / 255),
        ("symmetric", lambda x: x / 127.5 - 1),
        (
            "per_image",
            lambda x: (x - x.mean()) / max(x.std(), 1 / math.sqrt(x.size)),
        ),
        (
            "imagenet",
            lambda x: (x / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]),
        ),
    ],
)
def test_normalizations_match_numpy(mode: str, expected) -> None:
    applied = ip.normalize(RGB8, mode)
    assert applied.x.dtype == np.float32
    np.testing.assert_allclose(applied.x, expected(RGB8.astype(np.float64)), rtol=1e-5, atol=1e-5)
    same_as_its_call(applied, RGB8)
    if mode != "per_image":
        assert applied.call.startswith("(tf.cast(x, tf.float32) /") or applied.call.startswith(
            "tf.cast(x, tf.float32) /"
        )


def test_normalization_ranges_and_16_bit_white() -> None:
    assert ip.normalize(RGB8, "symmetric").x.min() >= -1
    full = np.array([[[0], [65535]]], np.uint16)
    np.testing.assert_allclose(ip.normalize(full, "unit", 65535).x.ravel(), [0, 1])
    assert "/ 65535.0" in ip.normalize(full, "unit", 65535).call
    twice = ip.normalize(RGBF, "unit")
    assert "already in [0, 1]" in twice.note and twice.x.max() < 0.01
    with pytest.raises(ValueError, match=r"needs 3 \(RGB\) channels"):
        ip.normalize(RGB8[..., :1], "imagenet")


def test_raw_inputs_make_the_first_gradient_hundreds_of_times_larger() -> None:
    photo = np.asarray(smooth(64, 64))
    sizes = ip.first_step_gradients(photo)
    assert set(sizes) == {"raw", *ip.NORMALIZATIONS}
    assert sizes["raw"].grad_norm > 100 * sizes["unit"].grad_norm
    assert sizes["raw"].update_ratio > 1 > 10 * sizes["symmetric"].update_ratio
    assert sizes["raw"].input_abs_mean > 50 and sizes["unit"].input_abs_mean <= 1


def test_first_gradient_matches_backprop_by_hand() -> None:
    """The same network, its gradient written out with numpy (micrograd's way of checking)."""
    photo = np.asarray(smooth(64, 64))
    got = ip.first_step_gradients(photo, seed=3)["unit"]
    small = tf.image.resize(photo.astype(np.float32), (32, 32), "area").numpy() / 255
    x = small.reshape(1, -1).astype(np.float64)
    rng = np.random.default_rng(3)
    w1 = rng.uniform(-1, 1, (3072, 16)) * math.sqrt(6 / (3072 + 16))
    w2 = rng.uniform(-1, 1, (16, 10)) * math.sqrt(6 / (16 + 10))
    pre = x @ w1.astype(np.float32)
    logits = np.maximum(pre, 0) @ w2.astype(np.float32)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    dlogits = p - np.eye(10)[0]
    dpre = (dlogits @ w2.astype(np.float32).T) * (pre > 0)
    grad = x.T @ dpre
    assert got.loss == pytest.approx(-math.log(p[0, 0]), rel=1e-4)
    assert got.grad_norm == pytest.approx(np.linalg.norm(grad), rel=1e-4)
    assert got.update_ratio == pytest.approx(
        0.01 * np.linalg.norm(grad) / np.linalg.norm(w1.astype(np.float32)), rel=1e-4
    )


# --- Decoding: what tf.io.decode_image gives ---------------------------------------------------


def _files() -> dict[str, bytes]:
    photo = smooth()
    rgba = photo.convert("RGBA")
    alpha = np.asarray(rgba).copy()
    alpha[..., 3] = np.arange(40, dtype=np.uint8)[np.newaxis, :] * 6
    wide = np.linspace(0, 65535, 40 * 30).reshape(30, 40).astype(np.uint16)
    frames = [Image.new("RGB", (8, 6), (i * 50, 20, 200)) for i in range(4)]
    paletted = photo.quantize(8)
    return {
        "jpeg": encode(photo, "JPEG", quality=95),
        "jpeg_gray": encode(photo.convert("L"), "JPEG", quality=95),
        "jpeg_cmyk": encode(photo.convert("CMYK"), "JPEG", quality=95),
        "png": encode(photo, "PNG"),
        "png_rgba": encode(Image.fromarray(alpha, "RGBA"), "PNG"),
        "png_gray_alpha": encode(photo.convert("LA"), "PNG"),
        "png_palette": encode(paletted, "PNG"),
        "png_palette_transparent": encode(paletted, "PNG", transparency=0),
        "png_gray": encode(photo.convert("L"), "PNG"),
        "png_1bit": encode(photo.convert("1"), "PNG"),
        "png_16bit": encode(Image.fromarray(wide), "PNG"),
        "png_16bit_rgb": tf.io.encode_png(np.stack([wide] * 3, -1)).numpy(),
        "gif": encode(paletted, "GIF"),
        "gif_transparent": encode(paletted, "GIF", transparency=0),
        "gif_animated": _animated(frames),
        "bmp": encode(photo, "BMP"),
        "bmp_palette": encode(paletted, "BMP"),
    }


def _animated(frames: list[Image.Image]) -> bytes:
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


FILES = _files()
LOSSY = ("jpeg", "jpeg_gray", "jpeg_cmyk")


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("channels", [0, 1, 3, 4])
def test_decode_matches_tensorflow(name: str, channels: int) -> None:
    """Pillow-made pixels equal TensorFlow's own decode (JPEG: within its IDCT's rounding).

    WebP is not compared: TensorFlow 2.21's WebP decoder corrupts memory on animated files,
    which is why the lab never lets TensorFlow decode an upload.
    """
    data = FILES[name]
    native, file = decoded(data)
    assert file.tf_shape == tuple(tf.io.decode_image(data).shape)
    if name.startswith("gif") and channels in (1, 4):
        return  # TensorFlow's GIF decoder gives 3 channels only
    try:
        want = tf.io.decode_image(data, channels=channels, expand_animations=False).numpy()
    except tf.errors.InvalidArgumentError:
        return  # e.g. an 8-bit BMP asked for 3 channels: TensorFlow refuses too
    got = ip.decode(native, file, channels=channels)
    quirk = channels == 4 and name in ("png_palette", "png_1bit")
    if quirk:
        # libpng's filler for a missing alpha is 2^bit_depth − 1 of the *index* depth in
        # TensorFlow (15 for a 4-bit palette, 1 for 1-bit): a quirk not copied; alpha is 255.
        want = np.concatenate([want[..., :3], np.full_like(want[..., :1], 255)], axis=-1)
    assert got.x.shape == want.shape and got.x.dtype == want.dtype
    # Gray from colour: libjpeg takes the stored luma, libpng rounds its own way.
    tolerance = 10 if name in LOSSY else 1 if channels == 1 and file.tf_channels >= 3 else 0
    assert np.abs(got.x.astype(int) - want).max() <= tolerance
    if tolerance == 0 and not quirk:
        again = eval(got.call, {"tf": tf, "data": data}).numpy()  # noqa: S307
        np.testing.assert_array_equal(again, got.x)


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
@pytest.mark.parametrize("name", ["png", "png_16bit", "png_gray_alpha"])
def test_decode_dtypes_match_tensorflow(name: str, dtype: str) -> None:
    data = FILES[name]
    native, file = decoded(data)
    got = ip.decode(native, file, dtype=dtype)
    want = tf.io.decode_image(data, dtype=getattr(tf, dtype), expand_animations=False).numpy()
    assert got.x.dtype == want.dtype
    np.testing.assert_allclose(got.x, want, atol=1e-7)
    assert f"dtype=tf.{dtype}" in got.call


def test_decode_notes_say_what_a_student_would_miss() -> None:
    def notes(name: str, **options) -> str:
        native, file = decoded(FILES[name])
        return ip.decode(native, file, **options).note

    assert "high byte" in notes("png_16bit")
    assert "8 bits here" in notes("png_16bit_rgb")
    assert "CMYK" in notes("jpeg_cmyk")
    assert "palette looked up" in notes("png_palette")
    assert "palette indices" in notes("bmp_palette")
    assert "first frame" in notes("gif_animated") and "[4, 6, 8, 3]" in notes("gif_animated")
    assert "come out black" in notes("gif_transparent")
    assert "alpha dropped" in notes("png_rgba", channels=3)
    assert notes("png") == ""


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_ignored_by_tensorflow_applied_on_request(orientation: int) -> None:
    stored = smooth(40, 30)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, "PNG", exif=exif)  # lossless: every pixel can be compared
    native, file = decoded(data)
    assert file.orientation == orientation
    raw = ip.decode(native, file)
    np.testing.assert_array_equal(raw.x, tf.io.decode_image(data).numpy())  # EXIF ignored
    assert ("EXIF orientation" in raw.note) is (orientation != 1)
    upright = ip.decode(native, file, apply_exif=True)
    viewer = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    np.testing.assert_array_equal(upright.x, viewer)
    again = eval(upright.call, {"tf": tf, "data": data}).numpy()  # noqa: S307
    np.testing.assert_array_equal(again, viewer)


def test_a_phone_jpeg_on_its_side() -> None:
    native, file = decoded(ip.sample_file("phone_photo"))
    assert file.orientation == 6 and native.shape == (256, 384, 3)
    upright = ip.decode(native, file, apply_exif=True)
    assert upright.x.shape == (384, 256, 3)
    assert upright.call.startswith("tf.image.rot90(tf.io.decode_image(")


# --- The pipeline and its snippet --------------------------------------------------------------

COURSE = [
    ("resize", {"height": 24, "width": 24}),
    ("cast", {"dtype": "float32"}),
    ("normalize", {"mode": "symmetric"}),
    ("batch", {}),
]


def test_the_course_pipeline_reports_every_stage() -> None:
    native, file = decoded(FILES["png"])
    stages = ip.run_pipeline(native, file, COURSE, channels=3)
    assert [s.op for s in stages] == ["decode", "resize", "cast", "normalize", "batch"]
    assert [s.shape for s in stages] == [
        (30, 40, 3),
        (24, 24, 3),
        (24, 24, 3),
        (24, 24, 3),
        (1, 24, 24, 3),
    ]
    assert [s.x.dtype.name for s in stages] == ["uint8", "float32", "float32", "float32", "float32"]
    assert stages[-1].x.min() >= -1 and stages[-1].x.max() <= 1
    assert stages[-1].call == "tf.expand_dims(x, 0)"


def test_the_snippet_runs_and_gives_the_last_stage(tmp_path, capsys) -> None:
    data = FILES["png_rgba"]
    (tmp_path / "image.png").write_bytes(data)
    native, file = decoded(data)
    stages = ip.run_pipeline(native, file, [*COURSE[:-1], ("flip_left_right", {})], channels=3)
    code = ip.snippet(stages, str(tmp_path / "image.png"))
    assert "# (24, 24, 3) float32" in code
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - the program a student copies
    np.testing.assert_allclose(scope["x"].numpy(), stages[-1].x, atol=1e-6)
    assert "(24, 24, 3)" in capsys.readouterr().out


def test_steps_that_cannot_run_say_where_and_why() -> None:
    native, file = decoded(FILES["png_gray"])
    with pytest.raises(ip.StepError, match=r"steps\[1\] \(saturation\).*needs 3 \(RGB\)") as err:
        ip.run_pipeline(native, file, [("flip_up_down", {}), ("saturation", {})])
    assert err.value.index == 2
    with pytest.raises(ip.StepError, match="batch .* comes last") as err:
        ip.run_pipeline(native, file, [("batch", {}), ("flip_up_down", {})])
    assert err.value.index == 1
    with pytest.raises(ip.StepError, match="offset_height \\+ target_height must be at most"):
        ip.run_pipeline(native, file, [("crop_to_box", {"offset_height": 20, "target_height": 20})])
    with pytest.raises(ValueError, match=r"resize.height must be an integer in \[1, 1024\]"):
        ip.apply(RGB8, "resize", height=0)
    with pytest.raises(ValueError, match=r"brightness.delta must be a finite number in \[-1, 1\]"):
        ip.apply(RGB8, "brightness", delta=math.nan)
    with pytest.raises(ValueError, match=r"resize.method must be one of"):
        ip.apply(RGB8, "resize", method="lanczos5")


def test_gamma_of_negative_values_is_nan_and_drawn_magenta() -> None:
    x = ip.normalize(RGB8, "symmetric").x
    applied = ip.apply(x, "gamma", gamma=0.5)
    assert np.isnan(applied.x).any() and "NaN" in applied.note
    seen = ip.inspect(applied.x)
    assert seen.non_finite == np.isnan(applied.x).sum()
    assert all(math.isfinite(c.mean) for c in seen.channels)
    pixels = ip.render(applied.x)
    nan_pixel = np.argwhere(np.isnan(applied.x).any(-1))[0]
    assert tuple(pixels[tuple(nan_pixel)]) == ip.NAN_COLOR


# --- Inspection and pictures -------------------------------------------------------------------


def test_statistics_and_histograms_match_numpy() -> None:
    seen = ip.inspect(RGB8, bins=256)
    for c, stats in enumerate(seen.channels):
        channel = RGB8[..., c].astype(np.float64)
        assert (stats.min, stats.max) == (channel.min(), channel.max())
        assert stats.mean == pytest.approx(channel.mean()) and stats.std == pytest.approx(
            channel.std()
        )
        np.testing.assert_array_equal(
            seen.histograms[c], np.bincount(RGB8[..., c].ravel(), minlength=256)
        )
    assert [c.name for c in seen.channels] == ["R", "G", "B"]
    assert (seen.histogram_low, seen.histogram_high) == (0, 256)
    coarse = ip.inspect(RGB8, bins=8).histograms
    np.testing.assert_array_equal(coarse, seen.histograms.reshape(3, 8, 32).sum(-1))
    x = ip.normalize(RGB8, "per_image").x
    seen = ip.inspect(x, bins=16)
    low, high = seen.histogram_low, seen.histogram_high
    for c in range(3):
        np.testing.assert_array_equal(
            seen.histograms[c], np.histogram(x[..., c], 16, (low, high))[0]
        )


@pytest.mark.parametrize(
    ("x", "kind", "low", "high"),
    [
        (RGB8, "sequential", 0, 255),
        (RGB8.astype(np.uint16) * 257, "sequential", 0, 65535),
        (RGBF, "sequential", 0, 1),
        (RGB8.astype(np.float32), "sequential", 0, 255),
        (RGBF * 2 - 1, "diverging", -1, 1),
        (RGBF * 6 - 3, "diverging", -3, 3),
    ],
)
def test_display_ranges(x: np.ndarray, kind: str, low: float, high: float) -> None:
    display = ip.display_range(x)
    assert (display.kind, display.low) == (kind, pytest.approx(low, abs=0.05))
    assert display.high == pytest.approx(high, abs=0.05)


def test_a_normalized_image_is_drawn_as_itself_never_black() -> None:
    symmetric = ip.normalize(RGB8, "symmetric").x
    drawn = ip.render(symmetric)
    assert np.abs(drawn.astype(int) - RGB8).max() <= 1  # [−1, 1] on a diverging scale = the image
    zero = ip.render(np.zeros((2, 2, 3), np.float32) - np.array([[[0, 0, 1]]], np.float32))
    assert tuple(zero[0, 0]) == (128, 128, 0)  # zero is mid-grey, −1 black
    standardized = ip.render(ip.normalize(RGB8, "per_image").x)
    assert standardized.mean() > 100  # a plain cast to uint8 would be mostly 0 and 255
    gray_alpha = ip.render(np.dstack([RGB8[..., :1], RGB8[..., 1:2]]))
    assert gray_alpha.shape == (12, 16, 4)
    np.testing.assert_array_equal(gray_alpha[..., 3], RGB8[..., 1])


def test_thumbnails_fit_and_pngs_decode() -> None:
    small = ip.thumbnail(np.zeros((300, 200, 4), np.uint8), 64)
    assert small.shape == (64, 43, 4)
    assert ip.thumbnail(RGB8, 64) is RGB8
    back = np.asarray(Image.open(io.BytesIO(ip.encode_png(RGB8))))
    np.testing.assert_array_equal(back, RGB8)


# --- Augmentation ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ip.AUGMENTATIONS)
def test_each_augmentation_reports_what_it_drew(name: str) -> None:
    """The drawn values, given to the deterministic tf.image call, remake the augmented image."""
    image = np.asarray(smooth(32, 24), np.float32) / 255
    batch = ip.augment(image, [(name, {})], seed=11, count=4)
    for item in batch:
        (draw,) = item.draws
        d = draw.drawn
        if name == "crop":
            h, w, _ = d["size"]
            want = image[
                d["offset_height"] : d["offset_height"] + h,
                d["offset_width"] : d["offset_width"] + w,
            ]
        elif name.startswith("flip"):
            flip = tf.image.flip_left_right if name == "flip_left_right" else tf.image.flip_up_down
            want = flip(image) if d["flipped"] else image
        else:
            want = _adjusted(name, image, d)
        np.testing.assert_allclose(item.x, np.clip(want, 0, 1), atol=1e-6)
        again = eval(draw.call, {"tf": tf, "x": tf.constant(image)})  # noqa: S307
        np.testing.assert_allclose(item.x, np.clip(again, 0, 1), atol=1e-6)


def _adjusted(name: str, image: np.ndarray, drawn: dict) -> tf.Tensor:
    """The deterministic tf.image call of an augmentation, given what it drew."""
    if name == "brightness":
        return tf.image.adjust_brightness(image, drawn["delta"])
    if name == "contrast":
        return tf.image.adjust_contrast(image, drawn["contrast_factor"])
    if name == "saturation":
        return tf.image.adjust_saturation(image, drawn["saturation_factor"])
    if name == "hue":
        return tf.image.adjust_hue(image, drawn["delta"])
    return tf.image.adjust_jpeg_quality(image, drawn["jpeg_quality"])


def test_augmentation_is_replayable_from_its_seed() -> None:
    image = np.asarray(smooth(32, 24), np.float32) / 255
    chosen = [(name, {}) for name in ("crop", "flip_left_right", "brightness", "hue")]
    first = ip.augment(image, chosen, seed=5, count=6)
    again = ip.augment(image, chosen, seed=5, count=6)
    other = ip.augment(image, chosen, seed=6, count=6)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.x, b.x)
        assert a.draws == b.draws
    assert [a.draws for a in first] != [a.draws for a in other]
    assert len({round(a.draws[2].drawn["delta"], 6) for a in first}) == 6  # each image draws anew
    deltas = [a.draws[2].drawn["delta"] for a in first]
    assert all(-0.2 <= d < 0.2 for d in deltas)


def test_the_augmentation_snippet_makes_the_same_batch(tmp_path) -> None:
    data = FILES["png"]
    (tmp_path / "image.png").write_bytes(data)
    chosen = [("crop", {"fraction": 0.75}), ("flip_left_right", {}), ("contrast", {})]
    native, file = decoded(data)
    image = ip.decode(native, file, channels=3, dtype="float32").x
    size = ip.fit_within(*image.shape[:2], 24)
    assert size == (18, 24)
    image = ip.apply(image, "resize", height=18, width=24, method="area").x
    batch = ip.augment(image, chosen, seed=9, count=3)
    code = ip.augment_snippet(
        chosen, seed=9, count=3, size=size, file_name=str(tmp_path / "image.png")
    )
    scope: dict = {}
    exec(code, scope)  # noqa: S102
    np.testing.assert_allclose(scope["batch"].numpy(), np.stack([a.x for a in batch]), atol=1e-6)


def test_augmentation_ranges_are_checked() -> None:
    image = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(ValueError, match="contrast.lower must be below contrast.upper"):
        ip.augment(image, [("contrast", {"lower": 1.5, "upper": 1.2})])
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2147483647\]"):
        ip.augment(image, [], seed=-1)
    with pytest.raises(ValueError, match="op must be one of"):
        ip.augment(image, [("blur", {})])


# --- Samples -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "mode"),
    [
        ("photo", "JPEG", "RGB"),
        ("phone_photo", "JPEG", "RGB"),
        ("cmyk", "JPEG", "CMYK"),
        ("logo", "PNG", "RGBA"),
        ("palette", "PNG", "P"),
        ("gray", "PNG", "L"),
        ("gray16", "PNG", "I;16"),
        ("animation", "GIF", "P"),
        ("bitmap", "BMP", "RGB"),
        ("webp", "WEBP", "RGB"),
    ],
)
def test_every_sample_is_the_file_its_title_says(name: str, fmt: str, mode: str) -> None:
    assert set(ip.SAMPLE_FILES) >= {name}
    data = ip.sample_file(name)
    assert data is ip.sample_file(name)  # made once
    native, file = decoded(data)
    assert (file.format, file.mode) == (fmt, mode)
    assert fmt.lower()[:3] in ip.SAMPLE_FILES[name].lower() or fmt == "JPEG"
    if name == "animation":
        assert file.frames == 6
    if name == "gray16":
        assert native.dtype == np.uint16 and native.max() > 255
    if name == "logo":
        assert native.shape[-1] == 4 and 0 < native[..., 3].mean() < 255
