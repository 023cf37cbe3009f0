"""Fixtures shared by the whole suite: settings, a TestClient, and a real uvicorn server."""

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A test's app builds what its requests need: every lab's start-up compiles would only compete for
# the CPU and hold up its stop (a compile in progress is joined). `live_server` warms up like a
# real server (its pages' first visits), and so does an app that passes `warm_up=True`.
os.environ.setdefault("PLAYGROUND_WARM_UP", "false")

import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.cli import server_config
from app.main import create_app
from app.settings import Settings

# `make test` runs the suite on two xdist workers: the tests of the live server and the browser (they
# share the session's server and Chromium) on one, the rest on the other. Each side runs in the
# order one process runs the whole suite, so no test meets an order it never met.
BROWSER_SIDE = ("tests/browser/", "tests/app/test_real_server.py")


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class TwoSides(LoadScopeScheduling):
        """Each side one work unit, its tests in collection order."""

        def _split_scope(self, nodeid: str) -> str:
            return "browser" if nodeid.startswith(BROWSER_SIDE) else "in_process"

    return TwoSides(config, log)


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def client(settings: Settings):
    with TestClient(create_app(settings)) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(app, settings: Settings) -> Iterator[str]:
    """`app` on a real uvicorn (the `playground serve` config) in a thread; yields its base URL."""
    port = _free_port()
    settings.port = port
    server = uvicorn.Server(server_config(app, settings, "warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server():
    settings = Settings(warm_up=True)
    with serving(create_app(settings), settings) as base:
        yield base
