"""Bench of the gradient-descent lab: a sweep of 20 learning rates × 200 steps in one XLA call.

Measured in this process (the compiled call after warm-up) and as the HTTP round trip of
`POST /api/descent/sweep`, whose `compute_ms` is the server's own time.
"""

import json
import statistics

import numpy as np

from app.bench import BenchContext, Row, median_ms, timed_posts, within
from models import descent

SECTION = "descent"
RATES = 20
STEPS = 200
WARMUP = 3
RUNS = 20
TARGET_MS = 100.0


def bench(ctx: BenchContext) -> list[Row]:
    """Times 20 lr × 200 steps on the quadratic in-process and against the server at ctx.base."""
    params = descent.check_surface("quadratic")
    start = descent.SURFACES["quadratic"].start
    rates = np.geomspace(0.01, 10.0, RATES).tolist()
    local = median_ms(
        lambda: descent.sweep(descent.descend("quadratic", params, start, rates, STEPS)),
        WARMUP,
        RUNS,
    )

    body = json.dumps(
        {"start": list(start), "lr_min": 0.01, "lr_max": 10.0, "count": RATES, "steps": STEPS}
    ).encode()
    sweep = f"{ctx.base}/api/descent/sweep"
    answer, round_trip, server = timed_posts(sweep, body, WARMUP, RUNS)
    if len(answer["final_loss"]) != RATES:
        raise RuntimeError(f"unexpected sweep of {len(answer['final_loss'])} rates")

    case = f"{RATES} lr × {STEPS} steps"
    timed = {
        f"sweep {case}, in-process (median)": local,
        f"/api/descent/sweep {case}, server time (median)": statistics.median(server),
    }
    round_trip_ms = f"{statistics.median(round_trip):.1f} ms"
    return [
        *within(SECTION, timed, TARGET_MS),
        Row(SECTION, "/api/descent/sweep round trip (median)", round_trip_ms),
    ]
