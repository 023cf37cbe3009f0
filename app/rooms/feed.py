"""One broker subscription per room in each process, shared by that process's students.

Through Redis a subscription is a connection that parses every frame; 300 students on one process
would parse each frame 300 times. Here it is read and unpacked once, then handed to every
student's socket in the process (each keeps only the newest frame, so none holds the others).
The feed also notices, once for all of them, when the room has expired.
"""

import asyncio
import time
from collections.abc import Callable
from contextlib import asynccontextmanager

from app.broker import Broker
from app.rooms import records
from app.rooms.envelope import EVENT, Envelope, event_text
from app.rooms.records import Keys

Listener = Callable[[Envelope], None]


class Feed:
    def __init__(self, broker: Broker, code: str, idle: float):
        self.listeners: set[Listener] = set()
        self.ready = asyncio.Event()  # subscribed: what is published from now on arrives
        self.tasks = [
            asyncio.create_task(self._run(broker, Keys(code).channel)),
            asyncio.create_task(self._expire(broker, code, idle)),
        ]

    def hand_out(self, message: Envelope) -> None:
        for listener in list(self.listeners):
            listener(message)

    async def _run(self, broker: Broker, channel: str) -> None:
        async with broker.subscribe(channel) as messages:
            self.ready.set()
            async for raw in messages:
                self.hand_out(Envelope.unpack(raw))

    async def _expire(self, broker: Broker, code: str, idle: float) -> None:
        """A room whose instructor has been gone for `idle` seconds has expired: its students are
        told so."""
        while await records.load(broker, code) is not None:
            await asyncio.sleep(min(idle / 4, 5.0))
        self.hand_out(closed("The instructor has left the room."))


def closed(reason: str) -> Envelope:
    return Envelope(EVENT, time.time(), event_text("closed", reason=reason), None)


class Feeds:
    """The room channels this process reads, each while one of its students listens."""

    def __init__(self, broker: Broker, idle: float):
        self.broker = broker
        self.idle = idle
        self.feeds: dict[str, Feed] = {}

    @asynccontextmanager
    async def listen(self, code: str, listener: Listener):
        """Calls `listener` with each message of room `code` (on the loop) inside the `with`."""
        feed = self.feeds.get(code)
        if feed is None:
            feed = self.feeds[code] = Feed(self.broker, code, self.idle)
        feed.listeners.add(listener)
        try:
            await feed.ready.wait()
            yield
        finally:
            feed.listeners.discard(listener)
            if not feed.listeners:
                for task in feed.tasks:
                    task.cancel()
                del self.feeds[code]


def feeds_of(app) -> Feeds:
    """The app's feeds, made on first use (the broker is the runtime's, set at start-up)."""
    broker = app.state.live.broker
    if getattr(app.state, "room_feeds", None) is None or app.state.room_feeds.broker is not broker:
        app.state.room_feeds = Feeds(broker, app.state.settings.room_idle_seconds)
    return app.state.room_feeds
