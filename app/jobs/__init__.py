"""Long work as jobs, behind one small interface: submit, status, progress stream, stop, result.

A job is a module-level function `fn(inputs, reporter) -> result` whose inputs and result are
plain picklable values (dataclasses of numbers, strings and numpy arrays: never the app, a
request or a closure). `LocalJobs` (`app/jobs/local.py`) runs it in worker threads that the
app's lifespan owns; with `PLAYGROUND_REDIS_URL` set, `RedisJobs` (`app/jobs/redis_queue.py`)
queues it on RQ for `playground worker` processes. `make_jobs` picks one (`LiveRuntime.jobs`).

While it runs, a job talks to its `Reporter`: `update(**fields)` merges JSON-able values into the
progress that `status` shows, `emit(message)` sends a JSON-able message to whoever follows the
job's stream, and `checkpoint()`, called between steps, blocks while the job is paused and raises
`JobStopped` once a stop is asked (the job may catch it to finish early with what it has).
"""

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

State = Literal["queued", "running", "done", "failed", "stopped"]
STATES: tuple[State, ...] = ("queued", "running", "done", "failed", "stopped")
FINISHED: tuple[State, ...] = ("done", "failed", "stopped")


class JobStopped(Exception):
    """Raised by `Reporter.checkpoint` once a stop is asked."""


class JobRefused(Exception):
    """A job that cannot be taken now; `status` is the HTTP status that says why."""

    status = 503


class QueueFull(JobRefused):
    """As many jobs wait as the queue holds (or are remembered): try again in a minute."""


class QueueUnreachable(JobRefused):
    """The shared queue (Redis) cannot be reached now: its jobs can be neither seen nor
    controlled until it answers again."""


class TooManyJobs(JobRefused):
    """The user has as many jobs queued or running as one user may."""

    status = 429


class Reporter(Protocol):
    """What a running job reports to."""

    def update(self, **fields: Any) -> None:
        """Merges JSON-able values into the job's progress; a value passed is never changed after."""

    def emit(self, message: Mapping[str, Any]) -> None:
        """Sends a JSON-able message to the job's followers."""

    def checkpoint(self) -> None:
        """Blocks while the job is paused; raises `JobStopped` once a stop is asked."""


@dataclass(frozen=True)
class JobStatus:
    """A job as its owner sees it.

    Attributes:
        id: 32 hex digits.
        state: One of `STATES`.
        paused: Whether it waits for `resume` (it stays `running`, or `queued`).
        stopping: Whether a stop was asked and the job is finishing its step.
        queue_position: 1 for the next job to start; None unless queued.
        progress: What the job reported with `Reporter.update`.
        error: Why it failed; None unless `failed`.
        created_at: Unix time of the submission.
        started_at: Unix time it began running; None while queued.
        finished_at: Unix time it ended; None until then.
        expires_at: Unix time it will be forgotten; None until it ends.
    """

    id: str
    state: State
    paused: bool
    stopping: bool
    queue_position: int | None
    progress: Mapping[str, Any]
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


JobFunction = Callable[[Any, Reporter], Any]


class Jobs(Protocol):
    """The job queue every lab uses; `LocalJobs` is the in-process implementation."""

    def submit(
        self, fn: JobFunction, inputs: Any, *, owner: str, progress: Mapping[str, Any] | None = None
    ) -> str:
        """Queues `fn(inputs, reporter)` for `owner` and returns the job's id; `progress` is what
        its status shows until it reports. Raises `JobRefused` (`QueueFull`, `TooManyJobs`) when
        it cannot be taken."""

    def status(self, job_id: str) -> JobStatus | None:
        """The job's status, or None if it is unknown or expired."""

    def owned(self, owner: str) -> list[JobStatus]:
        """The statuses of `owner`'s jobs still remembered, newest first."""

    def result(self, job_id: str) -> Any:
        """What the job's function returned (None while it runs, or if it failed)."""

    def stop(self, job_id: str) -> JobStatus | None:
        """Stops a queued job now, a running one at its next checkpoint."""

    def pause(self, job_id: str) -> JobStatus | None:
        """Holds the job at its next checkpoint."""

    def resume(self, job_id: str) -> JobStatus | None:
        """Lets a paused job go on."""

    def stream(self, job_id: str) -> AsyncIterator["JobStatus | Mapping[str, Any]"]:
        """The job's status, then its messages and each new status, until it ends (the last
        item is its final status); nothing for an unknown job."""


@dataclass(frozen=True)
class Outcome:
    """How a job's function ended: its final state, result, and for a failure why (in words)
    and the exception itself."""

    state: State
    result: Any = None
    error: str | None = None
    failure: Exception | None = None


def run_job_function(
    job_id: str, fn: JobFunction, inputs: Any, reporter: Reporter, stopping: Callable[[], bool]
) -> Outcome:
    """Runs job `job_id`'s `fn(inputs, reporter)` as both queues do: `JobStopped` ends it
    `stopped`, any other error `failed` (logged), a return `done`, or `stopped` if `stopping()`
    says a stop was asked (the job finished early with what it had)."""
    try:
        result = fn(inputs, reporter)
    except JobStopped:
        return Outcome("stopped")
    except Exception as exc:
        logging.getLogger(__name__).warning(
            "Job %s failed", job_id, exc_info=not isinstance(exc, ValueError)
        )
        return Outcome("failed", error=describe_failure(exc), failure=exc)
    return Outcome("stopped" if stopping() else "done", result)


def describe_failure(exc: Exception) -> str:
    """What a failed job tells its owner (`JobStatus.error`): a check's own words, or the
    error's type and words."""
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def refuse_past_limits(settings, mine: int, waiting: int, kept: int, make_room) -> None:
    """Raises `TooManyJobs` or `QueueFull` when a new job of a user with `mine` jobs queued or
    running would pass a limit, `waiting` jobs being queued and `kept` remembered;
    `make_room()` forgets the oldest finished job, False if there is none."""
    if mine >= settings.jobs_per_user:
        raise TooManyJobs(
            f"You have {mine} jobs queued or running, the most one user may have "
            f"({settings.jobs_per_user}). Wait for one to finish, or stop one."
        )
    if waiting >= settings.job_queue:
        raise QueueFull(
            f"{waiting} jobs are waiting, as many as the queue holds. Try again in a minute."
        )
    if kept >= settings.jobs_kept and not make_room():
        raise QueueFull(
            f"{kept} jobs are queued or running, as many as the server keeps. "
            "Try again in a minute."
        )


class PausedByFlag:
    """`pause` and `resume` of a `Jobs` whose pause is one flag the job's checkpoint reads."""

    def _set_paused(self, job_id: str, paused: bool) -> "JobStatus | None":
        raise NotImplementedError

    def pause(self, job_id: str) -> JobStatus | None:
        return self._set_paused(job_id, True)

    def resume(self, job_id: str) -> JobStatus | None:
        return self._set_paused(job_id, False)


def check_job_function(fn: JobFunction) -> None:
    """Refuses a job function another process could not import by name: a lambda, a closure
    or a method would tie the job to this process's objects."""
    qualname = getattr(fn, "__qualname__", "")
    if not callable(fn) or not qualname.isidentifier() or fn.__module__ == "__main__":
        raise TypeError(
            f"A job function must be a module-level function, importable by name. Received: {fn!r}"
        )


def make_jobs(settings) -> Jobs:
    """The job queue `settings` ask for: `RedisJobs` when `redis_url` is set and Redis answers,
    else (with a warning if Redis was asked for) `LocalJobs`."""
    from app.jobs.local import LocalJobs

    if settings.redis_url:
        from app.jobs.redis_queue import UNREACHABLE, RedisJobs

        try:
            return RedisJobs(settings)
        except UNREACHABLE as exc:
            logging.getLogger(__name__).warning(
                "Redis at %s cannot be reached (%s): CNN jobs run in this process.",
                settings.redis_url, exc,
            )  # fmt: skip
    return LocalJobs(settings)
