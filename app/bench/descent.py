"""Bench of the gradient-descent lab: a sweep of 20 learning rates × 200 steps in one XLA call.

Measured in this process (the compiled call after warm-up) and as the HTTP round trip of
`POST /api/descent/sweep`, whose `compute_ms` is the server's own time.
"""

import json
import statistics
import time
import urllib.request

import numpy as np

from app.bench import Row
from models import descent

SECTION = "descent"
RATES = 20
STEPS = 200
WARMUP = 3
RUNS = 20
TARGET_MS = 100.0
TIMEOUT_S = 30


def run(base_url: str) -> list[Row]:
    """Times 20 lr × 200 steps on the quadratic in-process and against the server at base_url."""
    params = descent.check_surface("quadratic")
    start = descent.SURFACES["quadratic"].start
    rates = np.geomspace(0.01, 10.0, RATES).tolist()
    local = _median_ms(lambda: descent.sweep("quadratic", params, start, rates, STEPS))

    body = json.dumps(
        {"start": list(start), "lr_min": 0.01, "lr_max": 10.0, "count": RATES, "steps": STEPS}
    ).encode()
    server, round_trip = [], []
    for i in range(WARMUP + RUNS):
        began = time.perf_counter()
        answer = _post(f"{base_url}/api/descent/sweep", body)
        if i >= WARMUP:
            round_trip.append((time.perf_counter() - began) * 1000)
            server.append(answer["compute_ms"])
    if len(answer["final_loss"]) != RATES:
        raise RuntimeError(f"unexpected sweep of {len(answer['final_loss'])} rates")

    case = f"{RATES} lr × {STEPS} steps"
    target = f"< {TARGET_MS:g} ms"
    p50 = statistics.median(server)
    return [
        Row(
            SECTION,
            f"sweep {case}, in-process (median)",
            f"{local:.1f} ms",
            target,
            local < TARGET_MS,
        ),
        Row(
            SECTION,
            f"/api/descent/sweep {case}, server time (median)",
            f"{p50:.1f} ms",
            target,
            p50 < TARGET_MS,
        ),
        Row(
            SECTION,
            "/api/descent/sweep round trip (median)",
            f"{statistics.median(round_trip):.1f} ms",
        ),
    ]


def _median_ms(fn) -> float:
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(RUNS):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def _post(url: str, data: bytes) -> dict:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        return json.loads(response.read())
