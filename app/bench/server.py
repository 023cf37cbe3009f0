"""Starts the real server (`playground serve`) in a subprocess on a free loopback port."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
from prometheus_client.parser import text_string_to_metric_families

from app.bench import BenchContext


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workers(server: psutil.Process) -> list[psutil.Process]:
    """The server processes of `playground serve --workers N` (its supervisor's children, without
    multiprocessing's resource tracker)."""
    return [p for p in server.children() if "spawn_main" in " ".join(_cmdline(p))]


def _cmdline(process: psutil.Process) -> list[str]:
    # A worker that just exited is a zombie until the supervisor reaps it: not a server.
    try:
        return process.cmdline()
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return []


def accepted(worker: psutil.Process, port: int) -> int:
    """Connections the process holds open on its listening `port`."""
    return sum(
        c.status == "ESTABLISHED" and c.laddr.port == port for c in worker.net_connections("tcp")
    )


def wait_until_warm(ctx: BenchContext, limit: float = 300.0) -> float:
    """Waits until the server's background compiles are done; seconds since it was launched."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{ctx.base}/healthz", timeout=5) as answer:
            if json.load(answer)["compiling"] == 0:
                break
        time.sleep(0.2)
    return time.monotonic() - ctx.started


def traces_held(ctx: BenchContext) -> int:
    """The compiled calls the server holds in its labs' per-shape caches (its /metrics)."""
    with urllib.request.urlopen(f"{ctx.base}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return sum(
        round(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "playground_traces"
    )


@contextmanager
def running_server(
    quick: bool = False, workers: int = 1, clients_procs: int = 2
) -> Iterator[BenchContext]:
    """Yields the context every lab's bench measures against (`workers` server processes);
    stops the server afterwards."""
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--workers",
            str(workers),
        ],  # fmt: skip
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.05)
        yield BenchContext(base, proc.pid, started, quick, clients_procs)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
