"""Graceful shutdown of a real `playground serve` process: SIGTERM closes every socket with 1001,
stops the job in flight and marks it stopped, and the process exits 0."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.labs import all_labs
from tests.app.cnn_jobs import tiny_job

LAB = next(lab.slug for lab in all_labs() if lab.session is not None)
# A CNN job that runs for minutes if nobody stops it.
LONG_JOB = tiny_job(epochs=50)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", "X-Client-Id": "t"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.load(answer)


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen, str]]:
    port = _free_port()
    env = {**os.environ, "PLAYGROUND_USE_XLA": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--log-format", "json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                _get(f"http://{base}/healthz")
                break
            except OSError:
                assert process.poll() is None, process.stderr.read()
                time.sleep(0.2)
        else:
            raise AssertionError("the server did not start")
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def _closed_code(ws) -> int:
    """Reads until the server closes the socket; the close code it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await ws.recv()
    return closed.value.rcvd.code


def test_sigterm_closes_sockets_with_1001_stops_jobs_and_exits_0(server) -> None:
    process, base = server
    job = _post(f"http://{base}/api/cnn/jobs", LONG_JOB)

    async def scenario() -> list[int]:
        async with connect(f"ws://{base}/ws/cnn/{job['id']}") as follower:
            while json.loads(await follower.recv())["type"] != "batch":
                pass  # the job is training: in flight
            async with connect(f"ws://{base}/ws/{LAB}") as live:
                await live.recv()  # the session's first state: it is open
                process.send_signal(signal.SIGTERM)
                return await asyncio.gather(_closed_code(live), _closed_code(follower))

    assert asyncio.run(scenario()) == [1001, 1001]
    # A bound against a hang, not a target: the stop waits for the job's next checkpoint and for
    # a start-up compile in progress, which a busy machine makes slow.
    assert process.wait(timeout=120) == 0
    events = [json.loads(line) for line in process.stderr if line.startswith("{")]
    named = {(e.get("event"), e.get("state") or e.get("lab")) for e in events}
    assert ("session_open", LAB) in named and ("session_close", LAB) in named
    assert ("job_state", "running") in named and ("job_state", "stopped") in named


def test_ctrl_c_stops_the_server_as_cleanly_and_quietly(server) -> None:
    """SIGINT (Ctrl-C in `make run`'s terminal): sockets closed with 1001, exit 0, no traceback."""
    process, base = server

    async def scenario() -> int:
        async with connect(f"ws://{base}/ws/{LAB}") as live:
            await live.recv()
            process.send_signal(signal.SIGINT)
            return await _closed_code(live)

    assert asyncio.run(scenario()) == 1001
    assert process.wait(timeout=120) == 0
    assert "Traceback" not in process.stderr.read()
