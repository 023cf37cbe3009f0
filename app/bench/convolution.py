"""Bench of the convolution lab: a 512×512 RGB image through a bank of 8 kernels in ≤ 50 ms.

Measured three ways: `conv2d` in this process, the server's own `compute_ms` for
`POST /api/convolve` on an uploaded image, and the HTTP round trip seen by a client.
"""

import io
import json
import statistics
import time

import numpy as np
from PIL import Image

from app.bench import BenchContext, Row, median_ms, post, timed_posts, within
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


def bench(ctx: BenchContext) -> list[Row]:
    """Measures the 512×512×3 × 8-kernel case in-process and against the server at ctx.base."""
    kernels = np.stack([conv.kernel_preset(name) for name in KERNELS])
    image = make_sample("shapes", SIDE)
    local = median_ms(lambda: conv.conv2d(image, kernels), WARMUP, RUNS)

    pixels = np.round(image[0] * 255).astype(np.uint8)
    start = time.perf_counter()
    uploaded = post(f"{ctx.base}/api/images", _png(pixels), "image/png")
    upload_ms = (time.perf_counter() - start) * 1000
    body = json.dumps(
        {
            "input": {"image_id": uploaded["id"], "color": "rgb", "size": SIDE},
            "kernels": kernels.tolist(),
            "display_size": 128,
        }
    ).encode()
    answer, round_trip, server = timed_posts(f"{ctx.base}/api/convolve", body, WARMUP, RUNS)
    if answer["output_shape"] != [1, SIDE, SIDE, len(KERNELS)]:
        raise RuntimeError(f"unexpected output shape {answer['output_shape']}")

    case = f"{SIDE}×{SIDE}×3 × {len(KERNELS)} kernels"
    timed = {
        f"conv2d {case}, in-process (median)": local,
        f"/api/convolve {case}, server time (median)": statistics.median(server),
    }
    return [
        *within(SECTION, timed, TARGET_MS),
        Row(
            SECTION,
            "/api/convolve round trip, 128² maps back (median)",
            f"{statistics.median(round_trip):.1f} ms",
        ),
        Row(SECTION, "/api/convolve round trip (p95)", f"{np.percentile(round_trip, 95):.1f} ms"),
        Row(SECTION, f"/api/images upload of a {SIDE}×{SIDE} PNG", f"{upload_ms:.1f} ms"),
    ]


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()
