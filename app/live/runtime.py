"""Every live session of one app, of every lab: one cap, the thread pools, the two runners;
and the job workers (`app/jobs/`).

`LiveRuntime.lifespan` is the app's lifespan: it creates the pools and the background tasks, and
shuts them down when the app stops.
"""

import asyncio
import contextlib
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager

from app.broker import Broker, MemoryBroker, make_broker
from app.jobs import make_jobs
from app.labs import all_labs
from app.live.channel import ServerFull
from app.live.cpu_load import CpuLoad
from app.live.session import LiveSession
from app.live.solo import SoloRunner
from app.live.stacked import StackedRunner
from app.settings import Settings

IDLE_CHECK_SECONDS = 1.0


class BackgroundPool(ThreadPoolExecutor):
    """A thread pool that counts the jobs queued or running in it (what `/healthz` reports)."""

    def __init__(self, workers: int, name: str):
        super().__init__(workers, thread_name_prefix=name)
        self._count_lock = threading.Lock()
        self.pending = 0

    def submit(self, fn, /, *args, **kwargs) -> Future:
        with self._count_lock:
            self.pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _: Future) -> None:
        with self._count_lock:
            self.pending -= 1


class LiveRuntime:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.sessions: set[LiveSession] = set()
        self.pool: ThreadPoolExecutor | None = None  # TensorFlow calls, off the event loop
        # The stacked runner's calls, and the costly solo sessions' (`LiveSession.costly`), have
        # threads of their own: a class's MLP ticks and a neuron's 0.3 ms frames never queue
        # behind an RNN's frames (one is up to ~25 ms of a core).
        self.stacked_pool: ThreadPoolExecutor | None = None
        self.costly_pool: ThreadPoolExecutor | None = None
        self.compiler: BackgroundPool | None = None  # traces and XLA builds, in the background
        self.cpu_load = CpuLoad()  # what costly sessions yield to (`app/live/cpu_load.py`)
        self.solo = SoloRunner(self)
        self.stacked = StackedRunner(self)
        self.runners = {SoloRunner: self.solo, StackedRunner: self.stacked}
        # Long work (CNN training): in-process workers that start with the app, or RQ's.
        self.jobs = make_jobs(settings)
        # Rooms' messages between server processes: the lifespan makes the configured one.
        self.broker: Broker = MemoryBroker()

    @asynccontextmanager
    async def lifespan(self, app):
        self.pool = ThreadPoolExecutor(self.settings.tf_threads, thread_name_prefix="tf")
        self.stacked_pool = ThreadPoolExecutor(
            self.settings.tf_threads, thread_name_prefix="tf_stacked"
        )
        self.costly_pool = ThreadPoolExecutor(
            self.settings.tf_threads, thread_name_prefix="tf_costly"
        )
        self.compiler = BackgroundPool(1, "xla")
        self.broker = await make_broker(self.settings)
        self.jobs.start()
        tasks = [asyncio.create_task(self.stacked.run()), asyncio.create_task(self._pause_idle())]
        # Live labs first: a class waits on them; the one-shot labs' compiles queue behind.
        for lab in sorted(all_labs(), key=lambda lab: lab.session is None):
            if lab.warm_up is not None and self.settings.warm_up:
                lab.warm_up(self)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.solo.stop()
            # Running jobs stop at their next step; the workers are joined off the event loop.
            await asyncio.to_thread(self.jobs.shutdown)
            # A compile in progress finishes (it cannot be interrupted); queued ones are dropped.
            self.compiler.shutdown(wait=True, cancel_futures=True)
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.stacked_pool.shutdown(wait=True, cancel_futures=True)
            self.costly_pool.shutdown(wait=True, cancel_futures=True)
            await self.broker.close()

    @property
    def compiling(self) -> int:
        """Background traces and compiles queued or running (the start-up warm-ups among them)."""
        return 0 if self.compiler is None else self.compiler.pending

    def open(self, session_type: type[LiveSession]) -> LiveSession:
        """A new session of a lab; `ServerFull` once every lab's sessions together reach the cap."""
        if len(self.sessions) >= self.settings.max_sessions:
            raise ServerFull(
                f"The server is full: {self.settings.max_sessions} sessions are open. "
                "Try again in a minute."
            )
        session = session_type(self)
        self.sessions.add(session)
        session.open()
        return session

    def close(self, session: LiveSession) -> None:
        self.sessions.discard(session)
        session.close()

    async def _pause_idle(self) -> None:
        limit = self.settings.idle_pause_seconds
        while True:
            await asyncio.sleep(min(IDLE_CHECK_SECONDS, limit / 2))
            self._pause_idle_sessions(limit)

    def _pause_idle_sessions(self, limit: float) -> None:
        # Its own frame: a loop variable left in the task's frame would keep the last session
        # alive after it closed.
        now = time.monotonic()
        for session in self.sessions:
            session.pause_if_idle(now, limit)
