"""A classroom room's broadcast: one instructor at 30 frames/s, N followers, each in its socket.

The followers run in `ctx.clients_procs` processes of their own. Each asks the room socket for the
send time of every frame (`?timing=1`: the frame's bytes start with it), so the lag is measured
from the moment the instructor's session published the frame to the moment the follower has its
bytes. The server's CPU time per frame sent to a follower says where a machine's limit comes from. Its own server (a frame rate of 30, joins unlimited) inherits the environment: with
`PLAYGROUND_REDIS_URL` set, the room goes through Redis.
"""

import asyncio
import json
import math
import multiprocessing
import os
import time
import urllib.request
from contextlib import contextmanager

import psutil
from websockets.asyncio.client import connect

from app.bench import BenchContext, Row
from app.bench.server import running_server, wait_until_warm
from app.rooms.envelope import SENT

SECTION = "rooms"
FRAME_RATE = 30
MIN_RATE = 25.0  # frames/s every follower gets, at least
MAX_LAG_MS = 100.0  # p95 of the frames' lag


@contextmanager
def _room_server(ctx: BenchContext):
    """A server of its own: the instructor's frame rate is 30, and 300 joins from one address pass."""
    env = {"PLAYGROUND_FRAME_RATE": str(FRAME_RATE), "PLAYGROUND_ROOM_JOIN_BURST": "100000"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with running_server(ctx.quick, clients_procs=ctx.clients_procs) as own:
            yield own
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _follow(url: str, n: int, settle: float, seconds: float) -> list[tuple[float, list[float]]]:
    """In a client process: `n` followers; each one's frames/s and frame lags (ms) in the window."""

    async def one(start: float, end: float) -> tuple[float, list[float]]:
        frames, lags = 0, []
        async with connect(url, compression=None, max_size=2**22, open_timeout=60) as ws:
            while (now := time.time()) < end:
                try:
                    message = await asyncio.wait_for(ws.recv(), end - now)
                except TimeoutError:
                    break
                if isinstance(message, str):
                    continue
                received = time.time()
                if received >= start:
                    frames += 1
                    lags.append((received - SENT.unpack_from(message)[0]) * 1000)
        return frames / seconds, lags

    async def run():
        start = time.time() + settle
        return await asyncio.gather(*(one(start, start + seconds) for _ in range(n)))

    return asyncio.run(run())


async def _instructor(
    base: str, code: str, token: str, stop: asyncio.Event, frames: list[float]
) -> None:
    """The instructor's own session: XOR training at one epoch a frame; when its frames arrive."""
    url = f"{base.replace('http', 'ws')}/ws/mlp"
    async with connect(url, compression=None, max_size=2**22) as ws:
        await ws.send(json.dumps({"type": "host", "room": code, "token": token}))
        await ws.send(json.dumps({"type": "config", "hidden": [4, 2], "speed": "epoch"}))
        await ws.send(json.dumps({"type": "play"}))
        reader = asyncio.create_task(_count(ws, frames))
        await stop.wait()
        reader.cancel()


async def _count(ws, frames: list[float]) -> None:
    async for message in ws:
        if isinstance(message, bytes):
            frames.append(time.time())


def _open_room(base: str) -> dict:
    request = urllib.request.Request(
        f"{base}/api/rooms",
        data=json.dumps({"lab": "mlp"}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


async def _broadcast(ctx: BenchContext, counts: list[int], seconds: float) -> list[Row]:
    room = _open_room(ctx.base)
    stop, sent = asyncio.Event(), []
    teacher = asyncio.create_task(_instructor(ctx.base, room["code"], room["token"], stop, sent))
    url = f"{ctx.base.replace('http', 'ws')}/ws/rooms/{room['code']}?timing=1"
    rows, best, relayed = [], 0, 0
    spawn, server = multiprocessing.get_context("spawn"), psutil.Process(ctx.pid)
    with spawn.Pool(ctx.clients_procs) as pool:
        for n in counts:
            procs = min(ctx.clients_procs, n)
            shares = [n // procs + (i < n % procs) for i in range(procs)]
            settle = 2.0 + n / 100  # every follower connected and receiving before the window
            start = time.time() + settle
            job = pool.starmap_async(_follow, [(url, s, settle, seconds) for s in shares])
            await asyncio.sleep(max(0.0, start - time.time()))
            busy = sum(server.cpu_times()[:2])
            await asyncio.sleep(seconds)
            busy = sum(server.cpu_times()[:2]) - busy  # the server's CPU seconds in the window
            followers = [f for part in await asyncio.to_thread(job.get) for f in part]
            rates = sorted(rate for rate, _ in followers)
            lags = sorted(lag for _, part in followers for lag in part)
            p95 = lags[math.ceil(0.95 * len(lags)) - 1] if lags else math.inf
            ok = rates[0] >= MIN_RATE and p95 <= MAX_LAG_MS
            # What the instructor's own socket got meanwhile: the most a follower can get.
            own = sum(start <= t < start + seconds for t in sent) / seconds
            # The relay kept up: every follower got (nearly) all the instructor's session made.
            kept_up = rates[0] >= 0.9 * own and p95 <= MAX_LAG_MS
            relayed = n if kept_up else relayed
            best = n if ok else best
            delivered = sum(rate for rate, _ in followers) * seconds
            rows += [
                Row(
                    SECTION,
                    f"{n} followers of one instructor at {FRAME_RATE} frames/s: "
                    "frames/s min / median (the instructor's), lag p95",
                    f"{rates[0]:.1f} / {rates[len(rates) // 2]:.1f} ({own:.1f}), {p95:.0f} ms",
                    f"≥ {MIN_RATE:g}, ≤ {MAX_LAG_MS:g} ms",
                    ok,
                ),
                Row(
                    SECTION,
                    f"{n} followers: the server's CPU per frame sent to a follower "
                    "(training included), and its CPU use",
                    f"{busy / max(delivered, 1) * 1e6:.0f} µs, {busy / seconds:.0%}",
                ),
            ]
            if not kept_up:
                break
    stop.set()
    await teacher
    where = "through Redis" if os.environ.get("PLAYGROUND_REDIS_URL") else "in-process"
    rows += [
        Row(
            SECTION, f"largest N holding, {where}", str(best), f"≥ {counts[-1]}", best >= counts[-1]
        ),
        Row(
            SECTION,
            f"largest N getting ≥ 90% of the instructor's frames, lag p95 ≤ 100 ms, {where}",
            str(relayed),
        ),
    ]
    return rows


def bench_rooms(ctx: BenchContext) -> list[Row]:
    counts = [10, 50, 100] if ctx.quick else [25, 50, 100, 150, 200, 300]
    with _room_server(ctx) as own:
        wait_until_warm(own)
        return asyncio.run(_broadcast(own, counts, 3.0 if ctx.quick else 5.0))
