"""A TestClient WebSocket reader for the live labs: strict JSON, frames paired with their bytes."""

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from starlette.websockets import WebSocketDisconnect

from app.labs import all_labs


def strict_json(text: str) -> dict:
    def refuse(name):
        raise AssertionError(f"server sent {name}")

    return json.loads(text, parse_constant=refuse)


def binary_frame(data: bytes) -> dict:
    """A frame sent as one binary message (by a lab whose protocol has `decode_frame`), its grids
    in `"binary"`."""
    for lab in all_labs():
        decode = getattr(lab.protocol, "decode_frame", None)
        if decode is not None:
            frame, grids = decode(data)
            return {**frame.model_dump(), "binary": grids}
    raise AssertionError("a binary message without a frame before it")


class Socket:
    """Reads the server's messages; a frame's binary message lands in its `"binary"` key."""

    def __init__(self, ws):
        self.ws = ws

    def next(self) -> dict:
        raw = self.ws.receive()
        if raw["type"] == "websocket.close":
            raise WebSocketDisconnect(raw.get("code", 1000), raw.get("reason", ""))
        if raw.get("text") is None:
            return binary_frame(raw["bytes"])
        message = strict_json(raw["text"])
        if message["type"] == "frame":
            message["binary"] = self.ws.receive_bytes()
        return message

    def until(self, predicate, limit: int = 400) -> dict:
        for _ in range(limit):
            message = self.next()
            if predicate(message):
                return message
        raise AssertionError("the expected message never came")

    def send(self, message: dict) -> None:
        self.ws.send_text(json.dumps(message))


@contextmanager
def lab_socket(client, slug: str) -> Iterator[Socket]:
    """A live lab's socket, `/ws/<slug>`, on a TestClient."""
    with client.websocket_connect(f"/ws/{slug}") as ws:
        yield Socket(ws)


def lab_socket_fixture(slug: str):
    """A test module's `sock` fixture: `/ws/<slug>` on the module's `client`."""

    @pytest.fixture
    def sock(client) -> Iterator[Socket]:
        with lab_socket(client, slug) as s:
            yield s

    return sock


def close_code(sock: Socket) -> int:
    """Reads until the server closes the socket; the code it closed it with."""
    with pytest.raises(WebSocketDisconnect) as e:
        sock.until(lambda m: False)
    return e.value.code


def assert_refused_and_alive(sock: Socket, message: dict, field: str) -> None:
    """`message` gets an error naming `field` (and the value received, for a known field), and
    the session trains on with its config unchanged."""
    sock.send(message)
    error = sock.until(lambda m: m["type"] == "error")
    assert error["field"] == field
    assert "Received" in error["message"] or field in ("type", "bogus")
    assert "Value error" not in error["message"]  # a student's words, not the library's
    sock.send({"type": "step"})
    frame = sock.until(lambda m: m["type"] == "frame" and m["step"] > 0)
    assert frame["version"] == 0  # the rejected config changed nothing
