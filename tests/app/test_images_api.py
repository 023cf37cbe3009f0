"""The images lab's endpoints: samples and uploads, every step, the bad files, never a 500."""

import io
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient
from PIL import Image

from app.image_store import ImageStore, StoredImage
from app.labs import find_lab
from app.labs.images import LAB
from app.main import create_app
from app.routes.uploads import WORKING_SIDE
from app.settings import Settings
from models import image_pipeline as ip
from tests.app.json_api import error_text, strict_json

API = "/api/image-lab"
COURSE = [
    {"op": "resize", "height": 32, "width": 32},
    {"op": "cast", "dtype": "float32"},
    {"op": "normalize", "mode": "symmetric"},
    {"op": "batch"},
]


@pytest.fixture(scope="module")
def lab():
    with TestClient(create_app(Settings())) as c:
        yield c


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def photo(width: int = 80, height: int = 60) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 120)], -1)
    return Image.fromarray(rgb.astype(np.uint8))


def upload(client: TestClient, data: bytes, **headers) -> str:
    r = client.post("/api/images", content=data, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def run(client: TestClient, source: dict, steps: list, **options) -> dict:
    r = client.post(f"{API}/pipeline", json={"source": source, "steps": steps, **options})
    assert r.status_code == 200, r.text
    return strict_json(r.text)


def png_of(client: TestClient, url: str) -> np.ndarray:
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(r.content)))


# --- The lab in the registry -------------------------------------------------------------------


def test_the_lab_is_registered_with_its_page(lab: TestClient) -> None:
    assert find_lab("images") is LAB and LAB.ready is True and LAB.router is not None
    assert 'data-lab="images"' in lab.get("/labs/images").text
    assert [v for v, _ in LAB.choices["mode"]] == list(ip.NORMALIZATIONS)
    assert [v for v, _ in LAB.choices["method"]] == list(ip.RESIZE_METHODS)
    schema = lab.get("/openapi.json").json()
    assert f"{API}/pipeline" in schema["paths"] and "ResizeStep" in schema["components"]["schemas"]


def test_catalog_lists_what_the_page_builds_from(lab: TestClient) -> None:
    d = lab.get(f"{API}/catalog").json()
    assert [s["name"] for s in d["samples"]] == list(ip.SAMPLE_FILES)
    resize = next(o for o in d["operations"] if o["op"] == "resize")
    assert resize["tf_function"] == "tf.image.resize"
    height = next(p for p in resize["params"] if p["name"] == "height")
    assert (height["type"], height["default"], height["min"], height["max"]) == (
        "int",
        224,
        1,
        1024,
    )
    assert [n["mode"] for n in d["normalizations"]] == list(ip.NORMALIZATIONS)
    assert d["limits"]["working_side"] == WORKING_SIDE


def test_sample_files_download_as_the_lab_decodes_them(lab: TestClient) -> None:
    r = lab.get(f"{API}/samples/phone_photo")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == ip.sample_file("phone_photo")
    assert 'filename="phone_photo.jpg"' in r.headers["content-disposition"]
    r = lab.get(f"{API}/samples/nope")
    assert r.status_code == 404 and "No sample is called 'nope'" in r.json()["detail"]


# --- Describe ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ip.SAMPLE_FILES)
def test_describe_every_sample(lab: TestClient, name: str) -> None:
    r = lab.post(f"{API}/describe", json={"source": {"sample": name}})
    assert r.status_code == 200, r.text
    d = strict_json(r.text)
    data = ip.sample_file(name)
    assert d["file"]["bytes"] == len(data)
    if d["file"]["format"] != "WEBP":  # TensorFlow's WebP decoder is never run (see models/)
        assert d["tensorflow"]["shape"] == list(tf.io.decode_image(data).shape)
    assert d["decoded"]["call"].startswith("tf.io.decode_image(data")
    assert d["decoded"]["shape"] == d["working_copy"]["shape"]
    pixels = png_of(lab, d["decoded"]["preview"])
    assert pixels.shape[:2] == (d["decoded"]["preview_height"], d["decoded"]["preview_width"])
    assert (d["upright"] is None) is (name != "phone_photo")


def test_describe_a_phone_photo_raw_and_upright(lab: TestClient) -> None:
    d = lab.post(f"{API}/describe", json={"source": {"sample": "phone_photo"}}).json()
    assert d["file"]["orientation"] == 6
    assert d["file"]["orientation_meaning"] == "rotate 90° clockwise to display"
    assert d["tensorflow"]["shape"] == [256, 384, 3]  # lying on its side
    assert any("ignored by tf.io.decode_image" in n for n in d["tensorflow"]["notes"])
    assert (
        d["upright"]["shape"] == [384, 256, 3] and d["upright"]["call"] == "tf.image.rot90(x, k=3)"
    )
    assert png_of(lab, d["upright"]["preview"]).shape[:2] == (384, 256)


def test_describe_a_big_upload_reports_its_working_copy(lab: TestClient) -> None:
    image_id = upload(lab, encode(photo(2400, 1800), "JPEG"))
    d = lab.post(f"{API}/describe", json={"source": {"image_id": image_id}}).json()
    assert d["tensorflow"]["shape"] == [1800, 2400, 3] and d["tensorflow"]["batch_shape"] == [
        1,
        1800,
        2400,
        3,
    ]
    assert d["working_copy"]["shape"] == [576, 768, 3]
    assert d["working_copy"]["scale"] == pytest.approx(0.32)
    assert "2400×1800" in d["working_copy"]["note"]
    assert (
        d["compute_ms"] > 0
        and "compute;dur="
        in lab.post(f"{API}/describe", json={"source": {"image_id": image_id}}).headers[
            "server-timing"
        ]
    )


# --- The pipeline ------------------------------------------------------------------------------


def test_the_course_pipeline_on_an_upload(lab: TestClient) -> None:
    image_id = upload(lab, encode(photo(), "PNG"))
    d = run(lab, {"image_id": image_id}, COURSE, decode={"channels": 3}, bins=16)
    stages = d["stages"]
    assert [s["op"] for s in stages] == ["decode", "resize", "cast", "normalize", "batch"]
    assert [s["index"] for s in stages] == [0, 1, 2, 3, 4]
    assert stages[0]["shape"] == [60, 80, 3] and stages[0]["dtype"] == "uint8"
    assert stages[-1]["shape"] == [1, 32, 32, 3] and stages[-1]["dtype"] == "float32"
    assert stages[1]["call"] == 'tf.image.resize(x, (32, 32), method="bilinear")'
    normalized = stages[3]
    assert -1 <= normalized["value_min"] < -0.9 and 0.9 < normalized["value_max"] <= 1
    assert normalized["display"] == {"kind": "diverging", "low": -1.0, "high": 1.0}
    assert [c["name"] for c in normalized["channels"]] == ["R", "G", "B"]
    assert all(sum(h) == 32 * 32 for h in normalized["histogram"]["counts"])
    assert len(normalized["histogram"]["counts"][0]) == 16
    drawn = png_of(lab, normalized["preview"])
    assert drawn.mean() > 60  # a [−1, 1] image is drawn as itself, never black
    assert d["snippet"].startswith("import tensorflow as tf")
    assert 'tf.io.read_file("image.png")' in d["snippet"]


def test_report_last_is_one_stage_and_previews_fit(lab: TestClient) -> None:
    d = run(
        lab,
        {"sample": "photo"},
        [{"op": "flip_left_right"}, {"op": "brightness", "delta": -0.3}],
        report="last",
        preview_side=100,
    )
    (stage,) = d["stages"]
    assert stage["index"] == 2 and stage["op"] == "brightness"
    assert stage["call"] == "tf.image.adjust_brightness(x, delta=-0.3)"
    assert (stage["preview_width"], stage["preview_height"]) == (100, 67)
    assert png_of(lab, stage["preview"]).shape == (67, 100, 3)
    assert "flip_left_right" in d["snippet"]  # the snippet has every step


def test_a_slider_move_changes_the_preview_and_histogram(lab: TestClient) -> None:
    def brightness(delta: float) -> dict:
        steps = [{"op": "brightness", "delta": delta}]
        return run(lab, {"sample": "photo"}, steps, report="last")["stages"][0]

    darker, brighter = brightness(-0.2), brightness(0.2)
    assert brighter["channels"][0]["mean"] > darker["channels"][0]["mean"] + 40
    assert brighter["histogram"]["counts"] != darker["histogram"]["counts"]
    assert png_of(lab, brighter["preview"]).mean() > png_of(lab, darker["preview"]).mean()


def test_jpeg_quality_reports_its_size(lab: TestClient) -> None:
    sizes = [
        run(lab, {"sample": "photo"}, [{"op": "jpeg_quality", "jpeg_quality": q}], report="last")[
            "stages"
        ][0]["jpeg_bytes"]
        for q in (10, 95)
    ]
    assert 0 < sizes[0] < sizes[1]


def test_sixteen_bits_and_alpha_reach_the_inspector(lab: TestClient) -> None:
    wide = run(lab, {"sample": "gray16"}, [], decode={"dtype": "uint16"})["stages"][0]
    assert wide["dtype"] == "uint16" and wide["value_max"] > 255
    assert wide["display"]["high"] == 65535 and wide["histogram"]["high"] == 65536
    logo = run(lab, {"sample": "logo"}, [])["stages"][0]
    assert logo["shape"][-1] == 4 and [c["name"] for c in logo["channels"]] == ["R", "G", "B", "A"]
    assert png_of(lab, logo["preview"]).shape[-1] == 4  # transparency kept for the page
    upright = run(lab, {"sample": "phone_photo"}, [], decode={"apply_exif": True})["stages"][0]
    assert upright["shape"] == [384, 256, 3] and upright["call"].startswith("tf.image.rot90(")


def test_the_result_downloads_as_png(lab: TestClient) -> None:
    body = {
        "source": {"sample": "photo"},
        "steps": [{"op": "central_crop", "central_fraction": 0.5}],
    }
    r = lab.post(f"{API}/pipeline.png", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"] == 'attachment; filename="pipeline.png"'
    assert Image.open(io.BytesIO(r.content)).size == (192, 128)  # full size, not a preview


# --- Normalizations and augmentation -----------------------------------------------------------


@pytest.mark.parametrize("name", ["photo", "gray16", "logo"])
def test_normalizations_side_by_side(lab: TestClient, name: str) -> None:
    r = lab.post(f"{API}/normalizations", json={"source": {"sample": name}})
    assert r.status_code == 200, r.text
    rows = {row["mode"]: row for row in strict_json(r.text)["rows"]}
    assert list(rows) == ["raw", *ip.NORMALIZATIONS]
    assert rows["raw"]["stage"]["value_max"] > 1 and rows["unit"]["stage"]["value_max"] <= 1
    assert rows["symmetric"]["stage"]["value_min"] >= -1
    per_image = rows["per_image"]["stage"]["channels"]
    assert abs(np.mean([c["mean"] for c in per_image])) < 1e-3
    assert rows["raw"]["gradient"]["update_ratio"] > 1
    assert rows["unit"]["gradient"]["update_ratio"] < 0.1
    assert all(row["why"] and row["stage"]["call"] for row in rows.values())


def test_augmentation_grid_is_replayable(lab: TestClient) -> None:
    body = {"source": {"sample": "photo"}, "seed": 42, "count": 4, "side": 64}
    first = lab.post(f"{API}/augment", json=body).json()
    again = lab.post(f"{API}/augment", json=body).json()
    other = lab.post(f"{API}/augment", json=body | {"seed": 43}).json()
    assert len(first["images"]) == 4 and first["input_shape"] == [43, 64, 3]
    draws = [image["draws"] for image in first["images"]]
    assert draws == [image["draws"] for image in again["images"]]
    assert draws != [image["draws"] for image in other["images"]]
    assert [d["op"] for d in draws[0]] == [
        "crop",
        "flip_left_right",
        "brightness",
        "contrast",
        "saturation",
        "hue",
    ]
    assert draws[0][2]["call"].startswith("tf.image.stateless_random_brightness(x, max_delta=0.2")
    assert -0.2 <= draws[0][2]["drawn"]["delta"] < 0.2
    assert "stateless_random_hue" in first["snippet"]
    assert png_of(lab, first["images"][0]["preview"]).shape[:2] == tuple(
        first["images"][0]["shape"][:2]
    )


# --- Bad requests: a 4xx that says why ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        (
            {"source": {"sample": "photo"}, "steps": [{"op": "resize", "height": 5000}]},
            ["body", "steps", 0, "resize", "height"],
            "resize.height must be an integer in [1, 1024]. Received: resize.height=5000",
        ),
        (
            {"source": {"sample": "photo"}, "steps": [{"op": "hue", "delta": "a"}]},
            ["body", "steps", 0, "hue", "delta"],
            "hue.delta must be a finite number in [-0.5, 0.5]. Received: hue.delta='a'",
        ),
        (
            {"source": {"sample": "photo"}, "steps": [{"op": "resize", "method": "lanczos"}]},
            ["body", "steps", 0, "resize", "method"],
            "resize.method must be one of ['bilinear', 'nearest', 'bicubic', 'area']. "
            "Received: resize.method='lanczos'",
        ),
        (
            {"source": {"sample": "gray"}, "steps": [{"op": "flip_up_down"}, {"op": "hue"}]},
            ["body", "steps", 1],
            "steps[1] (hue): tf.image.adjust_hue needs 3 (RGB) channels. Received: "
            "shape=(256, 384, 1); decode with channels=3 or add grayscale_to_rgb first.",
        ),
        (
            {"source": {"sample": "photo"}, "steps": [{"op": "batch"}, {"op": "flip_up_down"}]},
            ["body", "steps", 0],
            "steps[0]: batch adds the batch axis, so it comes last",
        ),
        (
            {"source": {"sample": "photo"}, "steps": [{"op": "blur"}]},
            ["body", "steps", 0],
            "does not match any of the expected tags",
        ),
        (
            {"source": {"sample": "photo", "image_id": "0" * 32}},
            ["body", "source"],
            "Give exactly one of sample or image_id",
        ),
        (
            {"source": {"sample": "photo"}, "steps": [{"op": "flip_up_down", "k": 2}]},
            ["body", "steps", 0, "flip_up_down", "k"],
            "Extra inputs are not permitted",
        ),
        (
            {"source": {"sample": "photo"}, "steps": [{"op": "clip"}] * 17},
            ["body", "steps"],
            "at most 16 items",
        ),
    ],
)
def test_bad_pipelines_are_a_422_naming_field_value_and_rule(
    lab: TestClient, body: dict, loc: list, message: str
) -> None:
    r = lab.post(f"{API}/pipeline", json=body)
    assert r.status_code == 422
    (error,) = strict_json(r.text)["detail"]
    assert error["loc"] == loc and message in error["msg"]


def test_bad_augmentations_are_a_422(lab: TestClient) -> None:
    for body, words in (
        ({"augmentations": [{"op": "contrast", "lower": 2, "upper": 1}]}, "must be below"),
        ({"seed": -1}, "seed must be an integer in [0, 2147483647]. Received: seed=-1"),
        ({"count": 17}, "count must be an integer in [1, 16]"),
    ):
        r = lab.post(f"{API}/augment", json={"source": {"sample": "photo"}} | body)
        assert r.status_code == 422 and words in error_text(r)


def test_unknown_or_expired_images_and_previews_are_404(lab: TestClient) -> None:
    for path in ("describe", "pipeline", "normalizations", "augment"):
        r = lab.post(f"{API}/{path}", json={"source": {"image_id": "0" * 32}})
        assert r.status_code == 404 and "upload it again" in r.json()["detail"]
    without_copy = lab.app.state.image_store.put(
        StoredImage(np.zeros((4, 4, 3), np.uint8), "PNG", (4, 4))
    )
    r = lab.post(f"{API}/describe", json={"source": {"image_id": without_copy}})
    assert r.status_code == 404
    r = lab.get(f"{API}/previews/{'0' * 32}.png")
    assert r.status_code == 404 and "expired" in r.json()["detail"]


# --- Bad files: a correct result or a 4xx with a reason, never a 500 ---------------------------


def _animated() -> bytes:
    frames = [Image.new("RGB", (20, 10), (i * 60, 30, 90)) for i in range(4)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("dog.png", encode(photo(), "PNG"))
    return buf.getvalue()


GOOD_ODD_FILES = {
    "one_pixel": encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"),
    "one_pixel_gray_jpeg": encode(Image.new("L", (1, 1), 7), "JPEG"),
    "one_pixel_high": encode(Image.new("RGB", (1, 8000), (9, 99, 199)), "PNG"),
    "one_pixel_wide": encode(Image.new("RGB", (8000, 1), (9, 99, 199)), "PNG"),
    "animated_gif": _animated(),
    "sixteen_bit": encode(Image.fromarray(np.full((9, 7), 40000, np.uint16)), "PNG"),
    "cmyk": encode(photo().convert("CMYK"), "JPEG"),
    "rgba": encode(photo().convert("RGBA"), "PNG"),
    "jpeg_labelled_png": encode(photo(), "JPEG"),
}
BAD_FILES = [
    (b"", 422, "empty"),
    (encode(photo(), "JPEG")[:300], 422, "truncated"),
    (_zip(), 415, "ZIP archive"),
    (encode(photo(), "TIFF"), 415, "TIFF"),
    (b"<svg></svg>", 415, "SVG"),
]


@pytest.mark.parametrize(("data", "status", "words"), BAD_FILES)
def test_bad_files_are_refused_with_a_reason(
    lab: TestClient, data: bytes, status: int, words: str
) -> None:
    r = lab.post("/api/images", content=data, headers={"content-type": "image/png"})
    assert r.status_code == status and words in error_text(r)


@pytest.mark.parametrize("name", GOOD_ODD_FILES)
def test_odd_files_work_through_every_endpoint_and_step(lab: TestClient, name: str) -> None:
    image_id = upload(lab, GOOD_ODD_FILES[name], **{"content-type": "image/png"})
    source = {"image_id": image_id}
    r = lab.post(f"{API}/describe", json={"source": source})
    assert r.status_code == 200, r.text
    described = r.json()
    if name == "animated_gif":
        assert described["file"]["frames"] == 4 and described["tensorflow"]["shape"][0] == 4
    if name == "sixteen_bit":
        assert described["file"]["bit_depth"] == 16
    if name == "jpeg_labelled_png":
        assert described["file"]["format"] == "JPEG"
    for path in ("normalizations", "augment"):
        assert lab.post(f"{API}/{path}", json={"source": source}).status_code == 200
    steps = [{"op": op} for op in ip.OPERATIONS]
    steps += [{"op": "resize", "fit": "keep_aspect"}, {"op": "resize", "fit": "pad"}]
    for step in steps:
        for channels in (0, 3):
            r = lab.post(
                f"{API}/pipeline",
                json={"source": source, "decode": {"channels": channels}, "steps": [step]},
            )
            assert r.status_code in (200, 422), (step, channels, r.text)
            if r.status_code == 422:
                assert strict_json(r.text)["detail"][0]["loc"][:3] == ["body", "steps", 0]


def test_the_users_file_name_goes_nowhere(lab: TestClient) -> None:
    headers = {"content-disposition": 'attachment; filename="../../my-holiday.png"'}
    image_id = upload(lab, encode(photo(), "PNG"), **headers)
    d = lab.post(f"{API}/pipeline", json={"source": {"image_id": image_id}, "steps": COURSE})
    assert "holiday" not in d.text and 'read_file("image.png")' in d.json()["snippet"]


def test_the_store_counts_the_working_copy() -> None:
    store = ImageStore(max_images=10, max_bytes=1000)
    image = StoredImage(
        np.zeros((10, 10, 3), np.uint8), "PNG", (10, 10), None, np.zeros(200, np.uint8)
    )
    assert image.nbytes == 500
    ids = [store.put(image) for _ in range(3)]
    assert len(store) == 2 and store.nbytes == 1000 and store.get(ids[0]) is None
