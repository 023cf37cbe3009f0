"""Fixtures shared by the whole suite: settings, a TestClient, and a real uvicorn server."""

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.cli import server_config
from app.main import create_app
from app.settings import Settings


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
    settings = Settings()
    with serving(create_app(settings), settings) as base:
        yield base
