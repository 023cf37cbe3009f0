"""The in-process job queue: a bounded FIFO drained by worker threads that the app's lifespan owns.

One running job per user: a worker takes the first queued job whose owner has none running, so a
user's second job waits behind their first while other users' jobs go ahead. Finished jobs are
forgotten `job_expire_seconds` after they end, or sooner when more than `jobs_kept` are
remembered (oldest finished first).

A job's followers are asyncio queues on their own event loops, fed from the worker thread with
`call_soon_threadsafe`, and bounded (`app/jobs/followers.py`).
"""

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.jobs import (
    FINISHED,
    JobFunction,
    JobRefused,
    JobStatus,
    JobStopped,
    PausedByFlag,
    State,
    check_job_function,
    refuse_past_limits,
    run_job_function,
)
from app.jobs.followers import RESYNC, deliver
from app.metrics import job_changed
from app.settings import Settings


class _Follower:
    """One stream's queue, on the event loop that reads it."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue()

    def deliver(self, item: object) -> None:
        """Runs on the follower's loop."""
        deliver(self.queue, item)


@dataclass(eq=False)
class _Job:
    id: str
    owner: str
    fn: JobFunction | None
    inputs: Any
    created_at: float
    state: State = "queued"
    paused: bool = False
    stopping: bool = False
    progress: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    result: Any = None
    started_at: float | None = None
    finished_at: float | None = None
    followers: list[_Follower] = field(default_factory=list)


class LocalJobs(PausedByFlag):
    """`app.jobs.Jobs` in this process: `start()` and `shutdown()` belong to the app's lifespan.

    Args:
        settings: `job_workers`, `job_queue`, `jobs_per_user`, `jobs_kept`,
            `job_expire_seconds`.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._jobs: dict[str, _Job] = {}
        self._queue: list[_Job] = []  # queued jobs, first in first out
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closing = False

    # --- lifespan ------------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the worker threads."""
        with self._changed:
            self._closing = False
        self._threads = [
            threading.Thread(target=self._work, name=f"job-{i}", daemon=True)
            for i in range(self.settings.job_workers)
        ]
        for thread in self._threads:
            thread.start()

    def shutdown(self) -> None:
        """Stops every job (a running one at its next checkpoint) and waits for the workers."""
        with self._changed:
            self._closing = True
            for job in list(self._jobs.values()):
                self._stop(job)
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()
        self._threads = []

    # --- the interface -------------------------------------------------------------------------

    def submit(
        self, fn: JobFunction, inputs: Any, *, owner: str, progress: Mapping[str, Any] | None = None
    ) -> str:
        check_job_function(fn)
        with self._changed:
            if self._closing or not self._threads:
                raise JobRefused("The server is not taking jobs now: it is starting or stopping.")
            self._prune()
            mine = sum(j.owner == owner and j.state not in FINISHED for j in self._jobs.values())
            refuse_past_limits(
                self.settings, mine, len(self._queue), len(self._jobs), self._forget_oldest_finished
            )
            job = _Job(
                uuid.uuid4().hex, owner, fn, inputs, time.time(), progress=dict(progress or {})
            )
            self._jobs[job.id] = job
            self._queue.append(job)
            job_changed(job.id, None, "queued")
            self._changed.notify_all()
            return job.id

    def status(self, job_id: str) -> JobStatus | None:
        with self._changed:
            self._prune()
            job = self._jobs.get(job_id)
            return None if job is None else self._status(job)

    def owned(self, owner: str) -> list[JobStatus]:
        with self._changed:
            self._prune()
            mine = [j for j in self._jobs.values() if j.owner == owner]
            return [self._status(j) for j in sorted(mine, key=lambda j: -j.created_at)]

    def result(self, job_id: str) -> Any:
        with self._changed:
            job = self._jobs.get(job_id)
            return None if job is None else job.result

    def stop(self, job_id: str) -> JobStatus | None:
        with self._changed:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            self._stop(job)
            self._changed.notify_all()
            return self._status(job)

    async def stream(self, job_id: str) -> AsyncIterator[JobStatus | Mapping[str, Any]]:
        follower = _Follower(asyncio.get_running_loop())
        with self._changed:
            job = self._jobs.get(job_id)
            if job is None:
                return
            first = self._status(job)
            if not first.finished:
                job.followers.append(follower)
        try:
            yield first
            while not first.finished:
                item = await follower.queue.get()
                if item is RESYNC:
                    with self._changed:
                        item = self._status(job)
                yield item
                if isinstance(item, JobStatus) and item.finished:
                    return
        finally:
            with self._changed:
                if follower in job.followers:
                    job.followers.remove(follower)

    # --- inside (the lock held) ----------------------------------------------------------------

    def _status(self, job: _Job) -> JobStatus:
        position = self._queue.index(job) + 1 if job.state == "queued" else None
        expires = job.finished_at + self.settings.job_expire_seconds if job.finished_at else None
        return JobStatus(
            id=job.id,
            state=job.state,
            paused=job.paused,
            stopping=job.stopping,
            queue_position=position,
            progress=dict(job.progress),
            error=job.error,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            expires_at=expires,
        )

    def _publish(self, job: _Job, item: object) -> None:
        for follower in list(job.followers):
            try:
                follower.loop.call_soon_threadsafe(follower.deliver, item)
            except RuntimeError:  # its event loop has closed
                job.followers.remove(follower)

    def _publish_status(self, job: _Job) -> None:
        if job.followers:
            self._publish(job, self._status(job))

    def _publish_positions(self) -> None:
        for job in self._queue:
            self._publish_status(job)

    def _stop(self, job: _Job) -> None:
        if job.state == "queued":
            self._queue.remove(job)
            self._finish(job, "stopped")
            self._publish_positions()
        elif job.state == "running" and not job.stopping:
            job.stopping = True
            self._publish_status(job)

    def _finish(self, job: _Job, state: State, result: Any = None, error: str | None = None):
        job_changed(job.id, job.state, state)
        job.state, job.result, job.error = state, result, error
        job.finished_at = time.time()
        job.fn = job.inputs = None  # the photos are not kept past the job
        self._publish_status(job)
        job.followers.clear()

    def _set_paused(self, job_id: str, paused: bool) -> JobStatus | None:
        with self._changed:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state not in FINISHED and job.paused != paused:
                job.paused = paused
                self._changed.notify_all()
                self._publish_status(job)
            return self._status(job)

    def _prune(self) -> None:
        """Forgets the jobs that ended more than `job_expire_seconds` ago."""
        deadline = time.time() - self.settings.job_expire_seconds
        for job_id in [
            j.id for j in self._jobs.values() if j.finished_at and j.finished_at < deadline
        ]:
            del self._jobs[job_id]

    def _forget_oldest_finished(self) -> bool:
        finished = [j for j in self._jobs.values() if j.finished_at is not None]
        if not finished:
            return False
        del self._jobs[min(finished, key=lambda j: j.finished_at).id]
        return True

    def _next(self) -> _Job | None:
        """The first queued job whose owner has no job running."""
        busy = {j.owner for j in self._jobs.values() if j.state == "running"}
        return next((j for j in self._queue if j.owner not in busy), None)

    # --- the workers ---------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._closing and (job := self._next()) is None:
                    self._changed.wait()
                if self._closing:
                    return
                self._queue.remove(job)
                job.state, job.started_at = "running", time.time()
                job_changed(job.id, "queued", "running")
                self._publish_status(job)
                self._publish_positions()
                fn, inputs = job.fn, job.inputs
            outcome = run_job_function(
                job.id, fn, inputs, _Reporter(self, job), lambda: job.stopping
            )
            with self._changed:
                self._finish(job, outcome.state, outcome.result, outcome.error)
                self._changed.notify_all()


class _Reporter:
    """`app.jobs.Reporter` of one job in a worker thread."""

    def __init__(self, jobs: LocalJobs, job: _Job):
        self._jobs, self._job = jobs, job

    def update(self, **fields: Any) -> None:
        with self._jobs._changed:
            self._job.progress.update(fields)

    def emit(self, message: Mapping[str, Any]) -> None:
        with self._jobs._changed:
            self._jobs._publish(self._job, message)

    def checkpoint(self) -> None:
        with self._jobs._changed:
            while self._job.paused and not self._job.stopping:
                self._jobs._changed.wait()
            if self._job.stopping:
                raise JobStopped
