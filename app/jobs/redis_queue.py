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
worker's `checkpoint()` reads. A finished job's keys expire after `job_expire_seconds`.
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
    FINISHED,
    JobFunction,
    JobRefused,
    JobStatus,
    JobStopped,
    PausedByFlag,
    QueueFull,
    TooManyJobs,
    check_job_function,
)
from app.jobs.local import FOLLOWER_BACKLOG, _describe
from app.settings import Settings

log = logging.getLogger(__name__)

QUEUE = "playground"
WAITING = "playground:jobs:waiting"  # queued jobs by submission time: their queue positions
ACTIVE = "playground:jobs:active"  # queued or running, by submission time
ENDED = "playground:jobs:finished"  # by end time: the oldest is forgotten first
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
_RESYNC = object()  # in a follower's queue: its backlog was dropped, send a fresh status


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

    # --- lifespan: the workers are other processes -----------------------------------------------

    def start(self) -> None:
        pass

    def shutdown(self) -> None:
        self._redis.close()

    # --- the interface -------------------------------------------------------------------------

    def submit(
        self, fn: JobFunction, inputs: Any, *, owner: str, progress: Mapping[str, Any] | None = None
    ) -> str:
        check_job_function(fn)
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
        except UNREACHABLE as exc:
            raise JobRefused(f"The job queue (Redis at {self.url}) cannot be reached.") from exc
        return job_id

    def status(self, job_id: str) -> JobStatus | None:
        return self._statuses([job_id])[0]

    def owned(self, owner: str) -> list[JobStatus]:
        ids = [i.decode() for i in self._redis.zrevrange(_owner_key(owner), 0, -1)]
        statuses = self._statuses(ids)
        if gone := [i for i, found in zip(ids, statuses, strict=True) if found is None]:
            self._redis.zrem(_owner_key(owner), *gone)
        return [found for found in statuses if found is not None]

    def result(self, job_id: str) -> Any:
        data = self._redis.get(_key(job_id) + ":result")
        return None if data is None else pickle.loads(data)

    def stop(self, job_id: str) -> JobStatus | None:
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
        return self.status(job_id)

    async def stream(self, job_id: str) -> AsyncIterator[JobStatus | Mapping[str, Any]]:
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
            last = await asyncio.to_thread(self.status, job_id)
            if last is None:
                return
            yield last
            while not last.finished:
                item = await items.get()
                if isinstance(item, JobStatus):
                    found = item
                elif isinstance(item, Mapping):
                    yield item
                    continue
                elif item == QUEUE_CHANNEL and last.state != "queued":
                    continue
                else:  # the queue moved, or this follower fell behind
                    found = await asyncio.to_thread(self.status, job_id)
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
        states = [
            found.state
            for found in self._statuses(
                [i.decode() for i in self._redis.zrange(_owner_key(owner), 0, -1)]
            )
            if found is not None
        ]
        mine = sum(state not in FINISHED for state in states)
        if mine >= s.jobs_per_user:
            raise TooManyJobs(
                f"You have {mine} jobs queued or running, the most one user may have "
                f"({s.jobs_per_user}). Wait for one to finish, or stop one."
            )
        waiting = self._redis.zcard(WAITING)
        if waiting >= s.job_queue:
            raise QueueFull(
                f"{waiting} jobs are waiting, as many as the queue holds. Try again in a minute."
            )
        kept = self._redis.zcard(ACTIVE) + self._redis.zcard(ENDED)
        if kept >= s.jobs_kept and not self._forget_oldest_finished():
            raise QueueFull(
                f"{kept} jobs are queued or running, as many as the server keeps. "
                "Try again in a minute."
            )

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
                found.append(self.status(job_id))
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
        found = self.status(job_id)
        if found is None or found.finished or found.paused == paused:
            return found
        self._redis.hset(_key(job_id), "paused", int(paused))
        return _announce(self._redis, job_id, self.settings.job_expire_seconds)


async def _read(pubsub, items: asyncio.Queue) -> None:
    """Moves a stream's Redis messages into its queue: a message as a mapping, a new status as a
    `JobStatus`, a change of the queue as `QUEUE_CHANNEL`. A follower that falls
    `FOLLOWER_BACKLOG` behind loses its backlog and is sent a fresh status."""
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        if message["channel"].decode() == QUEUE_CHANNEL:
            item = QUEUE_CHANNEL
        else:
            data = json.loads(message["data"])
            item = JobStatus(**data["status"]) if "status" in data else data["message"]
        if items.qsize() >= FOLLOWER_BACKLOG:
            while not items.empty():
                items.get_nowait()
            item = _RESYNC
        items.put_nowait(item)


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


# --- in the worker -------------------------------------------------------------------------------


def run_job(job_id: str, fn: JobFunction, inputs: Any, keep_seconds: float) -> None:
    """RQ's job function, in a `playground worker`: runs `fn(inputs, reporter)` and records
    its state, progress and result under the job's keys."""
    redis = get_current_job().connection
    if not start(redis, job_id, keep_seconds):
        return
    failure = None
    try:
        with _heartbeat(redis, job_id):
            result = fn(inputs, _Reporter(redis, job_id))
    except JobStopped:
        state, result, error = "stopped", None, None
    except Exception as exc:
        state, result, error, failure = "failed", None, _describe(exc), exc
    else:
        stopping = redis.hget(_key(job_id), "stopping") == b"1"
        state, error = ("stopped" if stopping else "done"), None
    pipe = redis.pipeline()
    if result is not None:
        pipe.set(_key(job_id) + ":result", pickle.dumps(result))
    _finish(pipe, job_id, state, error, keep_seconds)
    pipe.execute()
    _announce(redis, job_id, keep_seconds)
    if failure is not None:
        raise failure  # RQ records it among its failed jobs, with the traceback


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
