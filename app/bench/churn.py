"""Churn: 1,000 sessions of varied labs and architectures opened, trained a few frames and closed,
against the real server. Resident memory should stay flat (its slope per session is reported),
the traces bounded, and no thread left behind.

The server keeps its compiled calls per shape (and an MLP's XLA builds per group size too): the
first session of a shape, or the first group of its size, builds one (a plain trace 3-5 MiB, an
XLA build 5-30 MiB, which TensorFlow never frees), a cost bounded by `max_traces` and
`max_xla_builds`, not a session's; the first row says what they took. So every call the plan can
reach is built first, each shape at each group size `AT_ONCE` students reach, and the slope is
measured over the churn after that; the traces held before and after it show that it built
nothing new. (tests/app/test_churn.py
checks the in-process side with fewer sessions: tasks, threads, the trace cache.)"""

import asyncio
import json
import random
from dataclasses import dataclass, field

import psutil
from websockets.asyncio.client import connect

from app.bench import BenchContext, Row, memory_rows
from app.bench.load import Frames
from app.bench.server import traces_held, wait_until_warm
from app.live.stacked import COMPILE_AFTER_TICKS
from models.mlp import WIDTHS
from models.rnn import UNIT_WIDTHS

SECTION = "churn"
ACTIVATIONS = ["tanh", "relu", "sigmoid", "linear"]
AT_ONCE = 8  # sessions open together, as students come and go
FRAMES = 3  # trained frames each session waits for
# The group sizes AT_ONCE students of one shape make (a group's slots grow in powers of two).
GROUP_SIZES = tuple(2**e for e in range(AT_ONCE.bit_length()))
BUILD_FRAMES = COMPILE_AFTER_TICKS + 2  # enough for a shape's group (or an RNN) to call for XLA


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
    """What session `i` is traced for: an MLP's padded depth and width, an RNN's padded units."""
    slug, config = session_plan(i)
    if slug == "rnn":
        return slug, next(u for u in UNIT_WIDTHS if u >= config["units"])
    if slug != "mlp":
        return (slug,)
    hidden = config["hidden"]
    return slug, len(hidden), next(w for w in WIDTHS if w >= max(hidden, default=1))


@dataclass
class Hold:
    """Keeps sessions open and training, once they have trained their frames, until `done`."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    trained: int = 0  # sessions that have trained their frames


async def train_once(base: str, i: int, frames: int = FRAMES, hold: Hold | None = None) -> None:
    """Opens session `i`, trains it `frames` frames (then on, until `hold` is done), and leaves."""
    slug, config = session_plan(i)
    url = base.replace("http://", "ws://") + f"/ws/{slug}"
    async with connect(url, compression=None, max_size=2**22, open_timeout=60) as ws:
        await ws.send(json.dumps({"type": "config", **config}))
        await ws.send(json.dumps({"type": "play"}))
        trained, tell = 0, Frames()
        async for message in ws:
            if isinstance(message, str) and (data := json.loads(message))["type"] == "error":
                raise RuntimeError(f"session {i} ({slug} {config}): {data['message']}")
            frame = tell.of(message)
            if frame is not None and frame[0] >= 1 and frame[1] > 0:
                trained += 1
                if hold is None:
                    if trained >= frames:
                        return
                elif trained == frames:
                    hold.trained += 1
                elif trained > frames and hold.done.is_set():
                    return


async def build_every_trace(ctx: BenchContext, firsts: dict[tuple, int]) -> None:
    """Has the server build every call the churn can reach: one session of each shape (its trace),
    then each shape's sessions by `GROUP_SIZES` together (an MLP group's XLA build for its size, an
    RNN's for its shape), open until the builds they called for are done."""
    await asyncio.gather(*(train_once(ctx.base, i) for i in firsts.values()))
    await asyncio.to_thread(wait_until_warm, ctx)
    for size in GROUP_SIZES:
        plan = [i for shape, i in firsts.items() if size == 1 or shape[0] == "mlp"] * size
        hold = Hold()
        sessions = [asyncio.create_task(train_once(ctx.base, i, BUILD_FRAMES, hold)) for i in plan]
        while hold.trained < len(plan) and not any(s.done() for s in sessions):  # s.done(): failed
            await asyncio.sleep(0.05)
        await asyncio.to_thread(wait_until_warm, ctx)
        hold.done.set()
        await asyncio.gather(*sessions)


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

    rss_before, began = server.memory_info().rss / 2**20, asyncio.get_running_loop().time()
    await build_every_trace(ctx, firsts)
    build_seconds = asyncio.get_running_loop().time() - began
    rss_built, traces_before = server.memory_info().rss / 2**20, traces_held(ctx)
    points: list[tuple[int, float]] = []
    threads_before = None
    done = 0

    def sample() -> None:
        nonlocal done, threads_before
        done += 1
        if done % 50 == 0:
            points.append((done, server.memory_info().rss / 2**20))
        if done == 100:  # every lab's pools have started their threads by now
            threads_before = server.num_threads()

    began = asyncio.get_running_loop().time()
    await run(list(range(sessions)), sample)
    seconds = asyncio.get_running_loop().time() - began
    await asyncio.sleep(2)  # the last sessions' sockets close
    threads_after, traces_after = server.num_threads(), traces_held(ctx)
    settled = [p for p in points if p[0] >= 100]
    return [
        Row(
            SECTION,
            f"building every call of the plan's {len(firsts)} shapes, at group sizes"
            f" {', '.join(map(str, GROUP_SIZES))}: resident memory, seconds",
            f"{rss_before:.0f} → {rss_built:.0f} MiB, {build_seconds:.0f} s",
        ),
        Row(
            SECTION,
            f"{sessions} varied sessions opened, trained {FRAMES} frames, closed: sessions/s",
            f"{sessions / seconds:.1f}",
        ),
        *memory_rows(
            SECTION,
            f"over the {sessions} sessions, after the builds and 100 of them",
            settled,
            (traces_before, traces_after),
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
