"""`playground bench --load`: a class of simulated students against the real server, stepped up
until it no longer holds; the largest class that gets ≥ 30 frames/s with control latency p95 ≤
50 ms is the server's capacity.

Each student behaves like one at a laptop: loads a lab's page and its static files, opens the
live socket, plays, moves a slider every few seconds, now and then reloads (a new socket), uploads
a photo to the dog lab once, and leaves at the end. Students run as asyncio tasks in client
processes of their own (multiprocessing), so the measuring does not share the server's process;
on one machine they do share its cores, which the figures include.
"""

import asyncio
import io
import json
import multiprocessing
import random
import re
import statistics
import time
from dataclasses import dataclass, field

import httpx
import numpy as np
import psutil
from websockets.asyncio.client import connect

from app.bench import BenchContext, Row
from app.protocol.mlp_frame import FRAME_HEADER, FRAME_KIND

SECTION = "load"
TARGET_FPS = 30.0
TARGET_P95_MS = 50.0
# The labs a class has open, most of it on the MLP lab's playground.
LABS = ["mlp"] * 6 + ["neurons"] * 2 + ["rnn"] * 2
SLIDER_SECONDS = (2.0, 5.0)  # between two slider moves
RELOAD_CHANCE = 0.05  # per slider move: the student reloads the page (a new session)
STATIC = re.compile(r'(?:src|href)="(/(?:static|vendor)/[^"]+)"')


class Frames:
    """Tells a live lab's frames on the wire: a JSON `frame` followed by its binary grids, or the
    MLP's single binary message."""

    def __init__(self):
        self.grids_next = False  # the binary message after a JSON frame is that frame's grids

    def of(self, message: str | bytes) -> tuple[int, int] | None:
        """(version, step) if `message` is a frame (or its JSON part), else None."""
        if isinstance(message, bytes):
            if self.grids_next:
                self.grids_next = False
                return None
            head = np.frombuffer(message, FRAME_HEADER, count=1)[0]  # the MLP's one binary message
            return (int(head["version"]), int(head["step"])) if head["kind"] == FRAME_KIND else None
        data = json.loads(message)
        if data["type"] != "frame":
            return None
        self.grids_next = True
        return data["version"], data["step"]


@dataclass
class Tally:
    """What one client process measured, over the measuring window only."""

    fps: list[float] = field(default_factory=list)  # one per student
    latency_ms: list[float] = field(default_factory=list)  # config → first frame of its version
    page_ms: list[float] = field(default_factory=list)  # a page and its static files
    upload_ms: list[float] = field(default_factory=list)
    busy: int = 0  # uploads answered 503 + Retry-After (the classifier's queue was full)
    errors: list[str] = field(default_factory=list)

    def add(self, other: "Tally") -> None:
        for name in ("fps", "latency_ms", "page_ms", "upload_ms", "errors"):
            getattr(self, name).extend(getattr(other, name))
        self.busy += other.busy


def photo() -> bytes:
    """A 320×240 JPEG, a phone photo's size after the page shrinks it."""
    from PIL import Image

    rng = random.Random(7)
    image = Image.new("RGB", (320, 240), (rng.randrange(256), 120, 60))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


class Student:
    def __init__(self, base: str, index: int, window: tuple[float, float], tally: Tally):
        self.base = base
        self.rng = random.Random(index)
        self.slug = LABS[index % len(LABS)]
        self.window = window  # perf_counter interval that counts
        self.tally = tally
        self.frames = 0
        self.version = 0
        self.sent: dict[int, float] = {}  # config version → when it was sent

    def measuring(self, t: float | None = None) -> bool:
        t = time.perf_counter() if t is None else t
        return self.window[0] <= t <= self.window[1]

    async def run(self, http: httpx.AsyncClient, jpeg: bytes) -> None:
        upload_at = self.rng.uniform(*self.window)
        uploaded = False
        while time.perf_counter() < self.window[1]:
            await self.load_page(http)
            try:
                async with connect(
                    self.base.replace("http://", "ws://") + f"/ws/{self.slug}",
                    compression=None,
                    max_size=2**22,
                    open_timeout=30,
                ) as ws:
                    self.version = 0
                    reader = asyncio.create_task(self.read(ws))
                    await ws.send(json.dumps({"type": "play"}))
                    reload = False
                    while not reload and time.perf_counter() < self.window[1]:
                        await asyncio.sleep(self.rng.uniform(*SLIDER_SECONDS))
                        if not uploaded and time.perf_counter() >= upload_at:
                            uploaded = True
                            await self.upload(http, jpeg)
                        await self.move_slider(ws)
                        reload = self.rng.random() < RELOAD_CHANCE
                    reader.cancel()
            except Exception as e:  # refused, dropped or timed out: the student tries again
                self.tally.errors.append(f"{self.slug} socket: {type(e).__name__}: {e}")
                await asyncio.sleep(1)
        span = self.window[1] - self.window[0]
        self.tally.fps.append(self.frames / span)

    async def load_page(self, http: httpx.AsyncClient) -> None:
        began = time.perf_counter()
        try:
            page = await http.get(f"/labs/{self.slug}")
            paths = sorted(set(STATIC.findall(page.text)))
            answers = await asyncio.gather(*(http.get(p) for p in paths))
        except httpx.HTTPError as e:
            self.tally.errors.append(f"page: {type(e).__name__}: {e}")
            return
        bad = [a for a in (page, *answers) if a.status_code >= 400]
        if bad:
            self.tally.errors.append(f"page: {bad[0].status_code} {bad[0].url}")
        self.tally.page_ms.append((time.perf_counter() - began) * 1000)

    async def upload(self, http: httpx.AsyncClient, jpeg: bytes) -> None:
        began = time.perf_counter()
        try:
            answer = await http.post(
                "/api/dogs/classify", content=jpeg, headers={"Content-Type": "image/jpeg"}
            )
        except httpx.HTTPError as e:
            self.tally.errors.append(f"upload: {type(e).__name__}: {e}")
            return
        if answer.status_code == 503 and "retry-after" in answer.headers:
            self.tally.busy += 1
        elif answer.status_code != 200:
            self.tally.errors.append(f"upload: {answer.status_code} {answer.text[:80]}")
        else:
            self.tally.upload_ms.append((time.perf_counter() - began) * 1000)

    async def move_slider(self, ws) -> None:
        self.version += 1
        self.sent[self.version] = time.perf_counter()
        rate = round(10 ** self.rng.uniform(-3, -1), 5)
        await ws.send(json.dumps({"type": "config", "learning_rate": rate}))

    async def read(self, ws) -> None:
        frames = Frames()
        async for message in ws:
            if isinstance(message, str) and (data := json.loads(message))["type"] == "error":
                self.tally.errors.append(f"{self.slug}: {data['message'][:80]}")
            if (frame := frames.of(message)) is None:
                continue
            now = time.perf_counter()
            if self.measuring(now):
                self.frames += 1
            for version in [v for v in self.sent if v <= frame[0]]:
                sent = self.sent.pop(version)
                if self.measuring(sent):
                    self.tally.latency_ms.append((now - sent) * 1000)


async def _class(base: str, first: int, count: int, ramp: float, seconds: float) -> Tally:
    tally = Tally()
    jpeg = photo()
    start = time.perf_counter()
    window = (start + ramp, start + ramp + seconds)
    limits = httpx.Limits(max_connections=count * 4)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:

        async def join(i: int) -> None:
            await asyncio.sleep(ramp * 0.8 * i / max(count, 1))  # the class arrives over the ramp
            await Student(base, first + i, window, tally).run(http, jpeg)

        await asyncio.gather(*(join(i) for i in range(count)))
    return tally


def _client_process(args: tuple) -> Tally:
    return asyncio.run(_class(*args))


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _step(ctx: BenchContext, n: int, processes: int, ramp: float, seconds: float) -> dict:
    """One class of `n` students: their figures and the server's CPU and memory."""
    server = psutil.Process(ctx.pid)
    shares = [n // processes + (i < n % processes) for i in range(processes)]
    firsts = [sum(shares[:i]) for i in range(processes)]
    jobs = [(ctx.base, f, c, ramp, seconds) for f, c in zip(firsts, shares, strict=True) if c]
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(len(jobs)) as pool:
        pending = pool.map_async(_client_process, jobs)
        time.sleep(ramp)
        server.cpu_percent()
        rss, cpu_started = [], time.monotonic()
        while time.monotonic() - cpu_started < seconds:
            rss.append(server.memory_info().rss / 2**20)
            time.sleep(0.5)
        cpu = server.cpu_percent()
        tallies = pending.get(timeout=ramp + seconds + 120)
    total = Tally()
    for tally in tallies:
        total.add(tally)
    return {"n": n, "tally": total, "cpu": cpu, "rss": max(rss)}


def _rows(step: dict) -> tuple[list[Row], bool]:
    t: Tally = step["tally"]
    n = step["n"]
    p10 = percentile(t.fps, 0.1) if t.fps else 0.0
    lat = t.latency_ms or [float("inf")]
    p50, p95, p99 = (percentile(lat, q) for q in (0.5, 0.95, 0.99))
    ok = p10 >= TARGET_FPS and p95 <= TARGET_P95_MS and not t.errors
    pages = f"{statistics.median(t.page_ms):.0f} ms" if t.page_ms else "–"
    uploads = f"{statistics.median(t.upload_ms):.0f} ms" if t.upload_ms else "–"
    rows = [
        Row(
            SECTION,
            f"{n} students: frames/s per student p10 / median",
            f"{p10:.1f} / {statistics.median(t.fps) if t.fps else 0:.1f}",
            f"p10 ≥ {TARGET_FPS:g}",
            p10 >= TARGET_FPS,
        ),
        Row(
            SECTION,
            f"{n} students: slider → first frame p50 / p95 / p99 ({len(t.latency_ms)} moves)",
            f"{p50:.0f} / {p95:.0f} / {p99:.0f} ms",
            f"p95 ≤ {TARGET_P95_MS:g} ms",
            p95 <= TARGET_P95_MS,
        ),
        Row(
            SECTION,
            f"{n} students: server CPU, peak RSS; page load, photo upload (median)",
            f"{step['cpu']:.0f}%, {step['rss']:.0f} MiB; {pages}, {uploads}"
            + (f" ({t.busy} busy)" if t.busy else ""),
        ),
        Row(
            SECTION,
            f"{n} students: errors",
            str(len(t.errors)) + (f" (first: {t.errors[0]})" if t.errors else ""),
            "0",
            not t.errors,
        ),
    ]
    return rows, ok


def bench_load(ctx: BenchContext) -> list[Row]:
    """Steps the class up until it no longer holds; one block of rows a step, then the verdict."""
    counts = [10, 20, 40] if ctx.quick else [10, 20, 30, 45, 60, 80, 100, 120]
    ramp, seconds = (4.0, 8.0) if ctx.quick else (6.0, 20.0)
    rows, best = [], 0
    for n in counts:
        step_rows, ok = _rows(_step(ctx, n, min(4, n), ramp, seconds))
        rows += step_rows
        if not ok:
            break
        best = n
        time.sleep(2)  # the last class's sessions close
    rows.append(
        Row(
            SECTION,
            f"capacity: largest class holding ≥ {TARGET_FPS:g} frames/s and p95 ≤ "
            f"{TARGET_P95_MS:g} ms",
            str(best),
            "≥ 30",
            best >= 30,
        )
    )
    return rows
