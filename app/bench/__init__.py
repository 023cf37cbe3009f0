"""`playground bench`: each lab's module measures against a real server and returns table rows."""

import json
import statistics
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BenchContext:
    """What a lab's `bench(ctx)` measures against: a real server started for the run."""

    base: str  # http://127.0.0.1:PORT
    pid: int  # the server's process, for its CPU and memory
    started: float  # time.monotonic() when the server process was launched
    quick: bool  # fewer samples, shorter windows
    clients_procs: int = 2  # processes the many-client benches run their clients in


@dataclass(frozen=True)
class Row:
    section: str
    metric: str
    value: str
    target: str = ""
    ok: bool | None = None  # None: informational, no target


def within(section: str, timed: dict[str, float], target_ms: float) -> list[Row]:
    """One row per timing (metric → milliseconds), each checked against `target_ms`, at most."""
    return [
        Row(section, metric, f"{ms:.1f} ms", f"≤ {target_ms:g} ms", ms <= target_ms)
        for metric, ms in timed.items()
    ]


def format_table(rows: list[Row]) -> str:
    """Render rows as a fixed-width text table."""
    header = ("section", "metric", "measured", "target", "")
    cells = [header] + [
        (r.section, r.metric, r.value, r.target, "" if r.ok is None else ("ok" if r.ok else "MISS"))
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(header))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def memory_rows(
    section: str, over: str, points: list[tuple[int, float]], traces: tuple[int, int]
) -> list[Row]:
    """The rows saying the server's memory stayed flat `over` some sessions: the least-squares
    slope of its resident memory (session, MiB) per session, and the compiled calls it held
    before and after (`app.bench.server.traces_held`)."""
    slope_kib = float("nan")
    if len(points) >= 2:
        xs, ys = zip(*points, strict=True)
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)
        slope_kib = slope * 1024
    before, after = traces
    return [
        Row(
            section,
            f"resident memory slope per session {over}",
            f"{slope_kib:+.1f} KiB ({points[0][1]:.0f} → {points[-1][1]:.0f} MiB)"
            if points
            else "no samples",
            "flat (≤ 50 KiB/session)",
            slope_kib <= 50,
        ),
        Row(
            section,
            "compiled calls held before / after them (/metrics playground_traces)",
            f"{before} / {after}",
            "no growth",
            after <= before,
        ),
    ]


def median_ms(fn: Callable[[], object], warmup: int, runs: int) -> float:
    """The median time of `runs` calls of `fn`, after `warmup` untimed ones, in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def post(
    url: str, data: bytes, content_type: str = "application/json", timeout: float = 30
) -> dict:
    """POSTs `data` and returns the JSON answer."""
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def timed_posts(url: str, data: bytes, warmup: int, runs: int) -> tuple[dict, list, list]:
    """POSTs `data` warmup + runs times: the last answer, then each timed run's round trip and
    the server's own `compute_ms`, in milliseconds."""
    round_trip, server = [], []
    for i in range(warmup + runs):
        began = time.perf_counter()
        answer = post(url, data)
        if i >= warmup:
            round_trip.append((time.perf_counter() - began) * 1000)
            server.append(answer["compute_ms"])
    return answer, round_trip, server
