"""What every live socket shares (app/live/): the checks at the edge, the cap, idle pause, the frame
rate, on the endpoint of every lab with a session, and the one route's refusal of other slugs."""

import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.labs import all_labs
from app.main import create_app
from app.settings import Settings
from tests.app.live_socket import Socket, close_code, strict_json

ENDPOINTS = [f"/ws/{lab.slug}" for lab in all_labs() if lab.session is not None]
NOT_LIVE = ["nope", *(lab.slug for lab in all_labs() if lab.session is None)]


@contextmanager
def app_socket(endpoint: str, **settings) -> Iterator[Socket]:
    """`endpoint` on an app of its own with `settings`."""
    with (
        TestClient(create_app(Settings(use_xla=False, **settings))) as c,
        c.websocket_connect(endpoint) as ws,
    ):
        yield Socket(ws)


@pytest.fixture(params=ENDPOINTS)
def sock(request, client: TestClient):
    with client.websocket_connect(request.param) as ws:
        s = Socket(ws)
        s.until(lambda m: m["type"] == "frame")
        yield s


def test_deep_nesting_within_the_cap_is_an_error(sock: Socket) -> None:
    sock.ws.send_text("[" * 30_000 + "]" * 30_000)
    assert sock.until(lambda m: m["type"] == "error")["message"]


def test_binary_message_is_refused(sock: Socket) -> None:
    sock.ws.send_bytes(b"\x00\x01")
    assert "Binary" in sock.until(lambda m: m["type"] == "error")["message"]


def test_oversized_message_closes_with_1009(sock: Socket) -> None:
    sock.ws.send_text(json.dumps({"type": "config", "x": "a" * 100_000}))
    assert close_code(sock) == 1009


def test_message_flood_closes_with_1008(sock: Socket) -> None:
    with pytest.raises(WebSocketDisconnect) as e:
        for _ in range(400):
            sock.send({"type": "pause"})
        sock.until(lambda m: False, limit=1000)
    assert e.value.code == 1008


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://testserver.evil"])
def test_foreign_origin_is_refused_before_accept(
    client: TestClient, endpoint: str, origin: str
) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as e,
        client.websocket_connect(endpoint, headers={"origin": origin}),
    ):
        pass
    assert e.value.code == 1008


@pytest.mark.parametrize("slug", NOT_LIVE)
def test_a_slug_without_a_live_session_is_refused_before_accept(
    client: TestClient, slug: str
) -> None:
    with pytest.raises(WebSocketDisconnect) as e, client.websocket_connect(f"/ws/{slug}"):
        pass
    assert e.value.code == 4404


@pytest.mark.parametrize(("first", "endpoint"), list(itertools.product(ENDPOINTS, repeat=2)))
def test_over_the_session_cap_is_told_and_closed_with_1013(first: str, endpoint: str) -> None:
    # One cap for the sessions of every lab together.
    with (
        TestClient(create_app(Settings(max_sessions=1, use_xla=False))) as c,
        c.websocket_connect(first),
        c.websocket_connect(endpoint) as second,
    ):
        error = strict_json(second.receive_text())
        assert error["type"] == "error" and "full" in error["message"]
        with pytest.raises(WebSocketDisconnect) as e:
            second.receive_text()
        assert e.value.code == 1013


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_tab_left_playing_is_paused_after_the_idle_limit(endpoint: str) -> None:
    with app_socket(endpoint, idle_pause_seconds=0.5) as s:
        # One step first: a fresh process's first call traces, for longer than the limit, and
        # the tab would be paused before it ever trained.
        s.send({"type": "step"})
        stepped = s.until(lambda m: m["type"] == "frame" and m["step"] > 0)["step"]
        s.send({"type": "play"})
        # A trained frame and the pause's error, in either order (a call slower than the limit,
        # on a loaded machine, sends its frame after the pause).
        trained, error = False, None
        while not (trained and error):
            m = s.next()
            trained |= m["type"] == "frame" and m["step"] > stepped
            error = error or (m if m["type"] == "error" else None)
        assert "without input" in error["message"]
        s.send({"type": "step"})  # the session still answers
        assert s.until(lambda m: m["type"] == "state")["running"] is False


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_lab_streams_at_the_one_frame_rate(endpoint: str) -> None:
    with app_socket(endpoint, frame_rate=10) as s:
        assert s.next()["limits"]["frame_rate"] == 10
        s.send({"type": "play"})
        s.until(lambda m: m["type"] == "frame" and m["step"] > 0)
        started, frames = time.monotonic(), 0
        while time.monotonic() - started < 1.5:
            frames += s.next()["type"] == "frame"
        assert 2 <= frames <= 10 * 1.5 + 2
