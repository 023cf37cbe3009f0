"""Benchmarks of the recurrent-network lab against a running server, over real WebSockets.

The clients run here, in the bench's process, never on the server's event loop.
"""

import asyncio
import json
import statistics
import time

import psutil
from websockets.asyncio.client import connect

from app.bench import BenchContext, Row

SECTION = "rnn"
TARGET = {"type": "config", "task": "sine", "cell": "lstm", "units": 32, "length": 50}
BIG = {"type": "config", "task": "sine", "cell": "lstm", "units": 128, "length": 200}


class Client:
    """One bench client: keeps every frame's header with its arrival time and its bytes."""

    def __init__(self, ws):
        self.ws = ws
        self.frames: list[tuple[float, dict]] = []
        self.bytes = 0
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, base: str) -> "Client":
        url = base.replace("http://", "ws://") + "/ws/rnn"
        return cls(await connect(url, compression=None, max_size=2**22, open_timeout=30))

    async def _read(self) -> None:
        async for message in self.ws:
            self.bytes += len(message)
            if isinstance(message, bytes):
                continue
            data = json.loads(message)
            if data["type"] == "frame":
                self.frames.append((time.perf_counter(), data))

    async def send(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))

    async def until(self, predicate, timeout: float = 60) -> tuple[float, dict]:
        """The first frame from now on that satisfies `predicate`."""
        seen = len(self.frames)
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for t, f in self.frames[seen:]:
                if predicate(f):
                    return t, f
            seen = len(self.frames)
            await asyncio.sleep(0.005)
        raise TimeoutError("the expected frame never came")

    def window(self, since: float) -> list[tuple[float, dict]]:
        return [(t, f) for t, f in self.frames if t >= since]

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()


def _rates(frames: list[tuple[float, dict]]) -> tuple[float, float, float]:
    """Frames a second, training steps a frame, figure frames a second."""
    if len(frames) < 2:
        return 0.0, 0.0, 0.0
    dt = frames[-1][0] - frames[0][0]
    per_frame = statistics.mean(f["steps_per_frame"] for _, f in frames)
    figures = sum(f["figures"] for _, f in frames[1:])
    return (len(frames) - 1) / dt, per_frame, figures / dt


async def _settled(c: Client, version: int) -> None:
    """Plays until the shape's XLA build runs the frames, then a second more."""
    await c.send({"type": "play"})
    await c.until(lambda f: f["version"] >= version and f["step"] > 0 and f["compiled"], 120)
    await asyncio.sleep(1.0)


async def _target(base: str, proc: psutil.Process, seconds: float) -> list[Row]:
    c = await Client.open(base)
    await c.send(TARGET)
    await _settled(c, 1)
    proc.cpu_percent()
    before, start = c.bytes, time.perf_counter()
    await asyncio.sleep(seconds)
    cpu = proc.cpu_percent()
    frames = c.window(start)
    fps, steps, figures = _rates(frames)
    kbps = (c.bytes - before) / (time.perf_counter() - start) / 1000
    await c.close()
    label = "LSTM 32 units, length 50, batch 32"
    return [
        Row(SECTION, f"{label}: frames/s", f"{fps:.1f}", "≥ 30", fps >= 30),
        Row(SECTION, f"{label}: training steps/frame", f"{steps:.1f}", "≥ 10", steps >= 10),
        Row(SECTION, f"{label}: training steps/s", f"{fps * steps:,.0f}"),
        Row(SECTION, f"{label}: gradient-through-time figures/s", f"{figures:.1f}", "≥ 4", figures >= 4),
        Row(SECTION, f"{label}: bytes/s to the page, server CPU", f"{kbps:.0f} kB/s, {cpu:.0f}%"),
    ]  # fmt: skip


def _pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def _latency(base: str, samples: int) -> list[Row]:
    c = await Client.open(base)
    await c.send(TARGET)
    await _settled(c, 1)
    ms = []
    for i in range(samples):
        sent = time.perf_counter()
        await c.send({"type": "config", "learning_rate": 0.01 + 0.0001 * i})
        t, _ = await c.until(lambda f, v=i + 2: f["version"] >= v)
        ms.append((t - sent) * 1000)
        await asyncio.sleep(0.05)
    await c.close()
    p50, p95 = _pct(ms, 0.5), _pct(ms, 0.95)
    return [
        Row(
            SECTION,
            "learning-rate change → first frame: p50 / p95",
            f"{p50:.0f} / {p95:.0f} ms",
            "p95 ≤ 100 ms",
            p95 <= 100,
        )
    ]


async def _big(base: str) -> list[Row]:
    c = await Client.open(base)
    await c.send(BIG)
    await _settled(c, 1)
    start = time.perf_counter()
    await asyncio.sleep(2)
    frames = c.window(start)
    fps, steps, figures = _rates(frames)
    size = max((f["frame_bytes"] for _, f in frames), default=0)
    await c.close()
    return [
        Row(
            SECTION,
            "LSTM 128 units, length 200: frames/s, steps/frame, figures/s",
            f"{fps:.1f}, {steps:.1f}, {figures:.1f}",
        ),
        Row(SECTION, "LSTM 128 units, length 200: bytes of a figure frame", f"{size:,}"),
    ]


async def _class(base: str, proc: psutil.Process, counts: list[int], seconds: float) -> list[Row]:
    rows = []
    for n in counts:
        clients = [await Client.open(base) for _ in range(n)]
        for i, c in enumerate(clients):
            await c.send({**TARGET, "seed": i + 1})
            await c.send({"type": "play"})
        await asyncio.sleep(3)
        proc.cpu_percent()
        start = time.perf_counter()
        await asyncio.sleep(seconds)
        cpu = proc.cpu_percent()
        rates = sorted(_rates(c.window(start))[0] for c in clients)
        rows.append(
            Row(
                SECTION,
                f"{n} sessions of the LSTM: frames/s p10 / median, server CPU",
                f"{rates[len(rates) // 10]:.1f} / {statistics.median(rates):.1f}, {cpu:.0f}%",
            )
        )
        await asyncio.gather(*(c.close() for c in clients))
        await asyncio.sleep(1)
    return rows


async def _memory_curve(base: str, timeout: float) -> list[Row]:
    c = await Client.open(base)
    await c.send({"type": "config", "task": "first_bit", "units": 16, "memory_curve": True})
    await c.send({"type": "play"})
    start = time.perf_counter()
    try:
        t, f = await c.until(lambda f: (f["memory_curve"] or {}).get("done"), timeout)
        value = f"{t - start:.0f} s"
    except TimeoutError:
        last = c.frames[-1][1]["memory_curve"] if c.frames else None
        value = f"> {timeout:.0f} s ({last['step'] if last else 0} steps)"
    await c.close()
    return [Row(SECTION, "memory curve (3 cells × 6 delays, 1,000 steps) → done", value)]


async def _first_frame(base: str, started: float) -> Row:
    """The lab's first session → its first frame. Other sections may have run on this server
    before, so the server's age is said beside it rather than counted in."""
    opened = time.monotonic()
    c = await Client.open(base)
    await c.until(lambda f: True)
    await c.close()
    first, age = time.monotonic() - opened, opened - started
    return Row(
        SECTION,
        "first session → first frame (the server up for)",
        f"{first * 1000:.0f} ms ({age:.0f} s)",
    )


async def _bench(ctx: BenchContext) -> list[Row]:
    proc = psutil.Process(ctx.pid)
    rows = [await _first_frame(ctx.base, ctx.started)]
    rows += await _target(ctx.base, proc, 3 if ctx.quick else 6)
    rows += await _latency(ctx.base, 20 if ctx.quick else 40)
    rows += await _big(ctx.base)
    rows += await _class(ctx.base, proc, [4] if ctx.quick else [4, 8, 16], 3 if ctx.quick else 5)
    rows += await _memory_curve(ctx.base, 60 if ctx.quick else 180)
    return rows


def bench(ctx: BenchContext) -> list[Row]:
    """The recurrent-network lab's figures against the server of `ctx`, over real WebSockets."""
    return asyncio.run(_bench(ctx))
