"""How a room's messages travel on the broker: a kind, the send time, then the message as sent.

The live session's messages go as they are (the frame's binary grids are never parsed here), so a
change to a lab's frame format changes nothing in rooms.
"""

import json
import struct
import time
from dataclasses import dataclass
from functools import cached_property

HEADER = struct.Struct("!cdI")  # kind, send time (Unix seconds), length of the text part
CONTROL = b"C"  # a control message of the instructor's session (state, data …)
FRAME = b"F"  # a frame of the instructor's session: its text, then its bytes
EVENT = b"E"  # a room event (JSON text): a follower joined, the controls locked, a vote …
SENT = struct.Struct("!d")  # a timed frame's first bytes: when it was published (Unix seconds)


@dataclass(frozen=True)
class Envelope:
    kind: bytes
    sent: float
    text: str
    data: bytes | None

    def pack(self) -> bytes:
        text = self.text.encode()
        return HEADER.pack(self.kind, self.sent, len(text)) + text + (self.data or b"")

    # Made once per message for the whole room, however many followers get it.
    @cached_property
    def event(self) -> dict:
        """A room event's fields."""
        return json.loads(self.text)

    @cached_property
    def timed_data(self) -> bytes:
        """A frame's bytes after its send time (`SENT`): what a timed follower (the bench) gets."""
        return SENT.pack(self.sent) + (self.data or b"")

    @classmethod
    def unpack(cls, raw: bytes) -> "Envelope":
        kind, sent, n = HEADER.unpack_from(raw)
        start = HEADER.size
        text = raw[start : start + n].decode()
        return cls(kind, sent, text, raw[start + n :] if kind == FRAME else None)


def live(text: str, data: bytes | None) -> bytes:
    """A message of the instructor's session, as its own socket sends it."""
    return Envelope(CONTROL if data is None else FRAME, time.time(), text, data).pack()


def event(name: str, **fields) -> bytes:
    """A room event as every student's page receives it: `{"type": "room", "event": name, …}`."""
    return Envelope(EVENT, time.time(), event_text(name, **fields), None).pack()


def event_text(name: str, **fields) -> str:
    return json.dumps({"type": "room", "event": name, **fields}, separators=(",", ":"))
