"""Sessions of varied labs and architectures opened, trained and closed leave nothing behind: no
session (not even one still referenced from somewhere), no asyncio task, no thread, and the trace
cache within `max_traces`. (`playground bench
--load` runs 1,000 of them against the real server and reports the memory slope.)"""

import asyncio
import gc
import threading
import time

from fastapi.testclient import TestClient

from app.bench.churn import FRAMES, session_plan
from app.live.session import LiveSession
from app.main import create_app
from app.settings import Settings
from tests.app.live_socket import lab_socket

SESSIONS = 25
MAX_TRACES = 4


def train_once(client: TestClient, i: int) -> None:
    slug, config = session_plan(i)
    with lab_socket(client, slug) as sock:
        sock.send({"type": "config", **config})
        sock.send({"type": "play"})
        for _ in range(FRAMES):
            sock.until(lambda m: m["type"] == "frame" and m["version"] >= 1 and m["step"] > 0)


def _fill(pool, workers: int) -> None:
    """Makes the pool start all of its threads (it starts them as work comes)."""
    everyone = threading.Barrier(workers)
    for future in [pool.submit(everyone.wait) for _ in range(workers)]:
        future.result(timeout=60)


async def _task_count() -> int:
    return len(asyncio.all_tasks())


def test_churned_sessions_leave_no_task_thread_or_trace_behind() -> None:
    settings = Settings(use_xla=False, max_traces=MAX_TRACES)
    with TestClient(create_app(settings)) as client:
        runtime = client.app.state.live
        for i in range(5):  # each lab once
            train_once(client, i)
        _fill(runtime.pool, settings.tf_threads)  # the thread pools at their size
        _fill(runtime.stacked_pool, settings.tf_threads)
        _fill(runtime.costly_pool, settings.tf_threads)
        _fill(runtime.compiler, 1)
        tasks, threads = client.portal.call(_task_count), threading.active_count()
        for i in range(5, 5 + SESSIONS):
            train_once(client, i)
        assert not runtime.sessions
        assert not runtime.solo.tasks
        assert not runtime.stacked.groups
        assert len(runtime.stacked.trainers) <= MAX_TRACES
        assert client.portal.call(_task_count) == tasks
        assert threading.active_count() <= threads
        # The start-up traces' stand-in sessions live until their jobs are done.
        deadline = time.monotonic() + 300  # a bound against a hang, not a target
        while runtime.compiling and time.monotonic() < deadline:
            time.sleep(0.1)
        gc.collect()
        assert not [o for o in gc.get_objects() if isinstance(o, LiveSession)]
