"""Benchmarks of the multi-layer network lab against a running server, over real WebSockets.

The many-client rows run their clients in `ctx.clients_procs` processes of their own, so that the
clients do not take the server's cores; capacity is measured for one server process and for two
(`playground serve --workers 2`).
"""

import asyncio
import itertools
import json
import multiprocessing
import random
import statistics
import subprocess
import sys
import time

import numpy as np
import psutil
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.bench import BenchContext, Row, memory_rows
from app.bench.server import accepted, running_server, traces_held, wait_until_warm, workers
from app.protocol.mlp import MAX_LAYERS, MAX_NEURONS
from models.mlp import WIDTHS

SECTION = "mlp"
XOR_MAX = {
    "type": "config",
    "dataset": "xor",
    "hidden": [4, 2],
    "activation": "tanh",
    "batch_size": 10,
    "learning_rate": 0.03,
    "speed": "max",
}
WIDE_MAX = {**XOR_MAX, "hidden": [50, 50]}
TF_PLAYGROUND_STEPS = {"[4, 2]": 218_000, "[50, 50]": 3_000}  # its nn.ts in Node, this machine
HOG = "while True: pass"


class Client:
    """One bench client: reads binary frames' headers, and times config round trips."""

    def __init__(self, ws, header: np.dtype):
        self.ws = ws
        self.header = header
        self.frames: list[tuple[float, int, int, int]] = []  # time, version, step, steps_per_frame
        self.bytes = 0
        self.waiters: list[tuple[int, asyncio.Future]] = []
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, header: np.dtype) -> "Client":
        ws = await connect(url, compression=None, max_size=2**22, open_timeout=60)
        return cls(ws, header)

    async def _read(self) -> None:
        async for message in self.ws:
            self.bytes += len(message)
            if not isinstance(message, bytes):
                continue
            h = np.frombuffer(message, self.header, count=1)[0]
            now = time.perf_counter()
            self.frames.append((now, int(h["version"]), int(h["step"]), int(h["steps_per_frame"])))
            for version, fut in list(self.waiters):
                if h["version"] >= version and not fut.done():
                    fut.set_result(now)

    async def send(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))

    async def until_version(self, version: int, timeout: float = 10) -> float:
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append((version, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self.waiters = [w for w in self.waiters if w[1] is not fut]

    def rate(self, since: float, until: float = float("inf")) -> tuple[float, float]:
        """Frames per second and training steps per second between `since` and `until`."""
        recent = [f for f in self.frames if since <= f[0] <= until]
        if len(recent) < 2:
            return 0.0, 0.0
        dt = recent[-1][0] - recent[0][0]
        return (len(recent) - 1) / dt, (recent[-1][2] - recent[0][2]) / dt

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()


def _ws(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws/mlp"


def _header() -> np.dtype:
    from app.protocol.mlp import FRAME_HEADER  # the wire contract (it imports TensorFlow)

    return FRAME_HEADER


async def _max_speed(base: str, config: dict, name: str, target: int, seconds: float) -> list[Row]:
    c = await Client.open(_ws(base), _header())
    await c.send(config)
    await c.send({"type": "play"})
    await asyncio.sleep(3)  # its exact trace is compiled and swapped in
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    fps, sps = c.rate(start)
    await c.close()
    ratio = sps / TF_PLAYGROUND_STEPS[name]
    return [
        Row(
            SECTION,
            f"max speed {name}, batch 10: steps/s (× TF Playground's nn.ts)",
            f"{sps:,.0f} ({ratio:.1f}×), {fps:.0f} frames/s",
            f"≥ {target:,}, ≥ 30 frames/s",
            sps >= target and fps >= 30,
        )
    ]


async def _max_speed_start(base: str, steady: float) -> list[Row]:
    """Steps/s in the first second after pressing max speed, and over the first 4 s."""
    c = await Client.open(_ws(base), _header())
    await c.send({**XOR_MAX, "speed": "epoch", "seed": 7})
    await c.send({"type": "play"})
    await asyncio.sleep(1)
    pressed = time.perf_counter()
    await c.send({"type": "config", "speed": "max"})
    await asyncio.sleep(4.2)
    _, first = c.rate(pressed, pressed + 1)
    _, four = c.rate(pressed, pressed + 4)
    _, later = c.rate(pressed + 1, pressed + 4)
    await c.close()
    return [
        Row(
            SECTION,
            "max speed after pressing it: steps/s in 0–1 s / 1–4 s / 0–4 s",
            f"{first:,.0f} / {later:,.0f} / {four:,.0f}",
            "full speed within 1 s (1–4 s ≥ 80 % of steady)",
            later >= 0.8 * steady,
        )
    ]


async def _max_speed_busy(base: str, seconds: float) -> list[Row]:
    """Max speed while every core also runs a CPU hog process."""
    c = await Client.open(_ws(base), _header())
    await c.send(XOR_MAX)
    await c.send({"type": "play"})
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(psutil.cpu_count() or 2)]
    try:
        await asyncio.sleep(3)
        start = time.perf_counter()
        await asyncio.sleep(seconds)
        fps, sps = c.rate(start)
        per_frame = statistics.median([f[3] for f in c.frames if f[0] >= start] or [0])
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    await c.close()
    return [
        Row(
            SECTION,
            "max speed [4, 2] with a CPU hog on every core: steps/frame (median), steps/s, fps",
            f"{per_frame:,.0f}, {sps:,.0f}, {fps:.0f}",
            "hundreds of steps a frame",
            per_frame >= 100,
        )
    ]


def _pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def _latency(base: str, samples: int) -> list[Row]:
    c = await Client.open(_ws(base), _header())
    await c.send({"type": "play"})
    await asyncio.sleep(1.5)
    version, lr_ms = 0, []
    for i in range(samples):
        version += 1
        sent = time.perf_counter()
        await c.send({"type": "config", "learning_rate": 0.01 + 0.001 * i})
        lr_ms.append((await c.until_version(version) - sent) * 1000)
        await asyncio.sleep(0.05)
    # Hidden sizes this session has never had: two layers of 1..8, each pair once.
    pairs = [p for p in itertools.product(range(1, 9), repeat=2) if p != (4, 2)]
    random.Random(0).shuffle(pairs)
    arch_ms = []
    for pair in pairs[:samples]:
        version += 1
        sent = time.perf_counter()
        await c.send({"type": "config", "hidden": list(pair)})
        arch_ms.append((await c.until_version(version) - sent) * 1000)
        await asyncio.sleep(0.05)
    # Shapes no session has trained yet: they start in a wider shape while theirs is traced.
    fresh_ms = []
    for depth, act in ((3, "relu"), (4, "sigmoid"), (5, "linear")):
        version += 1
        sent = time.perf_counter()
        await c.send({"type": "config", "hidden": [12] * depth, "activation": act})
        fresh_ms.append((await c.until_version(version, timeout=30) - sent) * 1000)
    await c.close()
    return [
        Row(
            SECTION,
            "learning-rate change → first frame: p50 / p95",
            f"{_pct(lr_ms, 0.5):.0f} / {_pct(lr_ms, 0.95):.0f} ms",
            "p95 ≤ 50 ms",
            _pct(lr_ms, 0.95) <= 50,
        ),
        Row(
            SECTION,
            "new hidden sizes → first frame: p50 / p95",
            f"{_pct(arch_ms, 0.5):.0f} / {_pct(arch_ms, 0.95):.0f} ms",
            "p95 ≤ 150 ms",
            _pct(arch_ms, 0.95) <= 150,
        ),
        Row(
            SECTION,
            "never-traced shape (new depth) → first frame: mean / max",
            f"{statistics.mean(fresh_ms):.0f} / {max(fresh_ms):.0f} ms",
            "≤ 300 ms",
            max(fresh_ms) <= 300,
        ),
    ]


async def _frame_sizes(base: str) -> list[Row]:
    rows = []
    for hidden in ([4, 2], [50] * 6):
        c = await Client.open(_ws(base), _header())
        await c.send({"type": "config", "hidden": hidden})
        await c.until_version(1, timeout=30)
        await asyncio.sleep(0.2)
        before = c.bytes
        await c.send({"type": "step"})
        await c.until_version(1)
        await asyncio.sleep(0.5)
        rows.append(
            Row(
                SECTION,
                f"bytes per frame, hidden {hidden if len(hidden) < 3 else '[50]×6'}",
                f"{c.bytes - before:,} (one binary message)",
            )
        )
        await c.close()
    return rows


async def _first_frame(base: str, started: float) -> float:
    c = await Client.open(_ws(base), _header())
    while not c.frames:
        await asyncio.sleep(0.01)
    await c.close()
    return time.monotonic() - started


# -- capacity: clients in their own processes ------------------------------------------------------
def _class_rates(url: str, first_seed: int, n: int, warm: float, seconds: float, header) -> list:
    """In a client process: `n` sessions at 1 epoch a frame; each one's frames/s once warm."""

    async def run() -> tuple[list[float], int]:
        clients, playing = await asyncio.gather(*(Client.open(url, header) for _ in range(n))), []
        for i, c in enumerate(clients):
            try:
                await c.send({"type": "config", "seed": first_seed + i})
                await c.send({"type": "play"})
                playing.append(c)
            except ConnectionClosed:  # refused: the server (or its worker) is full
                pass
        await asyncio.sleep(warm)
        start = time.perf_counter()
        await asyncio.sleep(seconds)
        rates = [c.rate(start)[0] for c in playing]
        await asyncio.gather(*(c.close() for c in clients))
        return rates, n - len(playing)

    return asyncio.run(run())


def _server_cpu(proc: psutil.Process) -> list[psutil.Process]:
    """The server's processes: itself, or its workers under `--workers`."""
    return [proc, *proc.children(recursive=True)]


async def _capacity(ctx: BenchContext, counts: list[int], seconds: float, label: str) -> list[Row]:
    rows, best = [], 0
    procs = _server_cpu(psutil.Process(ctx.pid))
    spawn = multiprocessing.get_context("spawn")
    header = _header()
    with spawn.Pool(ctx.clients_procs) as pool:
        for n in counts:
            shares = [
                n // ctx.clients_procs + (i < n % ctx.clients_procs)
                for i in range(ctx.clients_procs)
            ]
            args = [
                (_ws(ctx.base), 1 + sum(shares[:i]), share, 8.0, seconds, header)
                for i, share in enumerate(shares)
                if share
            ]
            for p in procs:
                p.cpu_percent()
            result = pool.starmap_async(_class_rates, args)
            parts = await asyncio.to_thread(result.get)
            rates = sorted(r for part, _ in parts for r in part) or [0.0]
            refused = sum(r for _, r in parts)
            cpu = sum(p.cpu_percent() for p in procs)
            p10 = rates[len(rates) // 10]
            ok = p10 >= 30 and not refused
            best = n if ok else best
            rows.append(
                Row(
                    SECTION,
                    f"{label}: {n} sessions at 1 epoch/frame: frames/s p10 / median, server CPU",
                    f"{p10:.1f} / {statistics.median(rates):.1f}, {cpu:.0f}%"
                    + (f", {refused} refused (a process's session cap)" if refused else ""),
                    "p10 ≥ 30",
                    ok,
                )
            )
            await asyncio.sleep(1)
            if not ok:
                break
    rows.append(
        Row(SECTION, f"{label}: capacity, largest N holding ≥ 30 frames/s", str(best), "≥ 100",
            best >= 100)
    )  # fmt: skip
    return rows


async def _memory(ctx: BenchContext, sessions: int) -> list[Row]:
    """Resident memory over varied sessions (depths 0-6, widths 1-50), after one session of each of
    the shapes they pad to has had it traced: a trace is a bounded cost, not a session's."""
    proc = psutil.Process(ctx.pid)
    header = _header()

    async def train(hidden: list[int], activation: str = "tanh") -> None:
        c = await Client.open(_ws(ctx.base), header)
        await c.send({"type": "config", "hidden": hidden, "activation": activation})
        await c.send({"type": "step"})
        await c.until_version(1, timeout=60)
        await c.close()

    shapes = [[]] + [[w] * depth for depth in range(1, MAX_LAYERS + 1) for w in WIDTHS]
    for hidden in shapes:
        await train(hidden)
    await asyncio.to_thread(wait_until_warm, ctx)
    traces_before = traces_held(ctx)
    rng = random.Random(1)
    activations = ["tanh", "relu", "sigmoid", "linear"]
    points = []
    for i in range(sessions):
        hidden = [rng.randint(1, MAX_NEURONS) for _ in range(rng.randint(0, MAX_LAYERS))]
        await train(hidden, rng.choice(activations))
        if i % 50 == 0:
            points.append((i, proc.memory_info().rss / 2**20))
    over = f"over {sessions:,} varied sessions, after one of each of their {len(shapes)} shapes"
    return memory_rows(SECTION, over, points, (traces_before, traces_held(ctx)))


async def _bench(ctx: BenchContext) -> list[Row]:
    first = await _first_frame(ctx.base, ctx.started)
    rows = [Row(SECTION, "server start-up → first frame", f"{first:.1f} s")]
    # The labs' start-up compiles hold one of the cores for a while: measure after them.
    warm = await asyncio.to_thread(wait_until_warm, ctx)
    rows.append(Row(SECTION, "server start-up → every lab's compiles done", f"{warm:.1f} s"))
    seconds = 2 if ctx.quick else 5
    rows += await _max_speed(ctx.base, XOR_MAX, "[4, 2]", 330_000, seconds)
    steady = float(rows[-1].value.split()[0].replace(",", ""))
    rows += await _max_speed(ctx.base, WIDE_MAX, "[50, 50]", 60_000, seconds)
    rows += await _max_speed_start(ctx.base, steady)
    rows += await _max_speed_busy(ctx.base, seconds)
    rows += await _latency(ctx.base, 20 if ctx.quick else 40)
    rows += await _frame_sizes(ctx.base)
    counts = [50, 100, 120] if ctx.quick else [50, 75, 100, 120]  # 120: a process's session cap
    rows += await _capacity(ctx, counts, 2 if ctx.quick else 4, "1 worker")
    rows += await _memory(ctx, 500 if ctx.quick else 1000)
    return rows


async def _two_workers(ctx: BenchContext) -> list[Row]:
    await asyncio.to_thread(wait_until_warm, ctx)
    counts = [120, 200, 240] if ctx.quick else [120, 160, 200, 240]  # 240: two processes' caps
    rows = await _capacity(ctx, counts, 2 if ctx.quick else 4, "2 workers")
    procs = workers(psutil.Process(ctx.pid))
    rss = [p.memory_info().rss / 2**20 for p in procs]
    rows.append(
        Row(SECTION, "2 workers: resident memory per worker", " / ".join(f"{r:.0f}" for r in rss)
            + " MiB")
    )  # fmt: skip
    return rows + await _worker_shares(ctx, procs, 100)


async def _worker_shares(ctx: BenchContext, procs: list[psutil.Process], n: int) -> list[Row]:
    """How `n` sockets opened at once spread over the workers (each its own SO_REUSEPORT socket:
    the kernel picks by the connection's address hash)."""
    port = int(ctx.base.rsplit(":", 1)[1])
    clients = [await Client.open(_ws(ctx.base), _header()) for _ in range(n)]
    shares = [accepted(p, port) for p in procs]
    await asyncio.gather(*(c.close() for c in clients))
    return [
        Row(SECTION, f"2 workers: {n} sockets opened together, per worker",
            " / ".join(map(str, shares)), "even (each ≥ 40 %)", min(shares) >= 0.4 * n)
    ]  # fmt: skip


def bench(ctx: BenchContext) -> list[Row]:
    """The multi-layer lab's figures against the server of `ctx`, then against a server of two
    worker processes, over real WebSockets."""
    rows = asyncio.run(_bench(ctx))
    with running_server(ctx.quick, workers=2, clients_procs=ctx.clients_procs) as two:
        rows += asyncio.run(_two_workers(two))
    return rows
