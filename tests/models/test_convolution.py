"""models/convolution.py against direct numpy loops, closed forms and tf.GradientTape."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import convolution as conv
from models.samples import SAMPLES, make_sample


def _reference_conv2d(images, kernels, stride, padding, mode):
    """Direct loop: zero-pad as TensorFlow documents, slide, multiply and sum over channels."""
    n, h, w, c = images.shape
    count, kh, kw = kernels.shape
    if mode == "convolution":
        kernels = kernels[:, ::-1, ::-1]
    if padding == "SAME":
        oh, ow = math.ceil(h / stride), math.ceil(w / stride)
        ph = max((oh - 1) * stride + kh - h, 0)
        pw = max((ow - 1) * stride + kw - w, 0)
        top, left = ph // 2, pw // 2
        images = np.pad(images, ((0, 0), (top, ph - top), (left, pw - left), (0, 0)))
    else:
        oh, ow = math.ceil((h - kh + 1) / stride), math.ceil((w - kw + 1) / stride)
    out = np.zeros((n, oh, ow, count))
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                patch = images[b, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
                for k in range(count):
                    out[b, i, j, k] = np.sum(patch * kernels[k][:, :, None])
    return out


def _reference_pool(maps, pool, window, stride, padding):
    """Direct loop; SAME pads with nothing: max and mean over the cells that exist."""
    n, h, w, c = maps.shape
    if padding == "SAME":
        oh, ow = math.ceil(h / stride), math.ceil(w / stride)
        top = max((oh - 1) * stride + window - h, 0) // 2
        left = max((ow - 1) * stride + window - w, 0) // 2
    else:
        oh, ow = math.ceil((h - window + 1) / stride), math.ceil((w - window + 1) / stride)
        top = left = 0
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            y0, x0 = i * stride - top, j * stride - left
            cells = maps[:, max(y0, 0) : y0 + window, max(x0, 0) : x0 + window, :]
            reduce = np.max if pool == "max" else np.mean
            out[:, i, j, :] = reduce(cells, axis=(1, 2))
    return out


@st.composite
def conv_cases(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    padding = draw(st.sampled_from(conv.PADDINGS))
    low_h, low_w = (kh, kw) if padding == "VALID" else (1, 1)
    h, w = draw(st.integers(low_h, 11)), draw(st.integers(low_w, 11))
    stride = draw(st.integers(1, min(conv.MAX_STRIDE, h, w)))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(draw(st.integers(1, 2)), h, w, draw(st.sampled_from([1, 3]))))
    kernels = rng.normal(size=(draw(st.integers(1, 3)), kh, kw))
    mode = draw(st.sampled_from(conv.MODES))
    return images.astype(np.float32), kernels.astype(np.float32), stride, padding, mode


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_conv2d_equals_a_numpy_loop(case) -> None:
    images, kernels, stride, padding, mode = case
    got = conv.conv2d(images, kernels, stride, padding, mode)
    np.testing.assert_allclose(
        got, _reference_conv2d(images, kernels, stride, padding, mode), atol=1e-4
    )


@settings(max_examples=30, deadline=None)
@given(conv_cases())
def test_padding_offsets_locate_every_output_window(case) -> None:
    """Output (i, j) is the sum over the window at (i·s − top, j·s − left): what the page draws."""
    images, kernels, stride, padding, _ = case
    out = conv.conv2d(images, kernels, stride, padding)
    top, left = conv.padding_offsets(*images.shape[1:3], *kernels.shape[1:], stride, padding)
    kh, kw = kernels.shape[1:]
    padded = np.pad(images, ((0, 0), (kh, kh), (kw, kw), (0, 0)))
    i, j = out.shape[1] - 1, out.shape[2] - 1  # the last window touches the bottom-right padding
    y, x = i * stride - top + kh, j * stride - left + kw
    window = padded[0, y : y + kh, x : x + kw, :]
    assert out[0, i, j, 0] == pytest.approx(np.sum(window * kernels[0][:, :, None]), abs=1e-4)
    assert out.shape[1] == conv.output_size(images.shape[1], kh, stride, padding)


def test_convolution_is_correlation_with_the_flipped_kernel() -> None:
    rng = np.random.default_rng(0)
    images = rng.normal(size=(1, 9, 7, 3)).astype(np.float32)
    kernels = rng.normal(size=(2, 3, 5)).astype(np.float32)
    flipped = conv.flip_kernel(kernels)
    np.testing.assert_array_equal(conv.flip_kernel(flipped), kernels)
    np.testing.assert_allclose(
        conv.conv2d(images, kernels, mode="convolution"), conv.conv2d(images, flipped), atol=1e-5
    )


def test_modes_agree_for_symmetric_kernels_and_differ_for_asymmetric() -> None:
    image = conv.to_grayscale(make_sample("shapes", 32))
    gauss = conv.kernel_preset("gaussian_blur")[None]
    sobel = conv.kernel_preset("sobel_x")[None]
    np.testing.assert_allclose(
        conv.conv2d(image, gauss, mode="correlation"), conv.conv2d(image, gauss, mode="convolution")
    )
    # Sobel x flipped by 180° is minus itself, so the two modes give opposite signs.
    corr = conv.conv2d(image, sobel, mode="correlation")
    np.testing.assert_allclose(conv.conv2d(image, sobel, mode="convolution"), -corr, atol=1e-6)
    assert np.abs(corr).max() > 0.5


def test_sobel_on_a_vertical_edge_gives_the_expected_sign_pattern() -> None:
    image = np.zeros((1, 6, 8, 1), np.float32)
    image[:, :, 4:] = 1.0  # dark left half, bright right half: an edge between columns 3 and 4
    sobel_x = conv.kernel_preset("sobel_x")[None]
    out = conv.conv2d(image, sobel_x, padding="VALID")[0, :, :, 0]
    # VALID windows start at columns 0..5; those at 2 and 3 straddle the edge: 1+2+1 = 4 each.
    np.testing.assert_array_equal(out, np.tile([0, 0, 4, 4, 0, 0], (4, 1)))
    assert (conv.conv2d(image, sobel_x, padding="VALID", mode="convolution") <= 0).all()
    sobel_y = conv.kernel_preset("sobel_y")[None]
    np.testing.assert_array_equal(conv.conv2d(image, sobel_y, padding="VALID"), 0)


@pytest.mark.parametrize("pool", conv.POOLS)
@pytest.mark.parametrize("padding", conv.PADDINGS)
@pytest.mark.parametrize(("window", "stride"), [(2, 2), (3, 1), (3, 2), (4, 3), (1, 1)])
def test_pooling_equals_numpy(pool, padding, window, stride) -> None:
    maps = np.random.default_rng(window * 10 + stride).normal(size=(2, 9, 7, 3))
    maps = maps.astype(np.float32)
    pooled, argmax = conv.pool2d(maps, pool, window, stride, padding)
    np.testing.assert_allclose(
        pooled, _reference_pool(maps, pool, window, stride, padding), atol=1e-5
    )
    if pool == "avg":
        assert argmax is None
        return
    # Every max came from the input cell argmax names.
    n, h, w, c = maps.shape
    ys, xs = np.divmod(argmax, w)
    for b in range(n):
        for k in range(c):
            np.testing.assert_array_equal(
                maps[b, ys[b, ..., k], xs[b, ..., k], k], pooled[b, ..., k]
            )


def test_activations_and_their_derivatives() -> None:
    x = np.linspace(-4, 4, 81, dtype=np.float32)
    curves = conv.activation_curves(x)
    assert list(curves) == list(conv.ACTIVATIONS)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(curves["sigmoid"][0], s, atol=1e-6)
    np.testing.assert_allclose(curves["sigmoid"][1], s * (1 - s), atol=1e-6)
    np.testing.assert_allclose(curves["tanh"][1], 1 - np.tanh(x) ** 2, atol=1e-5)
    np.testing.assert_allclose(curves["relu"][1], (x > 0).astype(np.float32))
    np.testing.assert_allclose(curves["leaky_relu"][0], np.where(x > 0, x, 0.2 * x), atol=1e-6)
    np.testing.assert_allclose(curves["softplus"][1], s, atol=1e-6)
    np.testing.assert_allclose(curves["swish"][0], x * s, atol=1e-5)
    np.testing.assert_allclose(curves["identity"][1], 1)
    for name, (y, dy) in curves.items():  # every derivative matches a central difference
        step = x[1] - x[0]
        numeric = (y[2:] - y[:-2]) / (2 * step)
        smooth = np.abs(x[1:-1]) > 2 * step  # away from the kinks at 0
        np.testing.assert_allclose(dy[1:-1][smooth], numeric[smooth], atol=0.02, err_msg=name)


def test_relu_zeroes_the_negatives_of_a_feature_map() -> None:
    maps = conv.conv2d(
        conv.to_grayscale(make_sample("checkerboard", 32)), conv.kernel_preset("sobel_x")[None]
    )
    assert (maps < 0).any()
    activated = conv.activate(maps, "relu")
    np.testing.assert_array_equal(activated, np.maximum(maps, 0))


def test_signal_convolution_matches_numpy() -> None:
    s = conv.convolve_signals("spiky", "box", points=241, frames=31)
    dt = s.t[1] - s.t[0]
    np.testing.assert_allclose(s.output, np.convolve(s.f, s.g, mode="same") * dt, atol=1e-5)
    # Each frame's product integrates to the output at that frame's position.
    np.testing.assert_allclose(s.products.sum(axis=1) * dt, s.output[s.shifts], atol=1e-5)
    # The kernel slid to t is g(t − τ), zero outside g's grid.
    for i, shift in enumerate(s.shifts):
        for j in range(0, 241, 7):
            index = 120 + shift - j
            assert s.kernel_at[i, j] == (s.g[index] if 0 <= index < 241 else 0)
    # The frames span the output's support: before it nothing overlaps, after it neither.
    peak = s.output.max()
    assert s.output[s.shifts[0]] < 0.01 * peak and s.output[s.shifts[-1]] < 0.01 * peak
    assert s.t[s.shifts[0]] > -1.5
    box = conv.convolve_signals("box", "box")
    assert box.output.max() == pytest.approx(1.0, abs=0.03)  # a triangle of height 1 at t = 0
    assert box.t[np.argmax(box.output)] == pytest.approx(0.0, abs=1e-6)


def test_simple_cnn_shapes_and_softmax() -> None:
    images = make_sample("image_batch")
    kernels = np.stack([conv.kernel_preset("sobel_x"), conv.kernel_preset("box_blur")])
    out = conv.simple_cnn(
        images, kernels, activation="relu", pool="max", pool_window=2, pool_stride=1
    )
    assert images.shape == (2, 2, 3, 3)
    assert out.conv.shape == out.activated.shape == (2, 2, 3, 2)
    assert out.pooled.shape == (2, 1, 2, 2)
    np.testing.assert_array_equal(out.flat, out.pooled.reshape(2, -1))
    assert out.logits.shape == out.probabilities.shape == (2, 3)
    np.testing.assert_allclose(out.probabilities.sum(axis=1), 1, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernels": np.full((1, 3, 3), np.nan)}, "finite"),
        ({"kernels": np.full((1, 3, 3), np.inf)}, "finite"),
        ({"kernels": np.full((1, 3, 3), 1e9)}, "within"),
        ({"kernels": np.ones((17, 3, 3))}, "1 to 16 kernels"),
        ({"kernels": np.ones((1, 10, 10))}, "1 to 9 cells"),
        ({"kernels": np.ones((3, 3))}, "(count, height, width)"),
        ({"stride": 5}, "stride must be an integer in [1, 4]"),
        ({"stride": 0}, "stride must be"),
        ({"images": np.ones((1, 2, 8, 1)), "stride": 3}, "larger than the 2×8 input"),
        ({"images": np.ones((1, 2, 2, 1)), "padding": "VALID"}, "does not fit"),
        ({"padding": "FULL"}, "padding must be one of"),
        ({"mode": "xcorr"}, "mode must be one of"),
        ({"images": np.full((1, 4, 4, 1), np.nan)}, "finite values"),
    ],
)
def test_conv2d_rejects_bad_arguments_clearly(kwargs, message) -> None:
    args = {"images": np.ones((1, 8, 8, 1)), "kernels": np.ones((1, 3, 3))} | kwargs
    with pytest.raises(ValueError, match="Received|does not fit") as err:
        conv.conv2d(**args)
    assert message in str(err.value)


def test_pooling_rejects_windows_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        conv.pool2d(np.ones((1, 3, 3, 1)), window=4, stride=1)
    with pytest.raises(ValueError, match="window must be"):
        conv.pool2d(np.ones((1, 8, 8, 1)), window=9)


def test_kernel_presets() -> None:
    for size in conv.KERNEL_SIZES:
        for name in conv.KERNEL_PRESETS:
            k = conv.kernel_preset(name, size)
            assert k.shape == (size, size) and k.dtype == np.float32
        for blur in ("box_blur", "gaussian_blur", "identity", "sharpen"):
            assert conv.kernel_preset(blur, size).sum() == pytest.approx(1)
        for edge in ("sobel_x", "sobel_y", "laplacian", "edge"):
            assert conv.kernel_preset(edge, size).sum() == pytest.approx(0)
        sobel = conv.kernel_preset("sobel_x", size)
        np.testing.assert_array_equal(conv.kernel_preset("sobel_y", size), sobel.T)
        np.testing.assert_array_equal(conv.flip_kernel(sobel), -sobel)
        gauss = conv.kernel_preset("gaussian_blur", size)
        np.testing.assert_array_equal(conv.flip_kernel(gauss), gauss)
    with pytest.raises(ValueError, match="Received: size=4"):
        conv.kernel_preset("sobel_x", 4)


def test_samples_and_resizing() -> None:
    for name in SAMPLES:
        x = make_sample(name, 48)
        assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
        assert x.shape == ((2, 2, 3, 3) if name == "image_batch" else (1, 48, 48, 3))
    board = make_sample("checkerboard", 16)[0, :, :, 0]
    np.testing.assert_array_equal(board[:2, :4], [[0, 0, 1, 1], [0, 0, 1, 1]])
    gray = conv.to_grayscale(make_sample("gradient", 16))
    np.testing.assert_allclose(gray[0, 0, :, 0], np.linspace(0, 1, 16), atol=3e-3)
    assert conv.to_grayscale(np.ones((1, 2, 2, 3), np.float32)).max() == pytest.approx(1)
    wide = np.zeros((1, 100, 300, 3), np.float32)
    assert conv.fit_size(wide, 60).shape == (1, 20, 60, 3)
    assert conv.fit_size(wide, 400) is wide
    assert conv.as_batch(np.ones((5, 6))).shape == (1, 5, 6, 1)
    blocks = np.arange(5 * 5, dtype=np.float32).reshape(1, 5, 5, 1)
    small = conv.downsample(blocks, 2)[0, :, :, 0]
    assert small.shape == (3, 3)
    assert small[0, 0] == np.mean([0, 1, 5, 6]) and small[2, 2] == 24  # the corner block is 1×1
    np.testing.assert_array_equal(conv.max_abs(np.array([[[[-3, 1], [2, -0.5]]]])), [3, 1])
    assert conv.as_batch(np.ones((5, 6, 3))).shape == (1, 5, 6, 3)
