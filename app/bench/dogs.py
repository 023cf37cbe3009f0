"""Bench of the dog-photo lab: a pretrained CNN on 1-megapixel JPEGs, against the real server.

Every client runs in this process (threads), outside the server: one photo's server time
(`compute_ms`: decode, queue and the traced call), Grad-CAM, occlusion and feature maps; the
throughput of several clients at once, which the server's micro-batching serves in shared calls;
and a flood larger than the queue, which must be answered 503 with `Retry-After` while the server
stays healthy.
"""

import io
import json
import statistics
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from app.bench import BenchContext, Row, post, within
from app.bench.server import wait_until_warm

SECTION = "dogs"
PHOTO_SIZE = (1155, 866)  # 1.0 megapixel, a phone photo's aspect
# The server builds the model in the background after the live labs' warm-ups: the bench waits
# for those (up to WARM_TIMEOUT_S), then for the model.
WARM_TIMEOUT_S = 600
READY_TIMEOUT_S = 180
CLIENTS = 8
FLOOD = 48  # more requests at once than the default queue (32) holds
CLASSIFY_TARGET_MS = 40.0
GRAD_CAM_TARGET_MS = 150.0


def bench(ctx: BenchContext) -> list[Row]:
    """Times the lab's endpoints at ctx.base once its classifier is ready."""
    wait_until_warm(ctx, WARM_TIMEOUT_S)
    problem = _wait_until_ready(ctx.base)
    if problem:
        return [Row(SECTION, "classifier ready", problem, "ready", False)]
    runs = 8 if ctx.quick else 30
    photo = _jpeg(*PHOTO_SIZE)
    classify = f"{ctx.base}/api/dogs/classify"
    answers = [post(classify, photo, "image/jpeg") for _ in range(3 + runs)][3:]
    image_id = answers[-1]["id"]
    body = json.dumps({"image_id": image_id}).encode()
    gradcam = [post(f"{ctx.base}/api/dogs/gradcam", body) for _ in range(2 + runs)][2:]
    occlusion = [post(f"{ctx.base}/api/dogs/occlusion", body) for _ in range(1 + runs // 4)][1:]
    features = [post(f"{ctx.base}/api/dogs/features", body) for _ in range(2 + runs)][2:]

    def p50(items):
        return statistics.median(a["compute_ms"] for a in items)

    width, height = PHOTO_SIZE
    jpeg = f"{width}×{height} JPEG ({len(photo) // 1024} KB)"
    return [
        *within(
            SECTION, {f"classify a {jpeg}, server time (p50)": p50(answers)}, CLASSIFY_TARGET_MS
        ),
        *within(
            SECTION,
            {"Grad-CAM, last layer 7×7, server time (p50)": p50(gradcam)},
            GRAD_CAM_TARGET_MS,
        ),
        Row(
            SECTION, "occlusion, 7×7 patches = 49 classifications (p50)", f"{p50(occlusion):.0f} ms"
        ),
        Row(SECTION, "feature maps, 16 channels of 112×112 (p50)", f"{p50(features):.1f} ms"),
        *_throughput(classify, photo, runs),
        _full_queue(ctx.base, photo),
    ]


def _wait_until_ready(base: str) -> str:
    """An empty string once `GET /api/dogs/model` answers; else why not (unavailable, or still loading)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/dogs/model", timeout=10):
                return ""
        except urllib.error.HTTPError as exc:
            reason = json.loads(exc.read()).get("detail", "")
            if exc.code != 503 or "Retry-After" not in exc.headers:
                return f"{exc.code}: {reason}"
            if time.monotonic() > deadline:
                return f"still loading after {READY_TIMEOUT_S} s"
        time.sleep(0.5)


def _throughput(url: str, photo: bytes, runs: int) -> list[Row]:
    """Photos per second for one client, then for `CLIENTS` at once, and their batch sizes."""
    began = time.perf_counter()
    for _ in range(runs):
        post(url, photo, "image/jpeg")
    alone = runs / (time.perf_counter() - began)
    per_client = max(2, runs // 2)
    with ThreadPoolExecutor(CLIENTS) as pool:
        began = time.perf_counter()
        batches = list(pool.map(lambda _: _classify_many(url, photo, per_client), range(CLIENTS)))
        together = CLIENTS * per_client / (time.perf_counter() - began)
    sizes = [size for client in batches for size in client]
    return [
        Row(SECTION, "throughput, 1 client after another", f"{alone:.1f} photos/s"),
        Row(SECTION, f"throughput, {CLIENTS} clients at once", f"{together:.1f} photos/s"),
        Row(
            SECTION,
            f"photos per model call, {CLIENTS} clients (mean, max)",
            f"{statistics.mean(sizes):.1f}, {max(sizes)}",
            "mean > 1: micro-batched",
            statistics.mean(sizes) > 1,
        ),
    ]


def _classify_many(url: str, photo: bytes, count: int) -> list[int]:
    return [post(url, photo, "image/jpeg")["batch_size"] for _ in range(count)]


def _full_queue(base: str, photo: bytes) -> Row:
    """Holds the model with two occlusions, then sends `FLOOD` photos at once: those past the
    queue must be refused 503 with Retry-After, the rest classified, the server still healthy."""
    # A photo of its own: the store keeps the most recent 64, and the clients before sent more.
    image_id = post(f"{base}/api/dogs/classify", photo, "image/jpeg")["id"]
    body = json.dumps({"image_id": image_id}).encode()
    holds = [
        threading.Thread(target=post, args=(f"{base}/api/dogs/occlusion", body)) for _ in range(2)
    ]
    for hold in holds:
        hold.start()
    time.sleep(0.1)
    small = _jpeg(64, 48)
    with ThreadPoolExecutor(FLOOD) as pool:
        statuses = list(
            pool.map(lambda _: _status(f"{base}/api/dogs/classify", small), range(FLOOD))
        )
    for hold in holds:
        hold.join()
    refused = [s for s in statuses if s[0] == 503]
    healthy = _status(f"{base}/api/dogs/classify", small)[0] == 200
    ok = bool(refused) and all(retry for _, retry in refused) and healthy
    ok = ok and all(code in (200, 503) for code, _ in statuses)
    return Row(
        SECTION,
        f"{FLOOD} photos at once while the model is busy",
        f"{len(refused)} × 503 Retry-After, {statuses.count((200, False))} × 200",
        "some 503, then healthy",
        ok,
    )


def _status(url: str, photo: bytes) -> tuple[int, bool]:
    """(HTTP status, whether it carried Retry-After) of one classify request."""
    request = urllib.request.Request(url, data=photo, headers={"Content-Type": "image/jpeg"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, "Retry-After" in response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, "Retry-After" in exc.headers


def _jpeg(width: int, height: int) -> bytes:
    """A photo-like JPEG: smooth colour fields with grain, as a camera makes them."""
    rng = np.random.default_rng(0)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), np.float32)
    grain = rng.normal(0, 6, smooth.shape)
    pixels = np.clip(smooth + grain, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()
