"""Bench of the images lab: a 12-megapixel JPEG from upload to inspected preview in ≤ 300 ms, and
each manipulation of its working copy (statistics, histograms and preview included) in ≤ 30 ms.

Measured against the running server: the upload's round trip (an upper bound of its server
time), then the server's own `compute_ms` of `POST /api/image-lab/describe` and of
`POST /api/image-lab/pipeline` with one step, reporting only that step, and a preview's fetch.
"""

import io
import json
import statistics
import time
import urllib.request

import numpy as np
from PIL import Image

from app.bench import BenchContext, Row, post, timed_posts, within
from app.bench.server import wait_until_warm

SECTION = "images"
PHOTO_SIZE = (4032, 3024)  # a phone's 12-megapixel photo
UPLOAD_TARGET_MS = 300.0
STEP_TARGET_MS = 30.0
STEPS = (
    ("brightness", {"delta": 0.2}),
    ("contrast", {"contrast_factor": 1.5}),
    ("saturation", {"saturation_factor": 1.5}),
    ("hue", {"delta": 0.1}),
    ("gamma", {"gamma": 0.5}),
    ("jpeg_quality", {"jpeg_quality": 30}),
    ("grayscale", {}),
    ("flip_left_right", {}),
    ("rot90", {"k": 1}),
    ("central_crop", {"central_fraction": 0.5}),
    ("resize", {"height": 224, "width": 224, "method": "bicubic", "antialias": True}),
    ("crop_or_pad", {"target_height": 640, "target_width": 640}),
    ("normalize", {"mode": "per_image"}),
)


def bench(ctx: BenchContext) -> list[Row]:
    """Uploads a generated 12 MP JPEG to ctx.base, then times the lab's endpoints on it."""
    wait_until_warm(ctx)  # the live labs' start-up compiles would share the CPU with every figure
    warmup, runs = (1, 3) if ctx.quick else (2, 7)
    photo = _photo_jpeg()
    uploads = []
    for _ in range(warmup + runs):
        start = time.perf_counter()
        uploaded = post(f"{ctx.base}/api/images", photo, "image/jpeg", timeout=60)
        uploads.append((time.perf_counter() - start) * 1000)
    upload_ms = statistics.median(uploads[warmup:])
    source = {"image_id": uploaded["id"]}

    describe_body = json.dumps({"source": source}).encode()
    described, _, describe_ms = timed_posts(
        f"{ctx.base}/api/image-lab/describe", describe_body, warmup, runs
    )
    preview_ms = statistics.median(
        _fetch_ms(ctx.base + described["decoded"]["preview"]) for _ in range(runs)
    )
    first_look = upload_ms + statistics.median(describe_ms) + preview_ms

    step_ms = {}
    for op, params in STEPS:
        body = {"source": source, "steps": [{"op": op, **params}], "report": "last"}
        _, _, server = timed_posts(
            f"{ctx.base}/api/image-lab/pipeline", json.dumps(body).encode(), warmup, runs
        )
        step_ms[f"{op} on the {_side(described)} working copy, server time (median)"] = (
            statistics.median(server)
        )
    course = {
        "source": source,
        "decode": {"channels": 3},
        "steps": [
            {"op": "resize", "height": 224, "width": 224},
            {"op": "cast", "dtype": "float32"},
            {"op": "normalize", "mode": "symmetric"},
            {"op": "batch"},
        ],
    }
    _, _, course_ms = timed_posts(
        f"{ctx.base}/api/image-lab/pipeline", json.dumps(course).encode(), warmup, runs
    )
    extra_ms = {}
    for path, body in (
        ("normalizations", {"source": source}),
        ("augment", {"source": source, "count": 8}),
    ):
        _, _, server = timed_posts(
            f"{ctx.base}/api/image-lab/{path}", json.dumps(body).encode(), warmup, runs
        )
        extra_ms[path] = statistics.median(server)
    megapixels = PHOTO_SIZE[0] * PHOTO_SIZE[1] / 1e6
    return [
        *within(
            SECTION,
            {f"{megapixels:.1f} MP JPEG: upload + describe + preview (median)": first_look},
            UPLOAD_TARGET_MS,
        ),
        Row(SECTION, f"  upload round trip, {len(photo) / 1e6:.1f} MB", f"{upload_ms:.1f} ms"),
        Row(SECTION, "  describe, server time", f"{statistics.median(describe_ms):.1f} ms"),
        Row(SECTION, "  preview PNG fetch", f"{preview_ms:.1f} ms"),
        *within(SECTION, step_ms, STEP_TARGET_MS),
        Row(
            SECTION,
            "decode → resize → cast → normalize → batch, 5 stages inspected (median)",
            f"{statistics.median(course_ms):.1f} ms",
        ),
        Row(
            SECTION,
            "normalizations: 5 side by side + first gradients (median)",
            f"{extra_ms['normalizations']:.1f} ms",
        ),
        Row(
            SECTION,
            "augment: 8 × 6 augmentations at 224 px (median)",
            f"{extra_ms['augment']:.1f} ms",
        ),
    ]


def _photo_jpeg() -> bytes:
    """A 12 MP photo-like JPEG (smooth colours and fine grain), made here: no file ships."""
    width, height = PHOTO_SIZE
    y = np.linspace(0, 1, height, dtype=np.float32)[:, np.newaxis]
    x = np.linspace(0, 1, width, dtype=np.float32)[np.newaxis, :]
    rgb = np.stack(
        np.broadcast_arrays(200 * y + 30 * x, 120 + 60 * np.sin(x * 20) * y, 255 * (1 - y) + 0 * x),
        axis=-1,
    )
    rgb += np.random.default_rng(0).normal(0, 6, rgb.shape).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _fetch_ms(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
    return (time.perf_counter() - start) * 1000


def _side(described: dict) -> str:
    height, width = described["working_copy"]["shape"][:2]
    return f"{width}×{height}"
