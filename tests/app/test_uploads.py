"""POST /api/images: caps before reading and before decoding, content allowlist, a bounded store."""

import io
import socket
import struct
import threading
import time
import zipfile
import zlib

import httpx
import numpy as np
import psutil
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from app.image_store import ImageStore, StoredImage
from app.main import create_app
from app.routes.uploads import photo_cap
from app.settings import Settings
from tests.app.json_api import error_text


def encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG declaring width×height in a few hundred bytes (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


PHOTO = Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), np.uint8))


def test_upload_a_png(client: TestClient) -> None:
    r = client.post(
        "/api/images", content=encode(PHOTO, "PNG"), headers={"content-type": "image/png"}
    )
    assert r.status_code == 201
    d = r.json()
    assert len(d["id"]) == 32 and int(d["id"], 16) >= 0
    assert d | {"id": ""} == {
        "id": "",
        "format": "PNG",
        "width": 80,
        "height": 60,
        "channels": 3,
        "original_width": 80,
        "original_height": 60,
        "shape": [1, 60, 80, 3],
    }
    stored = client.app.state.image_store.get(d["id"])
    np.testing.assert_array_equal(stored.pixels, np.asarray(PHOTO))


def test_a_jpeg_labelled_png_is_still_a_jpeg(client: TestClient) -> None:
    r = client.post(
        "/api/images", content=encode(PHOTO, "JPEG"), headers={"content-type": "image/png"}
    )
    assert r.status_code == 201 and r.json()["format"] == "JPEG"


def test_big_images_are_stored_at_most_512_px(client: TestClient) -> None:
    big = Image.new("RGB", (2048, 1024), (10, 20, 30))
    d = client.post("/api/images", content=encode(big, "JPEG")).json()
    assert (d["width"], d["height"], d["original_width"]) == (512, 256, 2048)


def test_a_one_pixel_image(client: TestClient) -> None:
    r = client.post("/api/images", content=encode(Image.new("L", (1, 1), 7), "PNG"))
    assert r.status_code == 201 and r.json()["shape"] == [1, 1, 1, 3]


def test_a_zip_renamed_png_is_415(client: TestClient) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("dog.png", encode(PHOTO, "PNG"))
    headers = {"content-type": "image/png", "content-disposition": 'attachment; filename="dog.png"'}
    r = client.post("/api/images", content=buf.getvalue(), headers=headers)
    assert r.status_code == 415
    assert "ZIP archive, not an image" in r.json()["detail"]


def test_a_20000_by_20000_png_header_is_413_before_decoding(client: TestClient) -> None:
    rss = psutil.Process().memory_info().rss
    r = client.post("/api/images", content=png_header(20000, 20000))
    assert r.status_code == 413
    assert "pixels" in r.json()["detail"]
    assert psutil.Process().memory_info().rss - rss < 200 * 1024 * 1024  # decoding needs 400 MB
    r = client.post("/api/images", content=png_header(5000, 5000))
    assert r.status_code == 413 and "5000×5000 = 25,000,000 pixels" in r.json()["detail"]
    assert client.post("/api/images", content=encode(PHOTO, "PNG")).status_code == 201


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"", 422, "empty"),
        (b"\xde\xad\xbe\xef" * 3, 415, "not a known image format"),
        (b'<svg><script>alert("x")</script></svg>', 415, "SVG"),
        (b"<html><body>dog</body></html>", 415, "markup"),
        (encode(PHOTO, "JPEG")[:400], 422, "truncated"),
        (encode(PHOTO, "TIFF"), 415, "TIFF"),
    ],
)
def test_bad_files_get_a_reason(client: TestClient, data: bytes, status: int, words: str) -> None:
    r = client.post("/api/images", content=data)
    assert r.status_code == status
    assert words in error_text(r)


def test_multipart_forms_are_refused(client: TestClient) -> None:
    files = {"file": ("../../etc/passwd", encode(PHOTO, "PNG"), "image/png")}
    r = client.post("/api/images", files=files)
    assert r.status_code == 415 and "not a form" in r.json()["detail"]


def test_byte_cap_from_settings() -> None:
    png = encode(PHOTO, "PNG")
    with TestClient(create_app(Settings(max_upload_bytes=len(png)))) as c:
        assert c.post("/api/images", content=png).status_code == 201  # exactly the limit
        r = c.post("/api/images", content=png + b"\x00")
        assert r.status_code == 413
        assert f"at most {len(png):,} bytes" in r.json()["detail"]

        def chunks():  # no Content-Length: counted while it streams
            for i in range(0, len(png) + 4096, 1024):
                yield (png + bytes(4096))[i : i + 1024]

        r = c.post("/api/images", content=chunks())
        assert r.status_code == 413 and "at least" in r.json()["detail"]


def test_a_photo_routes_413_names_the_photo_cap_not_the_room_for_a_form() -> None:
    """A photo endpoint takes a form too, so its body cap has room for the boundaries; its 413s,
    the route's and the decoder's, both name the photo's cap."""
    cap = 50_000
    with TestClient(create_app(Settings(max_upload_bytes=cap))) as c:
        path = f"/api/cnn/datasets/{c.post('/api/cnn/datasets').json()['id']}/images?label=dog"
        for size in (cap + 1, photo_cap(c.app.state.settings) + 1):
            r = c.post(path, content=b"\xff\xd8\xff" + bytes(size - 3))
            assert r.status_code == 413
            assert f"at most {cap:,}" in r.json()["detail"] and f"{size:,} bytes" in error_text(r)


def test_the_store_is_bounded_and_evicts_the_oldest(client: TestClient) -> None:
    client.app.state.image_store = ImageStore(max_images=2)
    ids = [client.post("/api/images", content=encode(PHOTO, "PNG")).json()["id"] for _ in range(3)]
    kernel = [[[1.0]]]
    statuses = [
        client.post("/api/convolve", json={"input": {"image_id": i}, "kernels": kernel}).status_code
        for i in ids
    ]
    assert statuses == [404, 200, 200]


def test_store_counts_bytes() -> None:
    store = ImageStore(max_images=10, max_bytes=1000)
    pixels = np.zeros((10, 10, 3), np.uint8)  # 300 bytes each
    ids = [store.put(StoredImage(pixels, "PNG", (10, 10))) for _ in range(4)]
    assert len(store) == 3 and store.nbytes == 900
    assert store.get(ids[0]) is None and store.get(ids[3]) is not None
    with pytest.raises(ValueError, match="exceeds"):
        store.put(StoredImage(np.zeros((20, 20, 3), np.uint8), "PNG", (20, 20)))


@pytest.fixture(scope="module")
def server_url():
    """A real uvicorn server: TestClient bypasses uvicorn, whose own limits are part of the test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(Settings(port=port)), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_over_uvicorn_9_mib_is_refused(server_url: str) -> None:
    nine_mib = bytes(9 * 1024 * 1024)
    r = httpx.post(f"{server_url}/api/images", content=nine_mib, timeout=30)
    assert r.status_code == 413

    def chunked():
        for _ in range(9 * 16):
            yield bytes(64 * 1024)

    try:
        r = httpx.post(f"{server_url}/api/images", content=chunked(), timeout=30)
        assert r.status_code == 413
    except httpx.WriteError:
        pass  # the server may answer 413 and close before the client finished sending
    ok = httpx.post(f"{server_url}/api/images", content=encode(PHOTO, "PNG"), timeout=30)
    assert ok.status_code == 201
    assert httpx.get(f"{server_url}/healthz").status_code == 200
