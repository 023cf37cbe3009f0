"""`playground serve --workers 2`, a real multi-process server: each worker has its own listening
socket (SO_REUSEPORT), connections land on both, and SIGTERM closes every socket of every worker
with 1001, not uvicorn's 1012, and the supervisor exits 0."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.bench.server import accepted, free_port, workers

LAB = "neurons"  # a small live session: the test is about the sockets, not the training
SOCKETS = 40


def _listening_inodes(worker: psutil.Process, port: int) -> set[str]:
    """The socket inodes the worker listens on at `port` (a socket shared by several processes
    shows the same inode in each)."""
    connections = worker.net_connections("tcp")
    fds = {c.fd for c in connections if c.status == "LISTEN" and c.laddr.port == port}
    return {os.readlink(f"/proc/{worker.pid}/fd/{fd}") for fd in fds}


async def _closed_code(ws) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await ws.recv()
    return closed.value.rcvd.code


def _serve_two_workers(port: int, **env: str) -> subprocess.Popen:
    """`playground serve --workers 2` on `port`, with PLAYGROUND_* `env` besides the tests' own."""
    env = {
        **os.environ,
        "PLAYGROUND_USE_XLA": "false",
        "PLAYGROUND_WARM_UP": "false",  # no start-up compiles: the tests open sockets, no more
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2",
         "--log-level", "warning"],
        env=env, cwd=Path(__file__).parents[2], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _listening_workers(process: subprocess.Popen, port: int) -> list[psutil.Process]:
    """Waits until both workers listen, each on its own socket, and answer; returns them."""
    supervisor = psutil.Process(process.pid)
    for _ in range(900):
        up = workers(supervisor)
        if len(up) == 2 and all(_listening_inodes(w, port) for w in up):
            break
        assert process.poll() is None, "the server exited"
        time.sleep(0.2)
    else:
        raise AssertionError("the workers did not start listening")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30):
        return up


def test_workers_listen_apart_share_connections_and_close_with_1001() -> None:
    port = free_port()
    process = _serve_two_workers(port)
    try:
        up = _listening_workers(process, port)
        first, second = (_listening_inodes(w, port) for w in up)
        assert first.isdisjoint(second), "the workers share one listening socket"

        async def scenario() -> tuple[list[int], list[int]]:
            sockets = [
                await connect(f"ws://127.0.0.1:{port}/ws/{LAB}", open_timeout=60)
                for _ in range(SOCKETS)
            ]
            for ws in sockets:
                await ws.recv()  # its session is open
            shares = [accepted(w, port) for w in up]
            process.send_signal(signal.SIGTERM)
            codes = await asyncio.gather(*(_closed_code(ws) for ws in sockets))
            return shares, codes

        shares, codes = asyncio.run(scenario())
        assert sum(shares) == SOCKETS
        # The kernel's hash spreads them; 8 of 40 or fewer on one worker has odds of 1 in 5,000.
        assert min(shares) > 8, shares
        assert set(codes) == {1001}
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.timeout(600)  # two workers start afresh (TensorFlow's import): a loaded CI is slow
def test_a_worker_past_its_memory_is_replaced_and_the_server_answers_throughout() -> None:
    """A worker whose memory passed PLAYGROUND_RECYCLE_RSS_MIB (here: any) is replaced: the new
    one starts first, then the old one drains (no new connections; its open socket closed with
    1001 after the drain time) and exits; every request meanwhile is answered, but for one that
    may be reset as each listener closes (Linux resets a closing SO_REUSEPORT socket's queued
    connections unless net.ipv4.tcp_migrate_req is 1)."""
    port = free_port()
    process = _serve_two_workers(
        port, PLAYGROUND_RECYCLE_RSS_MIB="1", PLAYGROUND_RECYCLE_DRAIN_SECONDS="2"
    )
    try:
        first = {w.pid for w in _listening_workers(process, port)}

        async def scenario() -> tuple[int, int]:
            held = await connect(f"ws://127.0.0.1:{port}/ws/{LAB}", open_timeout=60)
            await held.recv()  # its session is open, on one worker or the other
            closed = asyncio.create_task(_closed_code(held))
            replaced, resets = set(), 0
            deadline = time.monotonic() + 400
            while time.monotonic() < deadline:  # both first workers replaced, requests answered
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/healthz", timeout=30
                    ) as r:
                        assert r.status == 200
                except ConnectionResetError:
                    resets += 1
                replaced = first - {w.pid for w in workers(psutil.Process(process.pid))}
                if replaced == first and closed.done():
                    break
                await asyncio.sleep(0.1)
            assert replaced == first, "the workers were not replaced"
            return await closed, resets

        code, resets = asyncio.run(scenario())
        assert code == 1001  # its worker drained, then closed it
        assert resets <= len(first)
        assert process.poll() is None  # the supervisor serves on with the new workers
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
