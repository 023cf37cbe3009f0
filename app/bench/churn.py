"""Churn: 1,000 sessions of varied labs and architectures opened, trained a few frames and closed,
against the real server. Resident memory should stay flat (its slope per session is reported) and
no thread be left behind.

The server's traces are per shape, kept up to `max_traces`: the first session of a shape builds
one (~1-10 MiB), a bounded cost, not a session's. So one session of each shape of the plan runs
first, and the slope is measured over the churn after it. (tests/app/test_churn.py checks the in-process side with fewer sessions:
tasks, threads, the trace cache.)"""

import asyncio
import json
import random
import statistics

import psutil
from websockets.asyncio.client import connect

from app.bench import BenchContext, Row
from app.bench.load import Frames
from app.bench.server import wait_until_warm
from models.mlp import WIDTHS

SECTION = "churn"
ACTIVATIONS = ["tanh", "relu", "sigmoid", "linear"]
AT_ONCE = 8  # sessions open together, as students come and go
FRAMES = 3  # trained frames each session waits for


def session_plan(i: int) -> tuple[str, dict]:
    """The lab and the config of the `i`-th session: mostly MLPs of every depth and width (each a
    trace shape of its own), some neurons and RNNs."""
    rng = random.Random(i)
    kind = i % 5
    if kind == 3:
        return "neurons", {"learning_rate": round(rng.uniform(0.01, 0.3), 3), "seed": i}
    if kind == 4:
        return "rnn", {"units": rng.randint(2, 48), "seed": i}
    hidden = [rng.randint(1, 12) for _ in range(rng.randint(0, 4))]
    return "mlp", {"hidden": hidden, "activation": rng.choice(ACTIVATIONS), "seed": i}


def shape_of(i: int) -> tuple:
    """What session `i` is traced for: an MLP's padded depth and width, another lab's slug."""
    slug, config = session_plan(i)
    if slug != "mlp":
        return (slug,)
    hidden = config["hidden"]
    return slug, len(hidden), next(w for w in WIDTHS if w >= max(hidden, default=1))


async def train_once(base: str, i: int) -> None:
    """Opens session `i`, trains it `FRAMES` frames, and leaves."""
    slug, config = session_plan(i)
    url = base.replace("http://", "ws://") + f"/ws/{slug}"
    async with connect(url, compression=None, max_size=2**22, open_timeout=60) as ws:
        await ws.send(json.dumps({"type": "config", **config}))
        await ws.send(json.dumps({"type": "play"}))
        trained, frames = 0, Frames()
        async for message in ws:
            if isinstance(message, str) and (data := json.loads(message))["type"] == "error":
                raise RuntimeError(f"session {i} ({slug} {config}): {data['message']}")
            frame = frames.of(message)
            if frame is not None and frame[0] >= 1 and frame[1] > 0:
                trained += 1
                if trained >= FRAMES:
                    return


def _slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of (session, MiB)."""
    xs, ys = zip(*points, strict=True)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)


async def _churn(ctx: BenchContext, sessions: int) -> list[Row]:
    server = psutil.Process(ctx.pid)
    firsts = {}
    for i in range(sessions):
        firsts.setdefault(shape_of(i), i)
    errors: list[str] = []

    async def run(plan: list[int], each=None) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in plan:
            queue.put_nowait(i)

        async def student() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                try:
                    await train_once(ctx.base, i)
                except Exception as e:  # counted and reported; the churn goes on
                    errors.append(f"{type(e).__name__}: {e}")
                if each is not None:
                    each()

        await asyncio.gather(*(student() for _ in range(AT_ONCE)))

    await run(list(firsts.values()))  # every shape's traces, built once
    await asyncio.to_thread(wait_until_warm, ctx)
    points: list[tuple[int, float]] = []
    threads_before = None
    done = 0

    def sample() -> None:
        nonlocal done, threads_before
        done += 1
        if done % 50 == 0:
            points.append((done, server.memory_info().rss / 2**20))
        if done == 100:  # every lab's pools and XLA builds of common group sizes exist by now
            threads_before = server.num_threads()

    began = asyncio.get_running_loop().time()
    await run(list(range(sessions)), sample)
    seconds = asyncio.get_running_loop().time() - began
    await asyncio.sleep(2)  # the last sessions' sockets close
    threads_after = server.num_threads()
    settled = [p for p in points if p[0] >= 100]
    slope_kib = _slope(settled) * 1024 if len(settled) >= 2 else float("nan")
    first, last = settled[0][1], settled[-1][1]
    return [
        Row(
            SECTION,
            f"{sessions} varied sessions opened, trained {FRAMES} frames, closed: sessions/s",
            f"{sessions / seconds:.1f}",
        ),
        Row(
            SECTION,
            f"resident memory slope per session (after one of each of the {len(firsts)} shapes"
            " and 100 more)",
            f"{slope_kib:+.1f} KiB ({first:.0f} → {last:.0f} MiB)",
            "flat (≤ 50 KiB/session)",
            slope_kib <= 50,
        ),
        Row(
            SECTION,
            "server threads after 100 sessions / after all closed",
            f"{threads_before} / {threads_after}",
            "no growth",
            threads_before is not None and threads_after <= threads_before,
        ),
        Row(
            SECTION,
            "errors",
            str(len(errors)) + (f" (first: {errors[0]})" if errors else ""),
            "0",
            not errors,
        ),
    ]


def bench_churn(ctx: BenchContext) -> list[Row]:
    return asyncio.run(_churn(ctx, 300 if ctx.quick else 1000))
