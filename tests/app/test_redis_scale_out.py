"""Scale-out on Redis, against real redis-server processes: the broker's pub/sub and keys, its
fall-back to this process when Redis is unreachable or killed (and its return), and two
`playground serve` processes with one `playground worker` sharing a CNN training job."""

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from contextlib import contextmanager

import pytest
import redis as redis_client
from rq.job import Job
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from app import cli
from app.bench.server import free_port
from app.broker import SUBSCRIBER_BACKLOG, MemoryBroker, make_broker
from app.jobs import JobStatus, QueueFull, TooManyJobs, make_jobs
from app.jobs.local import LocalJobs
from app.jobs.redis_queue import WORKER_GONE, RedisJobs, start, work
from app.redis_broker import RedisBroker
from app.rooms.follow import CLOSE_ROOM_CLOSED
from app.settings import Settings
from tests.app.cnn_jobs import tiny_job

WAIT = 10.0  # seconds a test waits for something that should happen at once


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def received(messages, until: bytes) -> list[bytes]:
    got = []
    async for data in messages:
        got.append(data)
        if data == until:
            return got


async def _copy(messages, into: asyncio.Queue) -> None:
    async for data in messages:
        into.put_nowait(data)


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "app.redis_broker"]


# --- the broker ----------------------------------------------------------------------------------


def test_memory_broker_without_a_redis_url():
    broker = run(make_broker(Settings(redis_url=None)))
    assert isinstance(broker, MemoryBroker)


def test_messages_and_keys_between_two_brokers(shared_redis):
    """Two brokers on one Redis are two server processes: what one publishes or puts, the other
    receives or gets; a key is gone after its time to live."""
    channel, key = uuid.uuid4().hex, uuid.uuid4().hex

    async def scenario():
        one = await make_broker(Settings(redis_url=shared_redis.url))
        other = await make_broker(Settings(redis_url=shared_redis.url))
        assert isinstance(one, RedisBroker) and not one.away
        async with other.subscribe(channel) as messages:
            await one.publish(channel, b"frame 1")
            await one.publish(channel, b"frame 2")
            assert await received(messages, b"frame 2") == [b"frame 1", b"frame 2"]
        await one.put(key, b"room", ttl=30)
        assert await other.get(key) == b"room"
        ttl_ms = redis_client.Redis.from_url(shared_redis.url).pttl(key)
        assert 0 < ttl_ms <= 30_000
        await one.put(key, b"short", ttl=0.05)
        deadline = time.monotonic() + WAIT
        while await other.get(key) is not None:
            assert time.monotonic() < deadline, "the key outlived its time to live"
            await asyncio.sleep(0.02)
        await one.put(key, b"room", ttl=30)
        await other.delete(key)
        assert await one.get(key) is None
        await one.close()
        await other.close()

    run(scenario())


def test_a_slow_subscriber_loses_the_oldest_and_never_holds_the_publisher(shared_redis):
    channel = uuid.uuid4().hex

    async def scenario():
        broker = await make_broker(Settings(redis_url=shared_redis.url))
        async with broker.subscribe(channel) as messages:
            for i in range(500):  # nobody reads meanwhile
                await broker.publish(channel, b"%d" % i)
            await broker.publish(channel, b"end")
            got = await received(messages, b"end")
        await broker.close()
        return got

    got = run(scenario())
    numbers = [int(x) for x in got[:-1]]
    assert len(got) < 100 and numbers == sorted(numbers) and numbers[-1] == 499
    assert len(got) >= SUBSCRIBER_BACKLOG


def test_unreachable_redis_at_start_degrades_to_this_process(caplog):
    """A URL where no Redis listens: one warning, and rooms work inside the process."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    channel = "room"

    async def scenario():
        broker = await make_broker(Settings(redis_url=url))
        assert isinstance(broker, RedisBroker) and broker.away
        async with broker.subscribe(channel) as messages:
            await broker.publish(channel, b"a")
            await broker.publish(channel, b"b")
            assert await received(messages, b"b") == [b"a", b"b"]
        await broker.put("k", b"v", ttl=30)
        assert await broker.get("k") == b"v"
        await broker.close()

    with caplog.at_level(logging.WARNING, logger="app.redis_broker"):
        run(scenario())
    assert len(warnings(caplog)) == 1 and url in warnings(caplog)[0]
    assert "cannot be reached" in warnings(caplog)[0]


def test_redis_killed_mid_lecture_then_back(redis, caplog):
    """Redis dies while a room runs: the process goes on alone (one warning; its keys kept), and
    once Redis is back, messages cross between processes again."""
    channel, key = "room:frames", "room:state"

    async def until_received(broker, got: asyncio.Queue, data: bytes) -> None:
        """Publishes `data` until the subscriber has it (the first after a switch may be lost)."""
        deadline = time.monotonic() + WAIT
        while True:
            await broker.publish(channel, data)
            try:
                async with asyncio.timeout(0.2):
                    while await got.get() != data:
                        pass
                return
            except TimeoutError:
                assert time.monotonic() < deadline, f"{data!r} never arrived"

    async def scenario():
        broker = RedisBroker(redis.url, retry_seconds=0.1)
        other = RedisBroker(redis.url, retry_seconds=0.1)
        await broker.connect()
        await other.connect()
        await broker.put(key, b"epoch 3", ttl=60)
        got: asyncio.Queue = asyncio.Queue()
        async with broker.subscribe(channel) as messages:
            reader = asyncio.create_task(_copy(messages, got))
            await until_received(other, got, b"through redis")
            redis.kill()
            await until_received(broker, got, b"in process")
            assert broker.away
            assert await broker.get(key) == b"epoch 3"
            redis.start()  # the same port
            deadline = time.monotonic() + WAIT
            while broker.away or other.away:
                assert time.monotonic() < deadline, "the broker did not find Redis again"
                await other.publish(channel, b"probe")  # `other` learns Redis was away too
                await asyncio.sleep(0.05)
            await until_received(other, got, b"through redis again")
            reader.cancel()
        await broker.close()
        await other.close()

    with caplog.at_level(logging.WARNING, logger="app.redis_broker"):
        run(scenario())
    gone = [m for m in warnings(caplog) if "cannot be reached" in m]
    back = [m for m in warnings(caplog) if "answers again" in m]
    assert 1 <= len(gone) == len(back)  # one each time a broker lost and found Redis


# --- the job queue's choice ----------------------------------------------------------------------


def test_jobs_run_in_process_when_redis_is_unreachable(caplog):
    url = f"redis://127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.WARNING, logger="app.jobs"):
        jobs = make_jobs(Settings(redis_url=url))
    assert isinstance(jobs, LocalJobs)
    assert any("CNN jobs run in this process" in r.getMessage() for r in caplog.records)


def test_jobs_go_through_redis_when_it_answers(shared_redis):
    assert isinstance(make_jobs(Settings(redis_url=shared_redis.url)), RedisJobs)


def test_a_worker_needs_a_redis_url(monkeypatch):
    monkeypatch.delenv("PLAYGROUND_REDIS_URL", raising=False)
    with pytest.raises(SystemExit, match="set PLAYGROUND_REDIS_URL"):
        cli.main(["worker"])


# --- RedisJobs with an RQ worker in this process ------------------------------------------------


def note_and_double(number: int, reporter) -> int:
    """A job: reports, emits, passes a checkpoint; a negative number fails it."""
    reporter.update(seen=number)
    reporter.emit({"type": "note", "number": number})
    reporter.checkpoint()
    if number < 0:
        raise ValueError(f"number must be at least 0. Received: {number}")
    return 2 * number


def work_off_the_queue(settings: Settings) -> None:
    """Runs every queued job here and now (RQ's burst mode), keeping pytest's signal handlers."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        work(settings, burst=True)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def follow(jobs: RedisJobs, job_id: str) -> tuple[threading.Thread, list]:
    """Follows the job's stream on an event loop of its own thread."""
    items: list = []

    async def collect():
        async for item in jobs.stream(job_id):
            items.append(item)

    thread = threading.Thread(target=lambda: run(collect()))
    thread.start()
    deadline = time.monotonic() + WAIT
    while not items:  # subscribed and the first status sent
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return thread, items


def test_redis_jobs_limits_queue_and_results(shared_redis):
    settings = Settings(redis_url=shared_redis.url, jobs_per_user=2, job_queue=3)
    jobs = RedisJobs(settings)
    ann, bob, cy = (uuid.uuid4().hex for _ in range(3))
    first = jobs.submit(note_and_double, 5, owner=ann, progress={"number": 5})
    second = jobs.submit(note_and_double, 6, owner=ann)
    with pytest.raises(TooManyJobs, match="most one user may have \\(2\\)"):
        jobs.submit(note_and_double, 7, owner=ann)
    failing = jobs.submit(note_and_double, -1, owner=bob)
    with pytest.raises(QueueFull, match="3 jobs are waiting"):
        jobs.submit(note_and_double, 8, owner=cy)
    assert [jobs.status(i).queue_position for i in (first, second, failing)] == [1, 2, 3]
    assert jobs.status(first).progress == {"number": 5}

    stopped = jobs.stop(second)
    assert stopped.state == "stopped" and stopped.finished_at is not None
    assert jobs.status(failing).queue_position == 2
    assert jobs.pause(first).paused and not jobs.resume(first).paused
    assert [s.id for s in jobs.owned(ann)] == [second, first]  # newest first

    thread, items = follow(jobs, first)
    work_off_the_queue(settings)
    thread.join(WAIT)
    states = [i.state for i in items if isinstance(i, JobStatus)]
    assert states[0] == "queued" and "running" in states and states[-1] == "done"
    assert {"type": "note", "number": 5} in items

    done = jobs.status(first)
    assert done.progress == {"number": 5, "seen": 5} and jobs.result(first) == 10
    assert done.expires_at == done.finished_at + settings.job_expire_seconds
    failed = jobs.status(failing)
    assert failed.state == "failed" and failed.error == "number must be at least 0. Received: -1"
    assert jobs.result(failing) is None and jobs.status(second).state == "stopped"
    assert jobs.status(uuid.uuid4().hex) is None


def test_a_job_whose_worker_died_is_failed(shared_redis):
    """A worker killed mid-job stops renewing the job's heartbeat: the job is failed, and its
    owner may train again."""
    settings = Settings(redis_url=shared_redis.url, jobs_per_user=1)
    jobs, owner = RedisJobs(settings), uuid.uuid4().hex
    job_id = jobs.submit(note_and_double, 1, owner=owner)
    connection = redis_client.Redis.from_url(shared_redis.url)
    assert start(connection, job_id, settings.job_expire_seconds)
    assert jobs.status(job_id).state == "running"
    with pytest.raises(TooManyJobs):
        jobs.submit(note_and_double, 2, owner=owner)
    connection.delete(f"playground:job:{job_id}:alive")  # what the heartbeat's lapse does
    failed = jobs.status(job_id)
    assert failed.state == "failed" and failed.error == WORKER_GONE
    again = jobs.submit(note_and_double, 2, owner=owner)
    assert Job.fetch(again, connection=connection).get_status() == "queued"  # not held by RQ
    jobs.stop(again)


# --- two server processes and a worker -----------------------------------------------------------

# A tiny CNN on the built-in drawn shapes: one epoch takes a second or two.
TINY_JOB = tiny_job("shapes")


@contextmanager
def playground(tmp_path, name: str, *args: str, redis_url: str):
    """`playground <args>` in a subprocess with PLAYGROUND_REDIS_URL; its output in a file that
    a failing test shows."""
    log = tmp_path / f"{name}.log"
    env = {
        **os.environ,
        "PLAYGROUND_REDIS_URL": redis_url,
        "PLAYGROUND_USE_XLA": "false",  # the labs' warm-up compiles would only slow the job
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args], env=env, stdout=out, stderr=out
        )
    try:
        yield proc, log
    finally:
        proc.kill()  # its clean stop is not what is tested (a server's waits for its compiles)
        proc.wait()


def http(method: str, url: str, body=None, user: str | None = None):
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **({"X-Client-Id": user} if user else {})},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, answer.read()


def wait_until_up(base: str, proc, log) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            http("GET", f"{base}/healthz")
            return
        except OSError:
            assert proc.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, (
                f"the server did not start:\n{log.read_text()[-3000:]}"
            )
            time.sleep(0.2)


def test_two_servers_and_a_worker_share_a_training_job(redis, tmp_path):
    """Submitted to server A, trained by the worker, followed live through server B's socket;
    its status, list and result are the same from either server. A room too."""
    port_a, port_b = free_port(), free_port()
    a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    user = uuid.uuid4().hex
    with (
        playground(tmp_path, "a", "serve", "--port", str(port_a), redis_url=redis.url) as (pa, la),
        playground(tmp_path, "b", "serve", "--port", str(port_b), redis_url=redis.url) as (pb, lb),
        playground(tmp_path, "worker", "worker", redis_url=redis.url) as (worker, lw),
    ):
        wait_until_up(a, pa, la)
        wait_until_up(b, pb, lb)
        code, body = http("POST", f"{a}/api/cnn/jobs", TINY_JOB, user)
        assert code == 201
        job_id = json.loads(body)["id"]

        kinds, statuses = [], []
        with connect(f"ws://127.0.0.1:{port_b}/ws/cnn/{job_id}", open_timeout=30) as socket:
            for text in socket:
                message = json.loads(text)
                kinds.append(message["type"])
                if message["type"] == "status":
                    statuses.append(message["state"])
        assert worker.poll() is None, lw.read_text()[-3000:]
        assert statuses[0] in ("queued", "running") and statuses[-1] == "done", (
            statuses, lw.read_text()[-3000:],
        )  # fmt: skip
        assert {"start", "batch", "epoch"} <= set(kinds)
        assert kinds.index("start") < kinds.index("epoch") < len(kinds) - 1

        for base in (a, b):
            _, body = http("GET", f"{base}/api/cnn/jobs/{job_id}")
            seen = json.loads(body)
            assert seen["state"] == "done" and seen["has_model"] and len(seen["history"]) == 1
            _, body = http("GET", f"{base}/api/cnn/jobs", user=user)
            assert [j["id"] for j in json.loads(body)] == [job_id]
        code, script = http("GET", f"{b}/api/cnn/jobs/{job_id}/train.py")
        assert code == 200 and b"model.fit" in script

        # A room opened on A is followed from B: its record is a Redis key, and the closing A
        # publishes reaches B's student through Redis pub/sub.
        _, body = http("POST", f"{a}/api/rooms", {"lab": "mlp"})
        room = json.loads(body)
        with connect(f"ws://127.0.0.1:{port_b}/ws/rooms/{room['code']}") as student:
            assert json.loads(student.recv(timeout=WAIT))["event"] == "welcome"
            request = urllib.request.Request(
                f"{a}/api/rooms/{room['code']}",
                method="DELETE",
                headers={"Authorization": f"Bearer {room['token']}"},
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 204
            events = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    events.append(json.loads(student.recv(timeout=WAIT)).get("event"))
        assert events[-1] == "closed" and closed.value.rcvd.code == CLOSE_ROOM_CLOSED
