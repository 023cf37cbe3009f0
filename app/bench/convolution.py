"""Bench of the convolution lab: a 512×512 RGB image through a bank of 8 kernels in ≤ 50 ms.

Measured three ways: `conv2d` in this process, the server's own `compute_ms` for
`POST /api/convolve` on an uploaded image, and the HTTP round trip seen by a client.
"""

import io
import json
import statistics
import time
import urllib.request

import numpy as np
from PIL import Image

from app.bench import Row
from models import convolution as conv
from models.samples import make_sample

SECTION = "convolution"
SIDE = 512
KERNELS = (
    "identity",
    "box_blur",
    "gaussian_blur",
    "sharpen",
    "sobel_x",
    "sobel_y",
    "edge",
    "emboss",
)
WARMUP = 3
RUNS = 20
TARGET_MS = 50.0
TIMEOUT_S = 30


def run(base_url: str) -> list[Row]:
    """Measures the 512×512×3 × 8-kernel case in-process and against the server at base_url."""
    kernels = np.stack([conv.kernel_preset(name) for name in KERNELS])
    image = make_sample("shapes", SIDE)
    local = _median_ms(lambda: conv.conv2d(image, kernels))

    pixels = np.round(image[0] * 255).astype(np.uint8)
    start = time.perf_counter()
    uploaded = _post(f"{base_url}/api/images", _png(pixels), "image/png")
    upload_ms = (time.perf_counter() - start) * 1000
    body = json.dumps(
        {
            "input": {"image_id": uploaded["id"], "color": "rgb", "size": SIDE},
            "kernels": kernels.tolist(),
            "display_size": 128,
        }
    ).encode()
    server, round_trip = [], []
    for i in range(WARMUP + RUNS):
        start = time.perf_counter()
        answer = _post(f"{base_url}/api/convolve", body, "application/json")
        if i >= WARMUP:
            round_trip.append((time.perf_counter() - start) * 1000)
            server.append(answer["compute_ms"])
    if answer["output_shape"] != [1, SIDE, SIDE, len(KERNELS)]:
        raise RuntimeError(f"unexpected output shape {answer['output_shape']}")

    case = f"{SIDE}×{SIDE}×3 × {len(KERNELS)} kernels"
    target = f"≤ {TARGET_MS:g} ms"
    p50 = statistics.median(server)
    return [
        Row(
            SECTION,
            f"conv2d {case}, in-process (median)",
            f"{local:.1f} ms",
            target,
            local <= TARGET_MS,
        ),
        Row(
            SECTION,
            f"/api/convolve {case}, server time (median)",
            f"{p50:.1f} ms",
            target,
            p50 <= TARGET_MS,
        ),
        Row(
            SECTION,
            "/api/convolve round trip, 128² maps back (median)",
            f"{statistics.median(round_trip):.1f} ms",
        ),
        Row(SECTION, "/api/convolve round trip (p95)", f"{np.percentile(round_trip, 95):.1f} ms"),
        Row(SECTION, f"/api/images upload of a {SIDE}×{SIDE} PNG", f"{upload_ms:.1f} ms"),
    ]


def _median_ms(fn) -> float:
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def _post(url: str, data: bytes, content_type: str) -> dict:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        return json.loads(response.read())
