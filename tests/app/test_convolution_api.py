"""The convolution lab's JSON endpoints with good and bad inputs."""

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from models import convolution as conv
from models.samples import make_sample
from tests.app.json_api import error_text

SOBEL_X = conv.kernel_preset("sobel_x").tolist()
GAUSS = conv.kernel_preset("gaussian_blur").tolist()


def upload(client: TestClient, image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    r = client.post("/api/images", content=buf.getvalue())
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_convolve_a_sample_matches_models(client: TestClient) -> None:
    body = {"input": {"sample": "checkerboard", "size": 32}, "kernels": [SOBEL_X, GAUSS]}
    r = client.post("/api/convolve", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["input_shape"] == [1, 32, 32, 1]
    assert data["filter_shape"] == [3, 3, 1, 2]
    assert data["output_shape"] == [1, 32, 32, 2]
    assert (data["map_height"], data["map_width"], data["map_factor"]) == (32, 32, 1)
    image = conv.to_grayscale(make_sample("checkerboard", 32))
    expected = conv.conv2d(image, np.array([SOBEL_X, GAUSS]))
    got = np.array(data["feature_maps"][0]).reshape(2, 32, 32).transpose(1, 2, 0)
    np.testing.assert_allclose(got, expected[0], atol=1e-4)
    np.testing.assert_allclose(data["max_abs"], np.abs(expected).max(axis=(0, 1, 2)), atol=1e-4)
    np.testing.assert_allclose(np.array(data["image"][0]), image.ravel(), atol=1e-4)
    assert data["compute_ms"] > 0
    assert "compute;dur=" in r.headers["server-timing"]


def test_inline_arrays_strides_and_valid_padding(client: TestClient) -> None:
    x = np.arange(36, dtype=float).reshape(6, 6)
    body = {"input": {"array": x.tolist()}, "kernels": [[[1, 0], [0, -1]]], "stride": 2}
    for padding, shape in (("SAME", [1, 3, 3, 1]), ("VALID", [1, 3, 3, 1])):
        data = client.post("/api/convolve", json=body | {"padding": padding}).json()
        assert data["output_shape"] == shape
        # x[i, j] - x[i+1, j+1] = -7 wherever the 2×2 window is inside the array.
        assert data["feature_maps"][0][0][0] == -7
    rgb = np.random.default_rng(0).random((5, 7, 3))
    data = client.post(
        "/api/convolve", json={"input": {"array": rgb.tolist(), "color": "rgb"}, "kernels": [GAUSS]}
    ).json()
    assert data["input_shape"] == [1, 5, 7, 3] and data["filter_shape"] == [3, 3, 3, 1]
    expected = conv.conv2d(rgb[None], np.array([GAUSS]))[0, :, :, 0]
    np.testing.assert_allclose(np.reshape(data["feature_maps"][0][0], (5, 7)), expected, atol=1e-4)


def test_padding_offsets_let_the_page_rebuild_every_sum(client: TestClient) -> None:
    """What the page does on hover: patch at (i·s − pad_top, j·s − pad_left) times the kernel."""
    rng = np.random.default_rng(3)
    x = rng.random((9, 8))
    k = rng.normal(size=(4, 4)).round(2)
    body = {
        "input": {"array": x.tolist()},
        "kernels": [k.tolist()],
        "stride": 3,
        "mode": "convolution",
    }
    d = client.post("/api/convolve", json=body).json()
    applied = np.array(d["applied_kernels"][0])
    np.testing.assert_array_equal(applied, k[::-1, ::-1])
    padded = np.pad(x, 4)
    out = np.reshape(d["feature_maps"][0][0], (d["map_height"], d["map_width"]))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            top, left = i * 3 - d["pad_top"] + 4, j * 3 - d["pad_left"] + 4
            assert out[i, j] == pytest.approx(
                np.sum(padded[top : top + 4, left : left + 4] * applied), abs=1e-3
            )


def test_convolution_and_correlation(client: TestClient) -> None:
    def maps(kernel: list, mode: str) -> np.ndarray:
        body = {"input": {"sample": "shapes"}, "kernels": [kernel], "mode": mode}
        return np.array(client.post("/api/convolve", json=body).json()["feature_maps"][0][0])

    np.testing.assert_allclose(
        maps(SOBEL_X, "convolution"), -maps(SOBEL_X, "correlation"), atol=1e-4
    )
    assert np.abs(maps(SOBEL_X, "correlation")).max() > 0.3
    np.testing.assert_allclose(maps(GAUSS, "convolution"), maps(GAUSS, "correlation"), atol=1e-4)


def test_large_inputs_are_averaged_down_for_the_answer_only(client: TestClient) -> None:
    body = {"input": {"sample": "gradient", "size": 256, "color": "rgb"}, "kernels": [SOBEL_X] * 8}
    d = client.post("/api/convolve", json=body | {"display_size": 64}).json()
    assert d["output_shape"] == [1, 256, 256, 8] and d["input_shape"] == [1, 256, 256, 3]
    assert (d["map_factor"], d["map_height"], d["map_width"]) == (4, 64, 64)
    assert (d["image_factor"], d["image_height"]) == (4, 64)
    assert len(d["feature_maps"][0]) == 8 and len(d["feature_maps"][0][0]) == 64 * 64
    assert len(d["image"][0]) == 64 * 64 * 3


def test_an_uploaded_image_by_id(client: TestClient) -> None:
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, 30:] = 255
    image_id = upload(client, Image.fromarray(rgb))
    body = {"input": {"image_id": image_id, "size": 30}, "kernels": [SOBEL_X], "padding": "VALID"}
    d = client.post("/api/convolve", json=body).json()
    assert d["input_shape"] == [1, 20, 30, 1]  # shrunk to fit 30 px, aspect kept
    out = np.reshape(d["feature_maps"][0][0], (18, 28))
    assert out[:, 13:15].min() > 3.9 and np.abs(out[:, :12]).max() < 1e-3


def test_a_one_pixel_upload(client: TestClient) -> None:
    image_id = upload(client, Image.new("RGB", (1, 1), (255, 255, 255)))
    body = {"input": {"image_id": image_id}, "kernels": [SOBEL_X]}
    r = client.post("/api/convolve", json=body | {"padding": "VALID"})
    assert r.status_code == 422
    assert "3×3 kernel does not fit in the 1×1 input" in error_text(r)
    r = client.post("/api/convolve", json=body | {"stride": 2})
    assert r.status_code == 422 and "stride 2 is larger than the 1×1 input" in error_text(r)
    d = client.post("/api/convolve", json=body).json()
    assert d["output_shape"] == [1, 1, 1, 1]


def test_unknown_and_malformed_image_ids(client: TestClient) -> None:
    r = client.post("/api/convolve", json={"input": {"image_id": "0" * 32}, "kernels": [SOBEL_X]})
    assert r.status_code == 404 and "upload it again" in r.json()["detail"]
    r = client.post(
        "/api/convolve", json={"input": {"image_id": "../../etc/passwd"}, "kernels": [SOBEL_X]}
    )
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"kernels": [[[1, 2], [3]]]}, "rectangular"),
        ({"kernels": [SOBEL_X, [[1]]]}, "same size"),
        ({"kernels": [[[1] * 10] * 10]}, "at most 9"),
        ({"kernels": [SOBEL_X] * 17}, "at most 16"),
        ({"kernels": []}, "at least 1"),
        (
            {"kernels": [[[1e6]]]},
            "kernels[0][0][0] must be a finite number in [-1000, 1000]. "
            "Received: kernels[0][0][0]=1000000.0",
        ),
        ({"stride": 5}, "less than or equal to 4"),
        ({"stride": 0}, "greater than or equal to 1"),
        ({"padding": "FULL"}, "'SAME' or 'VALID'"),
        ({"mode": "xcorr"}, "'correlation' or 'convolution'"),
        ({"input": {"sample": "dog"}}, "checkerboard"),
        ({"input": {"array": [[1.0] * 65] * 2}}, "at most 64"),
        ({"input": {"array": [[1.0, 2.0], [3.0]]}}, "same length"),
        ({"input": {"array": [[[1.0, 2.0]]]}}, "1 or 3 channels"),
        ({"input": {"sample": "shapes", "image_id": "a" * 32}}, "exactly one"),
        ({"input": {}}, "exactly one"),
        ({"input": {"sample": "shapes", "size": 4096}}, "less than or equal to 512"),
        ({"input": {"sample": "shapes", "url": "http://169.254.169.254/"}}, "Extra inputs"),
    ],
)
def test_bad_requests_are_422_with_a_reason(client: TestClient, body: dict, words: str) -> None:
    base = {"input": {"sample": "checkerboard"}, "kernels": [SOBEL_X]}
    r = client.post("/api/convolve", json=base | body)
    assert r.status_code == 422, r.text
    assert words in r.text


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_422_not_500(client: TestClient, literal: str) -> None:
    text = f'{{"input": {{"sample": "checkerboard"}}, "kernels": [[[{literal}, 0], [0, 1]]]}}'
    r = client.post("/api/convolve", content=text, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "finite numbers only" in r.text


def test_stride_larger_than_an_inline_image(client: TestClient) -> None:
    body = {"input": {"array": [[1, 2, 3], [4, 5, 6]]}, "kernels": [[[1]]], "stride": 3}
    r = client.post("/api/convolve", json=body)
    assert r.status_code == 422
    assert error_text(r) == "stride 3 is larger than the 2×3 input. Received: stride=3"


def test_oversized_json_bodies_are_413(client: TestClient) -> None:
    junk = b'{"input": {"sample": "shapes"}, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    r = client.post("/api/convolve", content=junk, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_pipeline_stages(client: TestClient) -> None:
    body = {
        "input": {"sample": "shapes", "size": 128, "color": "rgb"},
        "kernels": [SOBEL_X, GAUSS],
        "activation": "relu",
        "pool": "max",
        "pool_window": 2,
        "pool_stride": 2,
    }
    d = client.post("/api/convolution/pipeline", json=body).json()
    shapes = {s["name"]: s["shape"] for s in d["stages"]}
    assert shapes == {
        "input": [1, 64, 64, 3],  # shrunk to 64 px for drawing
        "conv2d": [1, 64, 64, 2],
        "relu": [1, 64, 64, 2],
        "max_pool": [1, 32, 32, 2],
        "flatten": [1, 2048],
        "dense": [1, 3],
        "softmax": [1, 3],
    }
    stages = {s["name"]: s for s in d["stages"]}
    conv_map = np.array(stages["conv2d"]["maps"][0])
    relu_map = np.array(stages["relu"]["maps"][0])
    np.testing.assert_allclose(relu_map, np.maximum(conv_map, 0))
    pooled = np.array(stages["max_pool"]["maps"][0])
    np.testing.assert_allclose(relu_map[d["pool_argmax"][0]], pooled)  # each max came from there
    assert sum(stages["softmax"]["values"]) == pytest.approx(1, abs=1e-3)
    avg = client.post("/api/convolution/pipeline", json=body | {"pool": "avg"}).json()
    assert avg["pool_argmax"] is None
    tiny = body | {"input": {"sample": "image_batch"}, "pool_window": 3, "pool_stride": 1}
    r = client.post("/api/convolution/pipeline", json=tiny)
    assert r.status_code == 422
    assert error_text(r).startswith("A 3×3 pooling window does not fit in the 2×3 input")


def test_activations_endpoint(client: TestClient) -> None:
    d = client.get(
        "/api/convolution/activations", params={"x_min": -2, "x_max": 2, "points": 5}
    ).json()
    assert d["x"] == [-2, -1, 0, 1, 2]
    curves = {c["name"]: c for c in d["curves"]}
    assert list(curves) == list(conv.ACTIVATIONS)
    assert curves["relu"]["y"] == [0, 0, 0, 1, 2] and curves["relu"]["dy"] == [0, 0, 0, 1, 1]
    assert curves["sigmoid"]["dy"][2] == 0.25
    r = client.get("/api/convolution/activations", params={"x_min": 3, "x_max": 1})
    assert r.status_code == 422 and "x_min must be below x_max" in r.text
    assert client.get("/api/convolution/activations", params={"points": 10**6}).status_code == 422


def test_signals_endpoint(client: TestClient) -> None:
    d = client.get(
        "/api/convolution/signals", params={"signal": "spiky", "kernel": "box", "frames": 11}
    ).json()
    assert len(d["t"]) == len(d["output"]) == 241
    assert len(d["shifts"]) == len(d["products"]) == len(d["kernel_at"]) == 11
    dt = d["t"][1] - d["t"][0]
    assert sum(d["products"][5]) * dt == pytest.approx(d["output"][d["shifts"][5]], abs=1e-3)
    assert client.get("/api/convolution/signals", params={"signal": "sawtooth"}).status_code == 422


def test_catalog(client: TestClient) -> None:
    d = client.get("/api/convolution/catalog").json()
    names = [k["name"] for k in d["kernels"]]
    assert {"identity", "box_blur", "gaussian_blur", "sharpen", "sobel_x", "sobel_y"} <= set(names)
    assert {"laplacian", "edge", "emboss"} <= set(names)
    sobel = next(k for k in d["kernels"] if k["name"] == "sobel_x")
    assert sobel["weights"]["3"] == SOBEL_X and len(sobel["weights"]["5"]) == 5
    assert {
        "name": "image_batch",
        "title": "image_batch (2 tiny images)",
        "shape": [2, 2, 3, 3],
    } in d["samples"]


def test_openapi_documents_the_endpoints(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    convolve = spec["paths"]["/api/convolve"]["post"]
    ref = convolve["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"input", "kernels", "stride", "padding", "mode"} <= set(request["properties"])
    assert "ConvolveResponse" in spec["components"]["schemas"]
    assert "feature_maps" in spec["components"]["schemas"]["ConvolveResponse"]["properties"]
    upload_spec = spec["paths"]["/api/images"]["post"]
    assert "image/*" in upload_spec["requestBody"]["content"]
    assert {"413", "415", "422"} <= set(upload_spec["responses"])
