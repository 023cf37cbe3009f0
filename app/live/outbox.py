"""What waits to be sent to one socket: control messages in order, and only the newest frame."""

import asyncio
from collections import deque
from collections.abc import Callable

from app.protocol.shared import ErrorMessage


class Outbox:
    """Base of every live session. Only the event loop touches it."""

    def __init__(self):
        self._outbox: deque[str] = deque()
        self._frame: tuple[str, bytes] | None = None
        self._wake = asyncio.Event()
        # Also sees every message sent (text, and a frame's bytes): a classroom room relays them.
        self.tap: Callable[[str, bytes | None], None] | None = None

    def send(self, message) -> None:
        """Queues a control message (never dropped, sent before the next frame)."""
        self.send_text(message.model_dump_json())

    def send_text(self, text: str) -> None:
        self._outbox.append(text)
        self._wake.set()
        if self.tap is not None:
            self.tap(text, None)

    def send_error(self, message: str, field: str | None = None) -> None:
        self.send(ErrorMessage(message=message, field=field))

    def offer_frame(self, text: str, data: bytes) -> None:
        """Latest frame wins: a slow client gets fewer frames, never a backlog."""
        self._frame = (text, data)
        self._wake.set()
        if self.tap is not None:
            self.tap(text, data)

    def drop_frame(self) -> None:
        """Forgets a frame not yet sent: it belongs to a run that has just been replaced."""
        self._frame = None

    async def next_outgoing(self) -> tuple[str | None, tuple[str, bytes] | None]:
        """Waits for something to send: queued control messages first, then the newest frame."""
        while not self._outbox and self._frame is None:
            self._wake.clear()
            await self._wake.wait()
        if self._outbox:
            return self._outbox.popleft(), None
        frame, self._frame = self._frame, None
        return None, frame
