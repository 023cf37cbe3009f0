"""The job queue of several processes: RQ on Redis, run by `playground worker` processes.

`RedisJobs` is `app.jobs.Jobs` for a server process with `PLAYGROUND_REDIS_URL` set: `submit`
enqueues `run_job(id, fn, inputs, keep_seconds)` on the RQ queue `playground`, and any
`playground worker` (an RQ `SimpleWorker`: TensorFlow is imported once, not per job) runs it.
RQ's rate limit of one per owner gives LocalJobs' rule of one running job per user: a user's
next job waits, held by RQ, while other users' jobs go ahead.

What a job's owner sees lives next to RQ's own keys, so every server process reads the same:
`playground:job:{id}` (a hash: owner, state, paused, stopping, error and times),
`…:progress` (a hash of JSON values: what `Reporter.update` merged), `…:result` (the pickled
result). The worker publishes each emitted message and each change of state on the channel
`playground:job:{id}`, and a change of the queue (a job started or left it) on
`playground:jobs:queue`; `stream` follows both. Pause and stop are fields of the hash that the
worker's `checkpoint()` reads. A finished job's keys expire after `job_expire_seconds`; the hash
`playground:jobs:ended` counts the jobs ended by outcome (`/metrics`' `playground_shared_jobs…`).

If Redis goes away, the server stays up: a new job runs in this process (a `LocalJobs` of its
own, with a logged warning), and Redis is tried again after `RETRY_SECONDS`; a job queued on
Redis can be neither seen nor controlled meanwhile (`QueueUnreachable`: a 503 that says so, with
Retry-After, and its socket closes with 1013 for the page to come back).
"""

import asyncio
import contextlib
import dataclasses
import json
import logging
import pickle
import threading
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, RateLimit, SimpleWorker, get_current_job
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, cancel_job
from rq.job import JobStatus as RQStatus
from rq.rate_limit import release_slot

from app.jobs import (
    JobFunction,
    JobStatus,
    JobStopped,
    PausedByFlag,
    QueueFull,
    QueueUnreachable,
    check_job_function,
    refuse_past_limits,
    run_job_function,
)
from app.jobs.followers import deliver
from app.jobs.local import LocalJobs
from app.metrics import count_shared_jobs
from app.settings import Settings

log = logging.getLogger(__name__)

QUEUE = "playground"
WAITING = "playground:jobs:waiting"  # queued jobs by submission time: their queue positions
ACTIVE = "playground:jobs:active"  # queued or running, by submission time
ENDED = "playground:jobs:finished"  # by end time: the oldest is forgotten first
ENDED_COUNTS = "playground:jobs:ended"  # jobs ended, by outcome
QUEUE_CHANNEL = "playground:jobs:queue"
SUBMIT_LOCK = "playground:jobs:submit"
# A job is not cut short by RQ's timeout: the page stops it. The bound only frees a worker whose
# job hangs.
JOB_TIMEOUT_SECONDS = 6 * 3600
FAILED_KEPT_SECONDS = 600  # RQ keeps a failed job (its inputs among it) this long for `rq info`
PAUSE_POLL_SECONDS = 0.2
# A running job's worker renews `…:alive` this often; a job whose key lapses is taken for failed
# (its worker was killed, or lost Redis): its page is told, and its owner may train again.
HEARTBEAT_SECONDS = 5.0
HEARTBEAT_TTL_SECONDS = 30
WORKER_GONE = "The worker training it stopped before the job ended. Train it again."
CONNECT_SECONDS = 2.0
COMMAND_SECONDS = 10.0  # a data set's photos go to Redis in one command
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
RETRY_SECONDS = 5.0  # after Redis failed to answer, new jobs run here this long before it is tried


def _key(job_id: str) -> str:
    return f"playground:job:{job_id}"


def _owner_key(owner: str) -> str:
    return f"playground:jobs:owner:{owner}"


class RedisJobs(PausedByFlag):
    """`app.jobs.Jobs` through RQ: jobs run in `playground worker` processes.

    Args:
        settings: `redis_url`, `job_queue`, `jobs_per_user`, `jobs_kept`, `job_expire_seconds`.

    Raises:
        redis.exceptions.ConnectionError: Redis cannot be reached (`make_jobs` falls back to
            `LocalJobs`).
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.url = settings.redis_url
        self._redis = Redis.from_url(
            self.url, socket_connect_timeout=CONNECT_SECONDS, socket_timeout=COMMAND_SECONDS
        )
        self._redis.ping()
        self._queue = Queue(QUEUE, connection=self._redis)
        self._local = LocalJobs(settings)  # new jobs while Redis is away
        self._away_until: float | None = None  # Redis failed; not tried again before then
        count_shared_jobs(self.counts)

    # --- lifespan: the workers are other processes, but for the fallback's -----------------------

    def start(self) -> None:
        self._local.start()

    def shutdown(self) -> None:
        self._local.shutdown()
        count_shared_jobs(None)
        self._redis.close()

    # --- the interface -------------------------------------------------------------------------

    def submit(
        self, fn: JobFunction, inputs: Any, *, owner: str, progress: Mapping[str, Any] | None = None
    ) -> str:
        check_job_function(fn)
        try:
            return self._shared(self._submit, fn, inputs, owner, progress)
        except QueueUnreachable:
            return self._local.submit(fn, inputs, owner=owner, progress=progress)

    def status(self, job_id: str) -> JobStatus | None:
        found = self._local.status(job_id)
        return found if found is not None else self._shared(self._status_of, job_id)

    def owned(self, owner: str) -> list[JobStatus]:
        shared = self._shared(self._owned, owner, default=[])
        return sorted([*self._local.owned(owner), *shared], key=lambda s: -s.created_at)

    def result(self, job_id: str) -> Any:
        if self._local.status(job_id) is not None:
            return self._local.result(job_id)
        return self._shared(self._result, job_id)

    def stop(self, job_id: str) -> JobStatus | None:
        if self._local.status(job_id) is not None:
            return self._local.stop(job_id)
        return self._shared(self._stop, job_id)

    async def stream(self, job_id: str) -> AsyncIterator[JobStatus | Mapping[str, Any]]:
        if await asyncio.to_thread(self._local.status, job_id) is not None:
            async with contextlib.aclosing(self._local.stream(job_id)) as items:
                async for item in items:
                    yield item
            return
        if self._away():
            raise self._unreachable()
        try:
            async with contextlib.aclosing(self._stream(job_id)) as items:
                async for item in items:
                    yield item
        except UNREACHABLE as exc:
            self._went_away(exc)
            raise self._unreachable() from exc

    def counts(self) -> tuple[dict[str, int], dict[str, int]] | None:
        """The shared queue's jobs queued and running, and ended by outcome; None while Redis
        is away."""
        if self._away():
            return None
        with contextlib.suppress(*UNREACHABLE):
            pipe = self._redis.pipeline(transaction=False)
            waiting, active, ended = (
                pipe.zcard(WAITING).zcard(ACTIVE).hgetall(ENDED_COUNTS).execute()
            )
            live = {"queued": waiting, "running": max(0, active - waiting)}
            return live, {state.decode(): int(n) for state, n in ended.items()}
        return None

    # --- Redis away ----------------------------------------------------------------------------

    def _away(self) -> bool:
        return self._away_until is not None and time.monotonic() < self._away_until

    def _went_away(self, exc: Exception) -> None:
        if self._away_until is None:
            log.warning(
                "Redis at %s cannot be reached (%s): new jobs run in this process until it "
                "answers again; its jobs cannot be followed meanwhile.",
                self.url, exc,
            )  # fmt: skip
        self._away_until = time.monotonic() + RETRY_SECONDS

    def _unreachable(self) -> QueueUnreachable:
        return QueueUnreachable(
            f"The job queue (Redis at {self.url}) cannot be reached now, so this job can be "
            f"neither seen nor controlled. Try again in {RETRY_SECONDS:g} seconds."
        )

    def _shared(self, call, *args, default: Any = None):
        """`call(*args)` on Redis: once it fails, `QueueUnreachable` (or `default`, if given)
        until Redis answers again, tried at most every `RETRY_SECONDS`."""
        if self._away():
            if default is not None:
                return default
            raise self._unreachable()
        try:
            answer = call(*args)
        except UNREACHABLE as exc:
            self._went_away(exc)
            if default is not None:
                return default
            raise self._unreachable() from exc
        if self._away_until is not None:
            log.warning("Redis at %s answers again: new jobs go to its queue.", self.url)
            self._away_until = None
        return answer

    # --- on Redis ------------------------------------------------------------------------------

    def _submit(self, fn: JobFunction, inputs: Any, owner: str, progress) -> str:
        s = self.settings
        job_id = uuid.uuid4().hex
        try:
            with self._redis.lock(SUBMIT_LOCK, timeout=10, blocking_timeout=5):
                self._refuse_if_full(owner)
                now = time.time()
                pipe = self._redis.pipeline()
                pipe.hset(
                    _key(job_id), mapping={"owner": owner, "state": "queued", "created_at": now}
                )
                if progress:
                    pipe.hset(_key(job_id) + ":progress", mapping=_encode(progress))
                for index in (WAITING, ACTIVE, _owner_key(owner)):
                    pipe.zadd(index, {job_id: now})
                pipe.expire(_owner_key(owner), JOB_TIMEOUT_SECONDS + round(s.job_expire_seconds))
                pipe.execute()
                self._queue.enqueue_call(
                    run_job,
                    args=(job_id, fn, inputs, s.job_expire_seconds),
                    job_id=job_id,
                    description=f"{fn.__module__}.{fn.__qualname__}",  # RQ logs it: not the photos
                    timeout=JOB_TIMEOUT_SECONDS,
                    result_ttl=0,  # the result is kept under our key; RQ forgets the inputs
                    failure_ttl=FAILED_KEPT_SECONDS,
                    rate_limit=RateLimit(f"playground-owner:{owner}", 1),
                )
        except LockError as exc:
            raise QueueFull("The job queue is busy. Try again in a minute.") from exc
        return job_id

    def _status_of(self, job_id: str) -> JobStatus | None:
        return self._statuses([job_id])[0]

    def _owned(self, owner: str) -> list[JobStatus]:
        ids = [i.decode() for i in self._redis.zrevrange(_owner_key(owner), 0, -1)]
        statuses = self._statuses(ids)
        if gone := [i for i, found in zip(ids, statuses, strict=True) if found is None]:
            self._redis.zrem(_owner_key(owner), *gone)
        return [found for found in statuses if found is not None]

    def _result(self, job_id: str) -> Any:
        data = self._redis.get(_key(job_id) + ":result")
        return None if data is None else pickle.loads(data)

    def _stop(self, job_id: str) -> JobStatus | None:
        def stop_in(pipe) -> str | None:
            state = _text(pipe.hget(_key(job_id), "state"))
            pipe.multi()
            if state == "queued":
                _finish(pipe, job_id, "stopped", None, self.settings.job_expire_seconds)
            elif state == "running":
                pipe.hset(_key(job_id), "stopping", 1)
            return state

        state = self._redis.transaction(stop_in, _key(job_id), value_from_callable=True)
        if state == "queued":
            with contextlib.suppress(NoSuchJobError, InvalidJobOperation):
                cancel_job(job_id, self._redis)  # started meanwhile: it sees `stopped` and ends
            self._redis.publish(QUEUE_CHANNEL, job_id)
        if state in ("queued", "running"):
            _announce(self._redis, job_id, self.settings.job_expire_seconds)
        return self._status_of(job_id)

    async def _stream(self, job_id: str) -> AsyncIterator[JobStatus | Mapping[str, Any]]:
        client = AsyncRedis.from_url(self.url, socket_connect_timeout=CONNECT_SECONDS)
        pubsub = client.pubsub()
        items: asyncio.Queue = asyncio.Queue()
        reader = None
        try:
            # Subscribed (both confirmed) before the first status is read: nothing falls between.
            await pubsub.subscribe(_key(job_id), QUEUE_CHANNEL)
            for _ in range(2):
                await pubsub.get_message(timeout=CONNECT_SECONDS)
            reader = asyncio.create_task(_read(pubsub, items))
            last = await asyncio.to_thread(self._status_of, job_id)
            if last is None:
                return
            yield last
            while not last.finished:
                item = await items.get()
                if isinstance(item, Exception):  # the reader lost Redis
                    raise item
                if isinstance(item, JobStatus):
                    found = item
                elif isinstance(item, Mapping):
                    yield item
                    continue
                elif item == QUEUE_CHANNEL and last.state != "queued":
                    continue
                else:  # the queue moved, or this follower fell behind
                    found = await asyncio.to_thread(self._status_of, job_id)
                    if found is None:  # forgotten meanwhile
                        return
                if found != last:
                    last = found
                    yield found
        finally:
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, *UNREACHABLE):
                    await reader
            with contextlib.suppress(*UNREACHABLE):
                await pubsub.aclose()
            await client.aclose()

    # --- inside --------------------------------------------------------------------------------

    def _refuse_if_full(self, owner: str) -> None:
        """LocalJobs' limits, counted in Redis (the submit lock held)."""
        s = self.settings
        self._redis.zremrangebyscore(ENDED, "-inf", time.time() - s.job_expire_seconds)
        ids = [i.decode() for i in self._redis.zrange(_owner_key(owner), 0, -1)]
        mine = sum(found is not None and not found.finished for found in self._statuses(ids))
        kept = self._redis.zcard(ACTIVE) + self._redis.zcard(ENDED)
        refuse_past_limits(s, mine, self._redis.zcard(WAITING), kept, self._forget_oldest_finished)

    def _forget_oldest_finished(self) -> bool:
        oldest = self._redis.zpopmin(ENDED)
        if not oldest:
            return False
        job_id = oldest[0][0].decode()
        self._redis.delete(_key(job_id), _key(job_id) + ":progress", _key(job_id) + ":result")
        return True

    def _statuses(self, ids: list[str]) -> list[JobStatus | None]:
        keep = self.settings.job_expire_seconds
        found = []
        for job_id, (fields, progress, rank, alive) in zip(
            ids, _fetch(self._redis, ids), strict=True
        ):
            if fields.get(b"state") == b"running" and not alive and self._reap(job_id):
                found.append(self._status_of(job_id))
            else:
                found.append(_status(job_id, fields, progress, rank, keep))
        return found

    def _reap(self, job_id: str) -> bool:
        """Fails a running job whose worker stopped renewing its heartbeat."""

        def reap_in(pipe) -> bool:
            if _text(pipe.hget(_key(job_id), "state")) != "running":
                return False
            if pipe.exists(_key(job_id) + ":alive"):
                return False
            pipe.multi()
            _finish(pipe, job_id, "failed", WORKER_GONE, self.settings.job_expire_seconds)
            return True

        keys = (_key(job_id), _key(job_id) + ":alive")
        if not self._redis.transaction(reap_in, *keys, value_from_callable=True):
            return False
        log.warning("Job %s: its worker stopped renewing its heartbeat; it is failed.", job_id)
        with contextlib.suppress(NoSuchJobError):
            held = Job.fetch(job_id, connection=self._redis)
            held.set_status(RQStatus.FAILED)
            release_slot(held)  # RQ lets the owner's next job go
        _announce(self._redis, job_id, self.settings.job_expire_seconds)
        return True

    def _set_paused(self, job_id: str, paused: bool) -> JobStatus | None:
        if self._local.status(job_id) is not None:
            return (self._local.pause if paused else self._local.resume)(job_id)
        return self._shared(self._set_paused_shared, job_id, paused)

    def _set_paused_shared(self, job_id: str, paused: bool) -> JobStatus | None:
        found = self._status_of(job_id)
        if found is None or found.finished or found.paused == paused:
            return found
        self._redis.hset(_key(job_id), "paused", int(paused))
        return _announce(self._redis, job_id, self.settings.job_expire_seconds)


async def _read(pubsub, items: asyncio.Queue) -> None:
    """Moves a stream's Redis messages into its bounded queue (`app/jobs/followers.py`): a
    message as a mapping, a new status as a `JobStatus`, a change of the queue as
    `QUEUE_CHANNEL`; and, if Redis is lost, the error, for the stream to raise."""
    try:
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            if message["channel"].decode() == QUEUE_CHANNEL:
                item = QUEUE_CHANNEL
            else:
                data = json.loads(message["data"])
                item = JobStatus(**data["status"]) if "status" in data else data["message"]
            deliver(items, item)
    except UNREACHABLE as exc:
        items.put_nowait(exc)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _encode(fields: Mapping[str, Any]) -> dict[str, str]:
    return {name: json.dumps(value) for name, value in fields.items()}


def _fetch(redis: Redis, ids: list[str]) -> list[tuple]:
    """What makes each job's status: its hash, its progress, its place in the queue, whether its
    worker's heartbeat is alive; one round trip."""
    pipe = redis.pipeline(transaction=False)
    for job_id in ids:
        pipe.hgetall(_key(job_id))
        pipe.hgetall(_key(job_id) + ":progress")
        pipe.zrank(WAITING, job_id)
        pipe.exists(_key(job_id) + ":alive")
    answers = pipe.execute()
    return [tuple(answers[i : i + 4]) for i in range(0, len(answers), 4)]


def _announce(redis: Redis, job_id: str, keep_seconds: float) -> JobStatus | None:
    """Publishes the job's status as it is now to its followers, and returns it."""
    fields, progress, rank, _ = _fetch(redis, [job_id])[0]
    found = _status(job_id, fields, progress, rank, keep_seconds)
    if found is not None:
        redis.publish(_key(job_id), json.dumps({"status": dataclasses.asdict(found)}))
    return found


def _status(job_id, fields, progress, rank, keep_seconds: float) -> JobStatus | None:
    if not fields:
        return None
    f = {name.decode(): value.decode() for name, value in fields.items()}

    def moment(name: str) -> float | None:
        return float(f[name]) if name in f else None

    finished_at = moment("finished_at")
    return JobStatus(
        id=job_id,
        state=f["state"],
        paused=f.get("paused") == "1",
        stopping=f.get("stopping") == "1",
        queue_position=rank + 1 if f["state"] == "queued" and rank is not None else None,
        progress={name.decode(): json.loads(value) for name, value in progress.items()},
        error=f.get("error"),
        created_at=float(f["created_at"]),
        started_at=moment("started_at"),
        finished_at=finished_at,
        expires_at=None if finished_at is None else finished_at + keep_seconds,
    )


def _finish(pipe, job_id: str, state: str, error: str | None, keep_seconds: float) -> None:
    """Queues on `pipe` what ends a job: its state, and its keys' expiry."""
    now = time.time()
    pipe.hset(_key(job_id), mapping={"state": state, "finished_at": now})
    if error is not None:
        pipe.hset(_key(job_id), "error", error)
    for key in (_key(job_id), _key(job_id) + ":progress", _key(job_id) + ":result"):
        pipe.expire(key, max(1, round(keep_seconds)))
    pipe.delete(_key(job_id) + ":alive")
    pipe.zrem(WAITING, job_id)
    pipe.zrem(ACTIVE, job_id)
    pipe.zadd(ENDED, {job_id: now})
    pipe.hincrby(ENDED_COUNTS, state, 1)


# --- in the worker -------------------------------------------------------------------------------


def run_job(job_id: str, fn: JobFunction, inputs: Any, keep_seconds: float) -> None:
    """RQ's job function, in a `playground worker`: runs `fn(inputs, reporter)` and records
    its state, progress and result under the job's keys."""
    redis = get_current_job().connection
    if not start(redis, job_id, keep_seconds):
        return
    with _heartbeat(redis, job_id):
        outcome = run_job_function(
            job_id,
            fn,
            inputs,
            _Reporter(redis, job_id),
            stopping=lambda: redis.hget(_key(job_id), "stopping") == b"1",
        )
    pipe = redis.pipeline()
    if outcome.result is not None:
        pipe.set(_key(job_id) + ":result", pickle.dumps(outcome.result))
    _finish(pipe, job_id, outcome.state, outcome.error, keep_seconds)
    pipe.execute()
    _announce(redis, job_id, keep_seconds)
    if outcome.failure is not None:
        raise outcome.failure  # RQ records it among its failed jobs, with the traceback


def start(redis: Redis, job_id: str, keep_seconds: float) -> bool:
    """Marks a queued job running (False: it was stopped while it waited), and says so."""

    def start_in(pipe) -> bool:
        if _text(pipe.hget(_key(job_id), "state")) != "queued":
            return False
        pipe.multi()
        pipe.hset(_key(job_id), mapping={"state": "running", "started_at": time.time()})
        pipe.set(_key(job_id) + ":alive", 1, ex=HEARTBEAT_TTL_SECONDS)
        pipe.zrem(WAITING, job_id)
        return True

    if not redis.transaction(start_in, _key(job_id), value_from_callable=True):
        return False
    _announce(redis, job_id, keep_seconds)
    redis.publish(QUEUE_CHANNEL, job_id)
    return True


@contextlib.contextmanager
def _heartbeat(redis: Redis, job_id: str):
    """Renews the job's `…:alive` key from a thread while the job runs."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(*UNREACHABLE):
                redis.set(_key(job_id) + ":alive", 1, ex=HEARTBEAT_TTL_SECONDS)

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


class _Reporter:
    """`app.jobs.Reporter` of one job in a worker: progress into its hash, messages on its
    channel, pause and stop read from its hash."""

    def __init__(self, redis: Redis, job_id: str):
        self._redis, self._job_id = redis, job_id

    def update(self, **fields: Any) -> None:
        self._redis.hset(_key(self._job_id) + ":progress", mapping=_encode(fields))

    def emit(self, message: Mapping[str, Any]) -> None:
        self._redis.publish(_key(self._job_id), json.dumps({"message": message}))

    def checkpoint(self) -> None:
        while True:
            paused, stopping = self._redis.hmget(_key(self._job_id), "paused", "stopping")
            if stopping == b"1":
                raise JobStopped
            if paused != b"1":
                return
            time.sleep(PAUSE_POLL_SECONDS)


def work(settings: Settings, burst: bool = False) -> None:
    """Runs jobs from the playground's queue until stopped (Ctrl-C or SIGTERM: the running job
    finishes first); `burst`: until the queue is empty."""
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=CONNECT_SECONDS)
    redis.ping()
    SimpleWorker([Queue(QUEUE, connection=redis)], connection=redis).work(burst=burst)
