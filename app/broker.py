"""Messages and small shared values between server processes: in memory, or through Redis.

One process (the default) keeps both in memory. With `PLAYGROUND_REDIS_URL` set, several server
processes share them through Redis pub/sub and keys (`app/redis_broker.py`), so a room opened on
one process is followed from another.
"""

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

# A subscriber that falls this many messages behind loses the oldest: a slow follower skips
# frames, it never holds the publisher or the memory.
SUBSCRIBER_BACKLOG = 8


class Broker(Protocol):
    """Publish/subscribe by channel name, and keys with a time to live."""

    async def publish(self, channel: str, data: bytes) -> None:
        """Sends `data` to every current subscriber of `channel` (none: dropped)."""

    def subscribe(self, channel: str) -> "AsyncIterator[AsyncIterator[bytes]]":
        """`async with broker.subscribe(ch) as messages: async for data in messages: ...`"""

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        """Sets `key`, forgotten after `ttl` seconds unless set again."""

    async def get(self, key: str) -> bytes | None:
        """The value of `key`, or None if unset or expired."""

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryBroker:
    """The broker of one process: subscribers are bounded queues; keys a dict with deadlines."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue]] = defaultdict(set)
        self._keys: dict[str, tuple[bytes, float]] = {}

    async def publish(self, channel: str, data: bytes) -> None:
        for queue in self._subscribers.get(channel, ()):
            if queue.full():
                queue.get_nowait()  # the oldest goes: latest wins
            queue.put_nowait(data)

    @asynccontextmanager
    async def subscribe(self, channel: str):
        queue: asyncio.Queue[bytes] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self._subscribers[channel].add(queue)

        async def messages():
            while True:
                yield await queue.get()

        try:
            yield messages()
        finally:
            subscribers = self._subscribers[channel]
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[channel]

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        self._keys[key] = (value, time.monotonic() + ttl)

    async def get(self, key: str) -> bytes | None:
        value, deadline = self._keys.get(key, (None, 0.0))
        if value is not None and deadline <= time.monotonic():
            del self._keys[key]
            return None
        return value

    async def delete(self, key: str) -> None:
        self._keys.pop(key, None)

    async def close(self) -> None:
        self._subscribers.clear()
        self._keys.clear()


async def make_broker(settings) -> Broker:
    """The broker `settings` ask for: in memory, or through Redis when `redis_url` is set (in
    this process alone, with a warning, while Redis cannot be reached)."""
    if not settings.redis_url:
        return MemoryBroker()
    from app.redis_broker import RedisBroker

    broker = RedisBroker(settings.redis_url)
    await broker.connect()
    return broker
