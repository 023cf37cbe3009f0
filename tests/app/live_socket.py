"""A TestClient WebSocket reader for the live labs: strict JSON, frames paired with their bytes."""

import json
from collections.abc import Iterator
from contextlib import contextmanager


def strict_json(text: str) -> dict:
    def refuse(name):
        raise AssertionError(f"server sent {name}")

    return json.loads(text, parse_constant=refuse)


class Socket:
    """Reads the server's messages; a frame's binary message lands in its `"binary"` key."""

    def __init__(self, ws):
        self.ws = ws

    def next(self) -> dict:
        message = strict_json(self.ws.receive_text())
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
