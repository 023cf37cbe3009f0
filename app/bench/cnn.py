"""Benchmarks of the CNN-training lab against a running server: jobs on freshly drawn photos
(3 classes × 30, a new seed each run, so no feature is cached yet), followed over the real socket
`/ws/cnn/{id}` from outside the server."""

import json
import random
import time
import urllib.request
import uuid

from websockets.sync.client import connect

from app.bench import BenchContext, Row, post

SECTION = "cnn"
TRANSFER_TARGET_S = 10.0  # to ≥ 0.95 validation accuracy, submission to the epoch's message
TRANSFER_ACCURACY = 0.95
SCRATCH_TARGET_S = 2.0  # submission to the first batch's progress
JOB_TIMEOUT_S = 120.0


def _submit(base: str, body: dict) -> str:
    """Submits a job as a bench user of its own, so that no job waits behind another's."""
    request = urllib.request.Request(
        f"{base}/api/cnn/jobs",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Client-Id": f"bench-{uuid.uuid4().hex}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["id"]


def _follow(base: str, job_id: str, began: float, until) -> tuple[float | None, dict | None, dict]:
    """Reads the job's socket until it ends: (seconds since `began` at the first message for
    which `until` holds, that message, the final status)."""
    url = base.replace("http://", "ws://") + f"/ws/cnn/{job_id}"
    hit_at, hit, final = None, None, {}
    with connect(url, max_size=2**24, open_timeout=30) as ws:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=deadline - time.monotonic()))
            if hit is None and until(message):
                hit_at, hit = time.perf_counter() - began, message
            if message["type"] == "status" and message["state"] not in ("queued", "running"):
                final = message
                break
    return hit_at, hit, final


def _drawn_photos(base: str) -> str:
    """A new data set of 3 shapes × 30 photos of 224², drawn with a seed of its own."""
    body = {"generated": "shapes", "photos_per_class": 30, "seed": random.randrange(2**31)}
    return post(f"{base}/api/cnn/datasets", json.dumps(body).encode())["id"]


def bench(ctx: BenchContext) -> list[Row]:
    rows = []
    dataset = _drawn_photos(ctx.base)
    began = time.perf_counter()
    job = _submit(ctx.base, {"dataset": dataset, "model": "transfer", "epochs": 10})
    seconds, epoch, final = _follow(
        ctx.base,
        job,
        began,
        lambda m: m["type"] == "epoch" and m["val_accuracy"] >= TRANSFER_ACCURACY,
    )
    done = time.perf_counter() - began
    if seconds is None:
        best = max((h["val_accuracy"] for h in final.get("history", [])), default=0.0)
        rows.append(
            Row(
                SECTION,
                f"transfer 3×30: val accuracy ≥ {TRANSFER_ACCURACY}",
                f"never (best {best:.2f}; {final.get('state')}: {final.get('error')})",
                f"≤ {TRANSFER_TARGET_S:g} s",
                False,
            )
        )
    else:
        rows.append(
            Row(
                SECTION,
                f"transfer 3×30: val accuracy ≥ {TRANSFER_ACCURACY}",
                f"{seconds:.1f} s (epoch {epoch['epoch']}, {epoch['val_accuracy']:.2f})",
                f"≤ {TRANSFER_TARGET_S:g} s",
                seconds <= TRANSFER_TARGET_S,
            )
        )
    rows.append(Row(SECTION, "transfer 3×30: 10 epochs, job done", f"{done:.1f} s"))

    began = time.perf_counter()
    job = _submit(ctx.base, {"dataset": dataset, "model": "scratch", "epochs": 3})
    seconds, _, final = _follow(ctx.base, job, began, lambda m: m["type"] == "batch")
    done = time.perf_counter() - began
    rows.append(
        Row(
            SECTION,
            "scratch 64²: first batch's progress",
            "never" if seconds is None else f"{seconds:.2f} s",
            f"≤ {SCRATCH_TARGET_S:g} s",
            seconds is not None and seconds <= SCRATCH_TARGET_S,
        )
    )
    rows.append(Row(SECTION, "scratch 64²: 3 epochs, job done", f"{done:.1f} s"))
    history = final.get("history") or [{}]
    rows.append(
        Row(
            SECTION,
            "scratch 64²: val accuracy after 3 epochs",
            f"{history[-1].get('val_accuracy', 0):.2f}",
        )
    )
    return rows
