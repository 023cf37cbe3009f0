"""Faults on a real server, each beside a well-behaved student whose frames keep coming and whose
config changes keep reaching the page: a client that stops reading, one that vanishes without
closing, one that floods, one that sends too much, a training job that raises, a broken model file.

Liveness only (generous timeouts, no timed assertions): the figures are `playground bench --load`'s.
"""

import json
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.uri import parse_uri

from app.bench.load import Frames
from app.main import create_app
from app.settings import Settings
from models import cnn
from tests.app.json_api import error_text
from tests.conftest import serving

# The reaping server pings every second and gives up after 3 more (a busy test process may be slow
# to answer for its well-behaved client, never that slow).
PING_INTERVAL, PING_TIMEOUT = 1.0, 3.0


def server_with(**overrides) -> Iterator[tuple[str, object]]:
    """A real server (uvicorn, the `serve` config); yields its base URL and its app, whose live
    runtime the tests look into."""
    settings = Settings(use_xla=False, **overrides)
    app = create_app(settings)
    with serving(app, settings) as base:
        yield base, app


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, object]]:
    yield from server_with()


@pytest.fixture(scope="module")
def reaping_server() -> Iterator[tuple[str, object]]:
    yield from server_with(ws_ping_interval=PING_INTERVAL, ws_ping_timeout=PING_TIMEOUT)


def ws_url(base: str, slug: str) -> str:
    return base.replace("http://", "ws://") + f"/ws/{slug}"


def wait_until(predicate, timeout: float = 30, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} never held"
        time.sleep(0.05)


class Student:
    """A well-behaved client of the MLP lab: plays, reads every message, changes its config."""

    def __init__(self, ws):
        self.ws = ws
        self.version = 0
        self.frames = Frames()
        self.send({"type": "play"})

    def send(self, message: dict) -> None:
        self.ws.send(json.dumps(message))

    def frame(self) -> tuple[int, int]:
        """The next frame's version and step."""
        while (frame := self.frames.of(self.ws.recv(timeout=30))) is None:
            pass
        return frame

    def is_live(self) -> None:
        """Frames keep coming, training goes on, and a config change reaches a frame."""
        first = self.frame()
        assert self.frame()[1] >= first[1]
        self.version += 1
        self.send({"type": "config", "learning_rate": 0.01 + 0.001 * self.version})
        while self.frame()[0] < self.version:
            pass


@contextmanager
def student(base: str) -> Iterator[Student]:
    # An unbounded queue: it reads (and answers pings) even while the test is not looking.
    with connect(ws_url(base, "mlp"), compression=None, open_timeout=30, max_queue=None) as ws:
        s = Student(ws)
        s.is_live()
        yield s


@contextmanager
def raw_socket(base: str, slug: str, receive_buffer: int = 4096) -> Iterator[tuple]:
    """A WebSocket on a bare TCP socket with a small receive buffer: the handshake is read, and
    after it nothing unless the test reads. Yields the socket and its sans-I/O protocol."""
    protocol = ClientProtocol(parse_uri(ws_url(base, slug)))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    sock.settimeout(30)
    try:
        protocol.send_request(protocol.connect())
        sock.sendall(b"".join(protocol.data_to_send()))
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(1)  # byte by byte: not one byte past the handshake
        protocol.receive_data(answer)
        assert protocol.handshake_exc is None, answer
        yield sock, protocol
    finally:
        sock.close()


def send_raw(sock: socket.socket, protocol: ClientProtocol, message: dict) -> None:
    protocol.send_text(json.dumps(message).encode())
    sock.sendall(b"".join(protocol.data_to_send()))


def new_session(app, before: set):
    wait_until(lambda: app.state.live.sessions - before, what="a new session")
    (session,) = app.state.live.sessions - before
    return session


@contextmanager
def playing_without_reading(base: str, app, slug: str) -> Iterator[object]:
    """A raw client that asks `slug` to play, then never reads; yields its server-side session."""
    before = set(app.state.live.sessions)
    with raw_socket(base, slug) as (sock, protocol):
        send_raw(sock, protocol, {"type": "play"})
        yield new_session(app, before)


def writer_stuck(session) -> bool:
    """A frame waits in the outbox all the time and is replaced by newer ones: none is sent."""
    seen = set()
    for _ in range(10):
        if session._frame is None:
            return False
        seen.add(id(session._frame))
        time.sleep(0.1)
    return len(seen) > 1


def test_a_client_that_stops_reading_gets_only_the_newest_frame_and_others_go_on(server) -> None:
    base, app = server
    with student(base) as healthy:
        with playing_without_reading(base, app, "mlp") as slow:
            # TCP's buffers fill, the socket's writer waits, the session trains on: its frames
            # replace each other in the outbox instead of piling up.
            wait_until(lambda: writer_stuck(slow), timeout=90, what="the writer blocked")
            step = slow.step
            healthy.is_live()
            wait_until(lambda: slow.step > step, what="the slow session training on")
        wait_until(lambda: slow.closed, what="its session closed")
        healthy.is_live()


def test_a_client_that_vanishes_without_closing_is_reaped_within_the_ping_timeout(
    reaping_server,
) -> None:
    base, app = reaping_server
    with student(base) as healthy:
        with playing_without_reading(base, app, "rnn") as gone:
            # It holds its TCP connection but answers no ping: the server gives up on it.
            wait_until(lambda: gone.closed, what="the silent client reaped")
            assert gone not in app.state.live.sessions
            healthy.is_live()
        healthy.is_live()


def test_a_flooding_client_is_closed_with_1008(server) -> None:
    base, _ = server
    with student(base) as healthy:
        with (
            connect(ws_url(base, "mlp"), compression=None) as flood,
            pytest.raises(ConnectionClosed) as closed,
        ):
            for i in range(1000):  # the burst is 120, the rate 60/s
                flood.send(json.dumps({"type": "config", "learning_rate": 0.01 + i * 1e-6}))
            while True:
                flood.recv(timeout=30)
        assert closed.value.rcvd.code == 1008
        healthy.is_live()
        with student(base) as after:  # the flooder's address is not banned: it may come back
            after.is_live()


def test_an_oversized_message_is_closed_with_1009_and_compression_is_not_offered(server) -> None:
    base, _ = server
    with student(base) as healthy:
        with connect(ws_url(base, "rnn")) as bomb:  # the client offers permessage-deflate
            assert bomb.protocol.extensions == []  # and is not granted it
            bomb.send("[" * (Settings().ws_max_message_bytes + 1))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    bomb.recv(timeout=30)
        assert closed.value.rcvd.code == 1009
        healthy.is_live()


# --- faults in the work behind the sockets --------------------------------------------------------

FAST_JOB = {
    "dataset": "colours",
    "model": "scratch",
    "image_size": 16,
    "blocks": [{"filters": 4, "kernel_size": 3}],
    "epochs": 1,
}


def finished(client: TestClient, job_id: str) -> dict:
    deadline = time.monotonic() + 60
    while (found := client.get(f"/api/cnn/jobs/{job_id}").json())["state"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, "the job never ended"
        time.sleep(0.05)
    return found


def test_a_training_job_that_raises_is_failed_with_its_error_and_the_next_one_trains(
    monkeypatch,
) -> None:
    train = cnn.train
    calls = []

    def fail_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("the allocator gave up")
        return train(*args, **kwargs)

    monkeypatch.setattr(cnn, "train", fail_once)
    with TestClient(create_app(Settings(use_xla=False))) as client:
        headers = {"X-Client-Id": uuid.uuid4().hex}
        first = client.post("/api/cnn/jobs", json=FAST_JOB, headers=headers).json()["id"]
        failed = finished(client, first)
        assert (failed["state"], failed["error"]) == (
            "failed",
            "MemoryError: the allocator gave up",
        )
        second = client.post("/api/cnn/jobs", json=FAST_JOB, headers=headers).json()["id"]
        assert finished(client, second)["state"] == "done"
        assert client.get("/healthz").status_code == 200


def test_a_corrupt_model_file_is_a_clear_503_and_the_server_stays_up(tmp_path) -> None:
    model = tmp_path / "dogs.keras"
    model.write_bytes(b"PK\x03\x04 not really a keras archive")
    settings = Settings(classifier=model, use_xla=False)
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        while "retry-after" in (answer := client.get("/api/dogs/model")).headers:
            assert time.monotonic() < deadline, "the model never finished loading"
            time.sleep(0.1)
        assert answer.status_code == 503
        assert str(model) in error_text(answer)
        assert client.get("/healthz").status_code == 200
        assert client.get("/labs/dogs").status_code == 200
