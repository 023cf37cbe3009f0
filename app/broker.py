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
# The in-memory broker drops expired keys at most this often, on a write: abandoned rooms' keys
# go even if nobody reads them again.
SWEEP_SECONDS = 5.0


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

    async def throttle(self, key: str, interval: float, burst: int) -> float:
        """One attempt against the rate limit `key` (a token bucket: one attempt per `interval`
        seconds on average, `burst` at once): 0 if it may go on, else the seconds until one may.
        The key expires once the bucket is full again."""

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryBroker:
    """The broker of one process: subscribers are bounded queues; keys a dict with deadlines."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue]] = defaultdict(set)
        self._keys: dict[str, tuple[bytes, float]] = {}
        self._swept = time.monotonic()

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
        now = self._sweep()
        self._keys[key] = (value, now + ttl)

    async def get(self, key: str) -> bytes | None:
        value, deadline = self._keys.get(key, (None, 0.0))
        if value is not None and deadline <= time.monotonic():
            del self._keys[key]
            return None
        return value

    async def throttle(self, key: str, interval: float, burst: int) -> float:
        now = self._sweep()
        value, deadline = self._keys.get(key, (b"0", 0.0))
        wait, full = throttled(float(value) if deadline > now else 0.0, now, interval, burst)
        if wait == 0:
            self._keys[key] = (repr(full).encode(), full)
        return wait

    def _sweep(self) -> float:
        """Drops every expired key, at most every `SWEEP_SECONDS` (on a write); the time now."""
        now = time.monotonic()
        if now - self._swept >= SWEEP_SECONDS:
            self._swept = now
            for key in [k for k, (_, deadline) in self._keys.items() if deadline <= now]:
                del self._keys[key]
        return now

    async def delete(self, key: str) -> None:
        self._keys.pop(key, None)

    async def close(self) -> None:
        self._subscribers.clear()
        self._keys.clear()


def throttled(full: float, now: float, interval: float, burst: int) -> tuple[float, float]:
    """GCRA, a token bucket kept as one number: `full`, when the bucket is full again. Returns
    the wait (0: allowed) and, if allowed, the new `full`."""
    full = max(full, now) + interval
    wait = full - now - burst * interval
    return (wait, full) if wait > 0 else (0.0, full)


async def make_broker(settings) -> Broker:
    """The broker `settings` ask for: in memory, or through Redis when `redis_url` is set (in
    this process alone, with a warning, while Redis cannot be reached)."""
    if not settings.redis_url:
        return MemoryBroker()
    from app.redis_broker import RedisBroker

    broker = RedisBroker(settings.redis_url)
    await broker.connect()
    return broker
