"""The checks every live socket shares (app/live/channel.py), on each lab's endpoint."""

import json

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.main import create_app
from app.settings import Settings
from tests.app.live_socket import Socket, strict_json

ENDPOINTS = ["/ws/mlp", "/ws/neurons"]


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
    with pytest.raises(WebSocketDisconnect) as e:
        sock.until(lambda m: False)
    assert e.value.code == 1009


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


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_over_the_session_cap_is_told_and_closed_with_1013(endpoint: str) -> None:
    with (
        TestClient(create_app(Settings(max_sessions=1, use_xla=False))) as c,
        c.websocket_connect(endpoint),
        c.websocket_connect(endpoint) as second,
    ):
        error = strict_json(second.receive_text())
        assert error["type"] == "error" and "full" in error["message"]
        with pytest.raises(WebSocketDisconnect) as e:
            second.receive_text()
        assert e.value.code == 1013
