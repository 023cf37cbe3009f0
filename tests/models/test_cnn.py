"""models/cnn.py: drawn data sets, both kinds of model beating chance on two classes of shapes,
reports, stop, the exported .keras (same predictions) and train.py (runs, builds the same layers)."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from models import cnn
from models.classifier import Classifier

TWO_SHAPES = ("circle", "triangle")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lite0_cache")


@pytest.fixture(scope="module")
def shapes() -> cnn.ImageSet:
    """Two classes of shapes, 100 photos each, 32×32: enough for a CNN from scratch."""
    return cnn.make_generated("shapes", TWO_SHAPES, per_class=100, size=32, seed=1)


@pytest.fixture(scope="module")
def scratch(shapes) -> cnn.Trained:
    keras.utils.set_random_seed(0)
    return cnn.train(shapes, cnn.TrainConfig(epochs=15, image_size=32, batch_size=16))


@pytest.fixture(scope="module")
def transfer(cache_dir) -> cnn.Trained:
    photos = cnn.make_generated("shapes", TWO_SHAPES, per_class=15, size=224, seed=2)
    keras.utils.set_random_seed(0)
    return cnn.train(photos, cnn.TrainConfig(model="transfer", epochs=8), cache_dir=cache_dir)


class Recorder(cnn.Monitor):
    """Keeps every report; stops training after `stop_after` steps."""

    def __init__(self, stop_after: int | None = None):
        self.stop_after = stop_after
        self.starts, self.batches, self.epochs, self.pictures = [], [], [], []

    def on_start(self, start):
        self.starts.append(start)

    def on_batch(self, report):
        self.batches.append(report)

    def on_epoch(self, report):
        self.epochs.append(report)

    def on_pictures(self, pictures):
        self.pictures.append(pictures)

    def checkpoint(self):
        if self.stop_after is not None and len(self.batches) >= self.stop_after:
            raise cnn.TrainingStopped


# --- data ------------------------------------------------------------------------------------


def test_generated_photos_are_reproducible_and_interleaved() -> None:
    first = cnn.make_generated("colours", per_class=4, size=24, seed=3)
    again = cnn.make_generated("colours", per_class=4, size=24, seed=3)
    other = cnn.make_generated("colours", per_class=4, size=24, seed=4)

    assert first.images.shape == (12, 24, 24, 3) and first.images.dtype == np.uint8
    assert first.class_names == cnn.GENERATED["colours"]
    assert first.labels.tolist()[:6] == [0, 1, 2, 0, 1, 2]
    assert first.counts() == [4, 4, 4]
    np.testing.assert_array_equal(first.images, again.images)
    assert not np.array_equal(first.images, other.images)


def test_a_red_photo_is_red_and_unknown_classes_are_refused() -> None:
    reds = cnn.make_generated("colours", ("red", "blue"), per_class=5, size=32)
    shape_pixels = reds.images[reds.labels == 0].reshape(-1, 3).astype(int)
    saturated = shape_pixels[(shape_pixels.max(axis=1) - shape_pixels.min(axis=1)) > 120]

    assert (saturated.argmax(axis=1) == 0).mean() > 0.95
    with pytest.raises(ValueError, match=r"Received: classes=\('red', 'pink'\)"):
        cnn.make_generated("colours", ("red", "pink"))
    with pytest.raises(ValueError, match="kind must be one of"):
        cnn.make_generated("animals")


def test_the_split_is_stratified_and_keeps_a_photo_on_each_side() -> None:
    labels = np.array([0] * 10 + [1] * 3 + [2] * 2)
    train, validation = cnn.split_indices(labels, 0.2, seed=0)

    assert np.bincount(labels[validation]).tolist() == [2, 1, 1]
    assert sorted(np.concatenate([train, validation]).tolist()) == list(range(15))
    with pytest.raises(ValueError, match="at least 2 photos"):
        cnn.split_indices(np.array([0, 0, 1]), 0.2)


def test_square_photo_crops_the_centre_of_a_landscape_photo() -> None:
    photo = np.zeros((40, 80, 3), np.uint8)
    photo[:, 20:60] = 255  # the central square is white, the sides black

    square = cnn.square_photo(photo, 20)

    assert square.shape == (20, 20, 3)
    assert square.min() == 255


def test_breeds_are_read_from_a_stanford_dogs_folder_skipping_bad_files(tmp_path) -> None:
    for folder, colour in (
        ("n02085620-Chihuahua", (200, 30, 30)),
        ("n02086240-Shih-Tzu", (30, 30, 200)),
    ):
        breed = tmp_path / "Images" / folder
        breed.mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (60, 40), colour).save(breed / f"{folder}_{i}.jpg")
        (breed / "broken.jpg").write_bytes(b"not a photo")  # sorted first: skipped
    (tmp_path / "Images" / "empty").mkdir()

    breeds = cnn.list_breeds(tmp_path)
    data = cnn.load_breeds(list(breeds), 2, 32, max_bytes=10**6, max_pixels=10**6, max_side=1000)

    assert [(b.name, b.photos) for b in breeds] == [("Chihuahua", 4), ("Shih-Tzu", 4)]
    assert data.class_names == ("Chihuahua", "Shih-Tzu")
    assert data.images.shape == (4, 32, 32, 3) and data.counts() == [2, 2]
    assert data.images[0, 16, 16, 0] > 150 and data.images[3, 16, 16, 2] > 150
    assert cnn.list_breeds(tmp_path / "missing") == ()


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (cnn.TrainConfig(model="rnn"), "model must be one of"),
        (cnn.TrainConfig(model="transfer", image_size=64), "Received: image_size=64"),
        (cnn.TrainConfig(learning_rate=-1.0), "Received: learning_rate=-1.0"),
        (cnn.TrainConfig(blocks=()), "Received: 0 blocks"),
        (cnn.TrainConfig(blocks=(cnn.ConvBlock(99, 3),)), r"blocks\[0\].*filters=99"),
        (cnn.TrainConfig(blocks=(cnn.ConvBlock(),) * 5), "Received: 5 blocks"),
        (cnn.TrainConfig(blocks=(cnn.ConvBlock(8, 9),)), "kernel_size=9"),
        (cnn.TrainConfig(image_size=8), "Received: image_size=8"),
        (cnn.TrainConfig(augment=cnn.Augmentation(crop=0.9)), "augment.crop must be in"),
    ],
)
def test_a_bad_setting_is_named_with_the_value_received(config, message) -> None:
    with pytest.raises(ValueError, match=message):
        cnn.check_config(config)


def test_the_scratch_model_is_the_courses_conv_relu_pool_blocks() -> None:
    model = cnn.build_scratch_model(3, 32, (cnn.ConvBlock(8, 5), cnn.ConvBlock(4, 3)))

    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer", "Rescaling", "Conv2D", "ReLU", "MaxPooling2D",
        "Conv2D", "ReLU", "MaxPooling2D", "Flatten", "Dense",
    ]  # fmt: skip
    assert model.get_layer("conv1").kernel.shape == (5, 5, 3, 8)
    assert model.output_shape == (None, 3)
    assert model.get_layer("flatten").output.shape == (None, 8 * 8 * 4)


def test_augmentation_keeps_the_size_and_a_seed_repeats_it() -> None:
    photos = cnn.make_generated("shapes", per_class=2, size=48).images
    everything = cnn.Augmentation(flip=True, crop=0.2, rotation=0.1, brightness=0.3, contrast=0.3)

    fed = cnn.augment_images(photos, everything, 32, seed=5)
    again = cnn.augment_images(photos, everything, 32, seed=5)
    plain = cnn.augment_images(photos, cnn.Augmentation(), 32)

    assert fed.shape == plain.shape == (6, 32, 32, 3) and fed.dtype == np.uint8
    np.testing.assert_array_equal(fed, again)
    assert np.abs(fed.astype(int) - plain).mean() > 5
    assert [s.kind for s in cnn.augmentation_specs(everything, 32)] == [
        "RandomFlip", "RandomCrop", "Resizing", "RandomRotation", "RandomBrightness", "RandomContrast",
    ]  # fmt: skip


# --- training ----------------------------------------------------------------------------------


def test_a_cnn_from_scratch_beats_chance_by_a_wide_margin(scratch) -> None:
    assert scratch.history[-1].val_accuracy >= 0.8  # chance: 0.5
    assert scratch.history[-1].loss < scratch.history[0].loss
    assert scratch.confusion.sum() == 40 and np.trace(scratch.confusion) >= 32


def test_transfer_learning_beats_chance_by_a_wide_margin(transfer) -> None:
    assert transfer.history[-1].val_accuracy >= 0.9
    assert transfer.model.input_shape == (None, 224, 224, 3)
    # Only the new softmax learned: 1280 features × 2 classes and 2 biases.
    assert sum(w.size for w in transfer.weights) == 1280 * 2 + 2


def test_grad_cam_explains_a_transfer_model(transfer) -> None:
    classifier = Classifier(transfer.model)

    cams = classifier.grad_cam(transfer.val_images[:2].astype(np.float32), [0, 1])

    assert classifier.default_layer == "top_activation"
    assert cams.shape == (2, 7, 7) and cams.max() == pytest.approx(1.0)


def test_the_features_of_a_photo_are_computed_once(cache_dir) -> None:
    base = cnn.load_base(cache_dir)
    photos = cnn.make_generated("shapes", per_class=2, size=224, seed=9).images
    cache = cnn.FeatureCache()

    first = cnn.pretrained_features(base, photos, cache=cache)
    again = cnn.pretrained_features(base, photos[::-1], cache=cache)

    assert first.shape == (6, 1280)
    assert cache.computed == 6  # not 12
    np.testing.assert_array_equal(again, first[::-1])


def test_fine_tuning_trains_copies_of_the_top_block_only(cache_dir) -> None:
    photos = cnn.make_generated("shapes", TWO_SHAPES, per_class=6, size=224, seed=3)
    base = cnn.load_base(cache_dir)
    before = [w.copy() for w in base.get_layer("top_conv").get_weights()]

    trained = cnn.train(
        photos, cnn.TrainConfig(model="finetune", epochs=2, batch_size=4), cache_dir=cache_dir
    )

    copy = trained.model.get_layer("top_conv")
    assert copy is not base.get_layer("top_conv")
    assert trained.model.get_layer("block6d_add") is base.get_layer("block6d_add")
    assert not np.array_equal(copy.get_weights()[0], before[0])  # the copy learned
    for w, w0 in zip(base.get_layer("top_conv").get_weights(), before, strict=True):
        np.testing.assert_array_equal(w, w0)  # the shared network never changes
    assert not trained.model.get_layer("top_bn").trainable
    cams = Classifier(trained.model).grad_cam(trained.val_images[:1].astype(np.float32), [0])
    assert cams.shape == (1, 7, 7)


def test_reports_arrive_per_batch_and_per_epoch_with_pictures(shapes) -> None:
    monitor = Recorder()
    trained = cnn.train(shapes, cnn.TrainConfig(epochs=2, image_size=16, batch_size=40), monitor)

    start = monitor.starts[0]
    assert (start.train_images, start.val_images, start.batches) == (160, 40, 4)
    assert start.fed.shape == (8, 16, 16, 3)
    assert [(b.epoch, b.batch) for b in monitor.batches] == [
        (e, b) for e in (1, 2) for b in (1, 2, 3, 4)
    ]
    assert [b.step for b in monitor.batches] == list(range(1, 9))
    assert monitor.batches[-1].progress == 1.0 and monitor.batches[-1].eta_seconds == 0.0
    assert all(b.images_per_second > 0 for b in monitor.batches)
    assert [e.epoch for e in monitor.epochs] == [1, 2] == [h.epoch for h in trained.history]
    first = monitor.pictures[0]
    assert first.step == 0 and first.filters_layer == "conv1"
    assert (
        first.filters.shape == (16, 3, 3, 3)
        and 0 <= first.filters.min() <= first.filters.max() <= 1
    )
    assert [(m.name, m.maps.shape) for m in first.feature_maps] == [
        ("relu1", (8, 16, 16)), ("relu2", (8, 8, 8)), ("relu3", (8, 4, 4))
    ]  # fmt: skip
    assert monitor.pictures[-1].step == 8
    assert not np.array_equal(monitor.pictures[-1].filters, first.filters)  # they learned


def test_a_stop_ends_training_and_keeps_what_it_learned(shapes) -> None:
    monitor = Recorder(stop_after=3)
    trained = cnn.train(shapes, cnn.TrainConfig(epochs=5, image_size=16, batch_size=16), monitor)

    assert trained.stopped and trained.steps == 3 and trained.history == []
    assert trained.confusion.sum() == 40  # evaluated all the same
    assert trained.val_probabilities.shape == (40, 2)


def test_a_learning_rate_that_overshoots_is_reported_as_diverged() -> None:
    photos = cnn.make_generated("shapes", TWO_SHAPES, per_class=10, size=16)
    with pytest.raises(cnn.TrainingDiverged, match=r"Diverged.*Received: learning_rate=1e\+12"):
        cnn.train(photos, cnn.TrainConfig(epochs=3, image_size=16, learning_rate=1e12))


def test_mistakes_come_with_their_grad_cam(shapes) -> None:
    keras.utils.set_random_seed(1)
    weak = cnn.train(shapes, cnn.TrainConfig(epochs=1, image_size=16, batch_size=64))

    mistakes = weak.mistakes()

    wrong = int(weak.confusion.sum() - np.trace(weak.confusion))
    assert len(mistakes) == min(wrong, cnn.MAX_MISTAKES) > 0
    for m in mistakes:
        assert m.true != m.predicted and m.true == weak.val_labels[m.index]
        assert m.image.shape == (16, 16, 3)
        assert m.grad_cam.shape == (4, 4)  # relu3: 16 / 2 / 2
        assert m.grad_cam.min() >= 0 and m.grad_cam.max() <= 1


# --- export ------------------------------------------------------------------------------------


def test_the_exported_keras_file_gives_the_same_predictions(scratch, shapes) -> None:
    photos = cnn.resize_images(shapes.images[:16], 32).astype(np.float32)
    expected = scratch.model.predict(photos, verbose=0)

    loaded = cnn.load_model_bytes(cnn.model_bytes(scratch.model))
    rebuilt = cnn.rebuild(scratch.config, 2, scratch.weights)

    np.testing.assert_allclose(loaded.predict(photos, verbose=0), expected, atol=1e-6)
    np.testing.assert_allclose(rebuilt.predict(photos, verbose=0), expected, atol=1e-6)


def test_a_rebuilt_transfer_model_gives_the_same_predictions(transfer, cache_dir) -> None:
    photos = transfer.val_images[:4].astype(np.float32)

    rebuilt = cnn.rebuild(transfer.config, 2, transfer.weights, cache_dir)

    np.testing.assert_allclose(
        rebuilt(photos, training=False), transfer.val_probabilities[:4], atol=1e-5
    )


def test_the_exported_script_trains_the_same_layers_on_a_folder(tmp_path) -> None:
    photos = cnn.make_generated("shapes", TWO_SHAPES, per_class=6, size=24, seed=4)
    for image, label in zip(photos.images, photos.labels, strict=True):
        folder = tmp_path / "photos" / photos.class_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{len(list(folder.iterdir()))}.png")
    augment = cnn.Augmentation(flip=True, crop=0.1, rotation=0.05, brightness=0.1, contrast=0.1)
    config = cnn.TrainConfig(image_size=16, batch_size=4, epochs=7, augment=augment)
    script = tmp_path / "train.py"
    script.write_text(cnn.export_script(config, photos.class_names))

    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "photos"), "--epochs", "1",
         "--output", str(tmp_path / "trained.keras")],
        capture_output=True, text=True, timeout=180, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip

    assert run.returncode == 0, run.stderr[-2000:]
    assert "val_accuracy" in run.stdout
    trained = keras.saving.load_model(tmp_path / "trained.keras")
    ours = cnn.build_scratch_model(2, 16, config.blocks)

    def layers(model):
        return [
            (type(layer).__name__, layer.name, [tuple(w.shape) for w in layer.weights])
            for layer in model.layers
        ]

    assert layers(trained) == layers(ours)[1:]  # a Sequential lists no InputLayer
    for theirs, mine in zip(trained.layers, ours.layers[1:], strict=True):
        keep = {"name", "dtype", "trainable", "build_config"}
        assert {k: v for k, v in theirs.get_config().items() if k not in keep} == {
            k: v for k, v in mine.get_config().items() if k not in keep
        }


@pytest.mark.parametrize("model", ["transfer", "finetune"])
def test_the_pretrained_scripts_are_valid_python(model) -> None:
    source = cnn.export_script(cnn.TrainConfig(model=model), ("a", "b"))

    compile(source, "train.py", "exec")
    assert 'get_layer("avg_pool")' in source and "IMAGE_SIZE = 224" in source
