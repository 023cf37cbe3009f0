"""Limits that only the real uvicorn server enforces (TestClient bypasses it)."""

import json

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from app.protocol.mlp import decode_frame


def _ws(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws/mlp"


def test_oversized_message_closes_with_1009(live_server: str) -> None:
    with connect(_ws(live_server), compression=None) as ws:
        assert json.loads(ws.recv())["type"] == "state"
        ws.send(json.dumps({"type": "config", "noise": "x" * 200_000}))
        with pytest.raises(ConnectionClosed) as e:
            while True:
                ws.recv(timeout=10)
        assert e.value.rcvd.code == 1009


def test_compressed_bomb_is_refused(live_server: str) -> None:
    # The server does not negotiate permessage-deflate, so a compressed bomb cannot arrive.
    with connect(_ws(live_server)) as ws:
        assert ws.protocol.extensions == []


@pytest.mark.parametrize("origin", ["https://evil.example", "null"])
def test_foreign_origin_gets_403(live_server: str, origin: str) -> None:
    with pytest.raises(InvalidStatus) as e, connect(_ws(live_server), origin=origin):
        pass
    assert e.value.response.status_code == 403


def test_a_slug_without_a_live_session_gets_403(live_server: str) -> None:
    url = live_server.replace("http://", "ws://") + "/ws/descent"
    with pytest.raises(InvalidStatus) as e, connect(url):
        pass
    assert e.value.response.status_code == 403


def test_own_origin_trains_and_http_stays_up(live_server: str) -> None:
    with connect(_ws(live_server), origin=live_server, compression=None) as ws:
        ws.send(json.dumps({"type": "play"}))
        steps = []
        while len(steps) < 3:
            message = ws.recv(timeout=30)
            if isinstance(message, bytes):  # a frame is one binary message
                steps.append(decode_frame(message)[0].step)
        assert steps[-1] > steps[0]
        assert httpx.get(f"{live_server}/healthz").json()["status"] == "ok"
