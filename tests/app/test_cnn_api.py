"""The CNN-training lab's API: data sets from uploads, drawings and a folder; limits and bad
uploads; training jobs (queued → running → done, stop, failure, one running job per user) followed
over `/ws/cnn/{id}`; classify and the downloads."""

import importlib
import io
import json
import pickle
import threading
import time
import uuid
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from starlette.websockets import WebSocketDisconnect

from app.jobs import cnn as job
from app.labs import cnn as lab
from app.main import create_app
from app.settings import Settings
from models import cnn
from tests.app.json_api import error_text, strict_json

# A tiny CNN on 16×16 photos: a job of a few epochs takes about a second.
FAST = {"model": "scratch", "image_size": 16, "blocks": [{"filters": 4, "kernel_size": 3}]}
MESSAGES = {
    "status": lab.StatusMessage,
    "start": job.StartMessage,
    "batch": job.BatchMessage,
    "epoch": job.EpochMessage,
    "pictures": job.PicturesMessage,
    "error": lab.ErrorMessage,
}


SETTINGS = Settings(
    job_workers=2,
    jobs_per_user=2,
    cnn_max_classes=3,
    cnn_max_photos_per_class=4,
    cnn_max_epochs=40,
    cnn_max_image_size=64,
)


@pytest.fixture(scope="module")
def client():
    """One app for the module: its start and stop (every lab's warm-up) cost seconds. Each test
    is its own user (`user`) and leaves no job running."""
    with TestClient(create_app(SETTINGS)) as c:
        yield c


@pytest.fixture
def user() -> str:
    return uuid.uuid4().hex


def png(colour=(200, 40, 40), size=(48, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def upload(client, dataset, label, data=None, **kwargs):
    return client.post(
        f"/api/cnn/datasets/{dataset}/images",
        params={"label": label},
        content=png() if data is None else data,
        headers={"Content-Type": "image/png"},
        **kwargs,
    )


def submit(client, user, **body):
    answer = client.post(
        "/api/cnn/jobs", json={"dataset": "colours", **FAST, **body}, headers={"X-Client-Id": user}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def state(client, job_id):
    return client.get(f"/api/cnn/jobs/{job_id}").json()


def wait_for(client, job_id, *states, timeout=30):
    deadline = time.monotonic() + timeout
    while (found := state(client, job_id))["state"] not in states:
        assert time.monotonic() < deadline, f"still {found['state']}"
        time.sleep(0.02)
    return found


def hold(client, user):
    """A job of `user` that stays running (paused) until stopped."""
    job_id = submit(client, user, epochs=40)
    client.post(f"/api/cnn/jobs/{job_id}/pause")
    wait_for(client, job_id, "running")
    return job_id


def read(ws) -> dict:
    """One socket message, checked against its model and free of NaN."""
    message = strict_json(ws.receive_text())
    MESSAGES[message["type"]].model_validate(message)
    return message


def follow(ws, until=None) -> list[dict]:
    """The socket's messages until `until(message)` holds or the job's final status."""
    messages = []
    while True:
        messages.append(read(ws))
        last = messages[-1]
        if (until and until(last)) or (
            last["type"] == "status" and last["state"] not in ("queued", "running")
        ):
            return messages


# --- data sets ---------------------------------------------------------------------------------


def test_a_data_set_is_made_class_by_class(client) -> None:
    created = client.post("/api/cnn/datasets")
    assert created.status_code == 201
    dataset = created.json()["id"]

    first = upload(client, dataset, "red")
    assert first.status_code == 201
    assert first.json()["problem"].startswith("Training needs at least 2 classes")
    upload(client, dataset, "red", png((180, 20, 20), (30, 50)))
    blue = client.post(
        f"/api/cnn/datasets/{dataset}/images",
        params={"label": "blue sky"},
        files={"file": ("sky.png", png((20, 20, 200)), "image/png")},
    )
    assert blue.status_code == 201
    upload(client, dataset, "blue sky", png((30, 30, 220)))

    described = client.get(f"/api/cnn/datasets/{dataset}").json()
    assert [(c["name"], c["photos"]) for c in described["classes"]] == [("red", 2), ("blue sky", 2)]
    assert described["problem"] is None and described["photos"] == 4
    assert described["classes"][0]["samples"][0].startswith("data:image/jpeg;base64,")
    assert described["limits"] == {"max_classes": 3, "max_photos_per_class": 4}


def zip_file() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("dog.png", png())
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("label", "data", "status", "says"),
    [
        ("red", zip_file(), 415, "ZIP archive"),
        ("red", b"", 422, "empty"),
        ("red", png()[:60], 422, "damaged or truncated"),
        ("", None, 422, "label"),
        ("../etc", None, 422, "label"),
    ],
)
def test_bad_uploads_are_refused_with_the_reason(client, label, data, status, says) -> None:
    dataset = client.post("/api/cnn/datasets").json()["id"]

    answer = upload(client, dataset, label, data)

    assert answer.status_code == status
    assert says in error_text(answer)


def test_a_form_without_its_file_and_unknown_or_built_in_sets_are_refused(client) -> None:
    dataset = client.post("/api/cnn/datasets").json()["id"]

    no_file = client.post(
        f"/api/cnn/datasets/{dataset}/images", params={"label": "a"}, files={"photo": ("a", png())}
    )
    unknown = upload(client, "0" * 32, "a")
    built_in = upload(client, "shapes", "a")

    assert no_file.status_code == 422 and "file is required" in error_text(no_file)
    assert unknown.status_code == 404 and "Create it again" in error_text(unknown)
    assert built_in.status_code == 409 and "built-in" in error_text(built_in)


def test_past_the_limits_a_photo_is_refused_naming_the_limit(client) -> None:
    dataset = client.post("/api/cnn/datasets").json()["id"]
    for label in ("a", "b", "c"):
        assert upload(client, dataset, label).status_code == 201
    for _ in range(3):
        upload(client, dataset, "a")

    fourth_class = upload(client, dataset, "d")
    fifth_photo = upload(client, dataset, "a")

    assert fourth_class.status_code == 422
    assert fourth_class.json()["detail"][0]["loc"] == ["query", "label"]
    assert "3 classes, the most allowed (PLAYGROUND_CNN_MAX_CLASSES)" in error_text(fourth_class)
    assert "has 4 photos, the most allowed" in error_text(fifth_photo)
    counts = client.get(f"/api/cnn/datasets/{dataset}").json()["classes"]
    assert [c["photos"] for c in counts] == [4, 1, 1]


def test_drawn_data_sets_need_no_photos(client) -> None:
    built_in = client.get("/api/cnn/datasets/shapes").json()
    drawn = client.post(
        "/api/cnn/datasets",
        json={"generated": "shapes", "classes": ["star", "cross"], "photos_per_class": 3},
    )
    too_many = client.post("/api/cnn/datasets", json={"generated": "shapes", "photos_per_class": 5})
    both = client.post("/api/cnn/datasets", json={"generated": "shapes", "breeds": ["a", "b"]})

    assert [(c["name"], c["photos"]) for c in built_in["classes"]] == [
        ("circle", 30), ("square", 30), ("triangle", 30),
    ]  # fmt: skip
    assert built_in["built_in"] and built_in["source"] == "generated"
    described = client.get(f"/api/cnn/datasets/{drawn.json()['id']}").json()
    assert [(c["name"], c["photos"]) for c in described["classes"]] == [("star", 3), ("cross", 3)]
    assert "Received: photos_per_class=5" in error_text(too_many)
    assert both.status_code == 422 and "not both" in error_text(both)


def test_breeds_come_from_the_servers_stanford_dogs_folder(client, tmp_path, monkeypatch) -> None:
    for folder in ("n02085620-Chihuahua", "n02085782-Japanese_spaniel"):
        (tmp_path / "Images" / folder).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "Images" / folder / f"{i}.jpg").write_bytes(png((i * 80, 90, 30)))
    monkeypatch.setattr(SETTINGS, "datasets_dir", tmp_path)

    breeds = client.get("/api/cnn/catalog").json()["breeds"]
    created = client.post(
        "/api/cnn/datasets",
        json={"breeds": ["Chihuahua", "Japanese spaniel"], "photos_per_class": 2},
    )
    unknown = client.post("/api/cnn/datasets", json={"breeds": ["Chihuahua", "Pug"]})
    described = client.get(f"/api/cnn/datasets/{created.json()['id']}").json()

    assert breeds == [{"name": "Chihuahua", "photos": 3}, {"name": "Japanese spaniel", "photos": 3}]
    assert described["source"] == "folder"
    assert [(c["name"], c["photos"]) for c in described["classes"]] == [
        ("Chihuahua", 2), ("Japanese spaniel", 2),
    ]  # fmt: skip
    assert "Received: unknown ['Pug']" in error_text(unknown)


def test_no_folder_no_breeds(client) -> None:
    answer = client.post("/api/cnn/datasets", json={"breeds": ["Chihuahua", "Pug"]})

    assert client.get("/api/cnn/catalog").json()["breeds"] == []
    assert answer.status_code == 404 and "PLAYGROUND_DATASETS_DIR" in error_text(answer)


def test_the_catalog_shows_the_limits_and_defaults(client) -> None:
    catalog = client.get("/api/cnn/catalog").json()

    assert [m["value"] for m in catalog["models"]] == list(cnn.MODELS)
    assert [a["name"] for a in catalog["augmentations"]] == list(cnn.AUGMENTATIONS)
    assert catalog["limits"]["max_epochs"] == 40 and catalog["limits"]["image_size"] == [16, 64]
    assert catalog["defaults"]["epochs"] == 10 and len(catalog["defaults"]["blocks"]) == 3


def test_the_augmentation_preview_shows_what_the_network_is_fed(client) -> None:
    body = {"dataset": "shapes", "augment": {"flip": True, "rotation": 0.2}, "count": 4}

    first = client.post("/api/cnn/augment", json=body).json()
    again = client.post("/api/cnn/augment", json=body).json()
    plain = client.post("/api/cnn/augment", json={**body, "augment": {}}).json()

    assert [i["label"] for i in first["images"]] == ["circle", "square", "triangle", "circle"]
    assert first == again and first != plain


# --- jobs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            {"epochs": 41},
            "epochs must be at most 40 (PLAYGROUND_CNN_MAX_EPOCHS). Received: epochs=41",
        ),
        ({"image_size": 65}, "Received: image_size=65"),
        ({"model": "transfer", "image_size": 64}, "224"),
        ({"model": "cnn"}, "model"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"validation_split": 0.9}, "validation_split"),
        ({"blocks": []}, "blocks"),
        ({"blocks": [{"filters": 65, "kernel_size": 3}]}, "filters"),
        ({"augment": {"crop": 0.6}}, "crop"),
        ({"augment": {"tilt": 1}}, "tilt"),
        ({"dataset": "missing"}, "Received: dataset='missing'"),
        ({"image_size": 16, "blocks": [{"filters": 4, "kernel_size": 3}] * 4 + [{}]}, "blocks"),
    ],
)
def test_a_job_past_a_limit_is_refused_naming_it(client, body, says) -> None:
    answer = client.post("/api/cnn/jobs", json={"dataset": "colours", **FAST, **body})

    assert answer.status_code == 422
    assert says in error_text(answer)


def test_nan_is_refused_as_json_and_a_set_too_small_is_named(client) -> None:
    nan = client.post(
        "/api/cnn/jobs",
        content='{"dataset": "colours", "model": "scratch", "learning_rate": NaN}',
        headers={"Content-Type": "application/json"},
    )
    dataset = client.post("/api/cnn/datasets").json()["id"]
    upload(client, dataset, "only")
    small = client.post("/api/cnn/jobs", json={"dataset": dataset, "model": "scratch"})

    assert nan.status_code == 422 and "finite" in error_text(nan)
    assert "at least 2 classes" in error_text(small)


def test_a_job_goes_queued_running_done_on_its_socket(client, user) -> None:
    first = hold(client, user)
    job_id = submit(client, user, epochs=2)  # the same user's second job waits for the first

    with client.websocket_connect(f"/ws/cnn/{job_id}") as ws:
        queued = read(ws)
        assert (queued["state"], queued["queue_position"]) == ("queued", 1)
        client.post(f"/api/cnn/jobs/{first}/stop")
        messages = [queued, *follow(ws)]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()

    assert closed.value.code == 1000
    states = [m["state"] for m in messages if m["type"] == "status"]
    assert states == ["queued", "running", "done"]
    kinds = [m["type"] for m in messages]
    assert kinds.index("start") < kinds.index("batch") < kinds.index("epoch")
    start = next(m for m in messages if m["type"] == "start")
    assert (start["classes"], start["train_images"], start["val_images"]) == (
        ["red", "green", "blue"], 72, 18,
    )  # fmt: skip
    epochs = [m for m in messages if m["type"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs[-1]["progress"] == 1.0
    pictures = next(m for m in messages if m["type"] == "pictures")
    assert pictures["filters"]["shape"] == [3, 3, 3, 4] and len(pictures["filters"]["images"]) == 4
    assert [p["name"] for p in pictures["feature_maps"]] == ["relu1"]
    done = messages[-1]
    assert done["epoch"] == 2 and done["has_model"] and len(done["history"]) == 2
    assert done["metrics"]["val_accuracy"] == done["history"][-1]["val_accuracy"]
    assert sum(map(sum, done["evaluation"]["confusion"])) == 18
    assert done == {**state(client, job_id), "type": "status"}


def test_one_running_job_per_user(client, user) -> None:
    other = uuid.uuid4().hex
    held = hold(client, user)
    second = submit(client, user, epochs=1)
    others = submit(client, other, epochs=1)

    wait_for(client, others, "done")  # the second worker is free for the other user, not for ours

    assert state(client, second)["state"] == "queued"
    client.post(f"/api/cnn/jobs/{held}/stop")
    wait_for(client, second, "done")


def test_a_user_is_told_when_they_have_too_many_jobs(client, user) -> None:
    held = hold(client, user)
    submit(client, user)

    answer = client.post(
        "/api/cnn/jobs", json={"dataset": "colours", **FAST}, headers={"X-Client-Id": user}
    )

    assert answer.status_code == 429 and "2 jobs queued or running" in error_text(answer)
    client.post(f"/api/cnn/jobs/{held}/stop")


def test_a_reloaded_page_finds_its_jobs(client, user) -> None:
    first = submit(client, user, epochs=1)
    wait_for(client, first, "done")
    second = submit(client, user, epochs=1, model="scratch")

    mine = client.get("/api/cnn/jobs", headers={"X-Client-Id": user}).json()
    others = client.get("/api/cnn/jobs", headers={"X-Client-Id": uuid.uuid4().hex}).json()

    assert [j["id"] for j in mine] == [second, first]
    assert mine[1]["state"] == "done" and mine[1]["epoch"] == mine[1]["epochs"] == 1
    assert mine[1]["dataset"] == "colours" and mine[1]["model"] == "scratch"
    assert others == []
    wait_for(client, second, "done")


def test_a_browser_is_told_apart_by_its_cookie(client) -> None:
    client.cookies.clear()
    first = client.post("/api/cnn/jobs", json={"dataset": "colours", **FAST, "epochs": 40})
    cookie = first.cookies.get("playground_client")
    client.post(f"/api/cnn/jobs/{first.json()['id']}/pause")
    second = client.post("/api/cnn/jobs", json={"dataset": "colours", **FAST})

    assert cookie and len(cookie) == 32
    assert "playground_client" not in second.cookies  # the same browser, already known
    wait_for(client, first.json()["id"], "running")
    assert state(client, second.json()["id"])["state"] == "queued"
    for answer in (first, second):
        client.post(f"/api/cnn/jobs/{answer.json()['id']}/stop")
    wait_for(client, first.json()["id"], "stopped")


def test_a_stopped_job_keeps_what_it_learned(client, user) -> None:
    job_id = submit(client, user, epochs=40)
    with client.websocket_connect(f"/ws/cnn/{job_id}") as ws:
        follow(ws, until=lambda m: m["type"] == "epoch")
        client.post(f"/api/cnn/jobs/{job_id}/stop")
        stopped = follow(ws)[-1]

    assert stopped["state"] == "stopped" and stopped["has_model"]
    assert 1 <= stopped["epoch"] < 40 and stopped["evaluation"] is not None
    script = client.get(f"/api/cnn/jobs/{job_id}/train.py")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/x-python")
    compile(script.text, "train.py", "exec")
    assert "IMAGE_SIZE = 16" in script.text and "keras.layers.Conv2D(4, 3" in script.text


def test_classify_and_the_model_file_agree(client, user) -> None:
    job_id = submit(client, user, epochs=3)
    wait_for(client, job_id, "done")
    photo = png((230, 20, 20), (40, 40))

    raw = client.post(
        f"/api/cnn/jobs/{job_id}/classify", content=photo, headers={"Content-Type": "image/png"}
    )
    form = client.post(f"/api/cnn/jobs/{job_id}/classify", files={"file": ("red.png", photo)})
    download = client.get(f"/api/cnn/jobs/{job_id}/model.keras")

    assert raw.status_code == form.status_code == download.status_code == 200
    top = raw.json()["top"]
    assert sorted(g["label"] for g in top) == ["blue", "green", "red"]
    assert top == form.json()["top"]
    assert [g["probability"] for g in top] == sorted((g["probability"] for g in top), reverse=True)
    model = cnn.load_model_bytes(download.content)
    x = cnn.resize_images(np.array(Image.open(io.BytesIO(photo)))[np.newaxis], 16)
    probabilities = np.asarray(model(x.astype(np.float32)))[0]
    assert {g["label"]: g["probability"] for g in top} == pytest.approx(
        dict(zip(["red", "green", "blue"], probabilities.tolist(), strict=True)), abs=1e-5
    )
    assert "attachment" in download.headers["content-disposition"]
    bad = client.post(f"/api/cnn/jobs/{job_id}/classify", content=zip_file())
    assert bad.status_code == 415


def test_a_job_stopped_in_the_queue_has_no_model(client, user) -> None:
    held = hold(client, user)
    job_id = submit(client, user)

    stopped = client.post(f"/api/cnn/jobs/{job_id}/stop").json()
    client.post(f"/api/cnn/jobs/{held}/stop")

    assert stopped["state"] == "stopped" and not stopped["has_model"]
    for answer in (
        client.get(f"/api/cnn/jobs/{job_id}/model.keras"),
        client.get(f"/api/cnn/jobs/{job_id}/train.py"),
        client.post(f"/api/cnn/jobs/{job_id}/classify", content=png()),
    ):
        assert answer.status_code == 409
        assert "stopped before it started" in error_text(answer)


@pytest.mark.parametrize(
    ("error", "reported"),
    [
        (cnn.TrainingDiverged("Diverged: the loss became nan. Received: learning_rate=10"),
         "Diverged: the loss became nan. Received: learning_rate=10"),
        (RuntimeError("out of memory"), "RuntimeError: out of memory"),
    ],
)  # fmt: skip
def test_a_failure_is_reported_not_hidden(client, user, monkeypatch, error, reported) -> None:
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(cnn, "train", fail)
    job_id = submit(client, user)
    with client.websocket_connect(f"/ws/cnn/{job_id}") as ws:
        final = follow(ws)[-1]

    assert (final["state"], final["error"]) == ("failed", reported)
    assert state(client, job_id)["error"] == reported
    answer = client.get(f"/api/cnn/jobs/{job_id}/model.keras")
    assert answer.status_code == 409 and reported in error_text(answer)


def test_pause_and_resume_over_the_socket(client, user) -> None:
    job_id = submit(client, user, epochs=40)
    with client.websocket_connect(f"/ws/cnn/{job_id}") as ws:
        # Running first: the job before this one may still hold the worker (a queued job pauses too).
        follow(ws, until=lambda m: m["type"] == "status" and m["state"] == "running")
        ws.send_text(json.dumps({"type": "pause"}))
        paused = follow(ws, until=lambda m: m["type"] == "status" and m["paused"])[-1]
        ws.send_text(json.dumps({"type": "play"}))
        error = follow(ws, until=lambda m: m["type"] == "error")[-1]
        ws.send_text(json.dumps({"type": "resume"}))
        resumed = follow(ws, until=lambda m: m["type"] == "status" and not m["paused"])[-1]
        ws.send_text(json.dumps({"type": "stop"}))
        final = follow(ws)[-1]

    assert paused["state"] == resumed["state"] == "running"
    assert 'Received: \'{"type": "play"}\'' in error["message"]
    assert final["state"] == "stopped"


@pytest.mark.parametrize("asked", ["status", "stop"])
def test_the_socket_asks_the_job_queue_off_the_event_loop(client, user, monkeypatch, asked):
    """A job queue on Redis answers over the network: while it is slow to answer the socket's
    first status or a control, the server still answers other requests."""
    jobs = client.app.state.live.jobs
    job_id = hold(client, user)
    calling, answered = threading.Event(), threading.Event()
    slow, real = {}, getattr(jobs, asked)

    def slow_call(*args):
        calling.set()
        slow["others_answered"] = answered.wait(30)  # False: the event loop was held
        return real(*args)

    def socket():
        with client.websocket_connect(f"/ws/cnn/{job_id}") as ws:
            if asked == "stop":
                read(ws)
                monkeypatch.setattr(jobs, asked, slow_call)
                ws.send_text(json.dumps({"type": "stop"}))
            follow(ws)

    if asked == "status":
        monkeypatch.setattr(jobs, asked, slow_call)
    thread = threading.Thread(target=socket)
    thread.start()
    assert calling.wait(30)
    assert client.get("/api/cnn/catalog").status_code == 200
    answered.set()
    if asked == "status":
        client.post(f"/api/cnn/jobs/{job_id}/stop")
    thread.join(60)
    assert slow["others_answered"] and not thread.is_alive()


def test_unknown_jobs_and_foreign_origins(client, user) -> None:
    unknown = "0" * 32
    job_id = submit(client, user, epochs=1)

    for answer in (
        client.get(f"/api/cnn/jobs/{unknown}"),
        client.post(f"/api/cnn/jobs/{unknown}/stop"),
        client.get(f"/api/cnn/jobs/{unknown}/train.py"),
    ):
        assert answer.status_code == 404 and "No job has this id" in error_text(answer)
    with (
        pytest.raises(WebSocketDisconnect) as missing,
        client.websocket_connect(f"/ws/cnn/{unknown}"),
    ):
        pass
    with (
        pytest.raises(WebSocketDisconnect) as foreign,
        client.websocket_connect(f"/ws/cnn/{job_id}", headers={"origin": "https://evil.example"}),
    ):
        pass

    assert missing.value.code == lab.CLOSE_NO_SUCH_JOB
    assert foreign.value.code == 1008
    wait_for(client, job_id, "done")


def test_finished_jobs_expire(client, user, monkeypatch) -> None:
    monkeypatch.setattr(SETTINGS, "job_expire_seconds", 0.5)
    job_id = submit(client, user, epochs=1)
    done = wait_for(client, job_id, "done")
    time.sleep(0.6)
    gone = client.get(f"/api/cnn/jobs/{job_id}")

    assert done["expires_at"] == pytest.approx(done["finished_at"] + 0.5)
    assert gone.status_code == 404


def test_the_job_is_portable_to_another_process(client) -> None:
    data = cnn.make_generated("shapes", per_class=2, size=16)
    inputs = job.TrainingJob(data, cnn.TrainConfig(epochs=1), "/tmp/cache")

    again = pickle.loads(pickle.dumps(inputs))

    assert again.config == inputs.config and again.data.class_names == data.class_names
    fn = job.train_job
    assert getattr(importlib.import_module(fn.__module__), fn.__qualname__) is fn
