"""The broker of several server processes: Redis pub/sub and keys with a time to live.

`RedisBroker` keeps `MemoryBroker`'s promises: a subscriber is a bounded queue (a slow one loses
the oldest messages, it never holds the publisher), a key is forgotten after its TTL (SET PX).

If Redis cannot be reached, at start or mid-lecture, it logs one warning and goes on alone: this
process's publishers and subscribers meet in an in-process `MemoryBroker`, so a room held by this
process keeps running while other processes are out of reach. It asks Redis again every
`retry_seconds`; once Redis answers, publishes and subscriptions go through it again (what was
published in between is not replayed). Keys are written to both, so the keys this process set
outlive the switch either way.
"""

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.broker import SUBSCRIBER_BACKLOG, MemoryBroker

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
# A command Redis does not answer within this is taken for Redis gone (a hung host, not a refusal).
COMMAND_SECONDS = 2.0
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_AWAY = object()  # what a command returns when Redis did not answer (unlike None: no such key)


class RedisBroker:
    """`app.broker.Broker` through Redis, in-process while Redis is away.

    Args:
        url: `redis://host:port/db` (`PLAYGROUND_REDIS_URL`).
        retry_seconds: How often to ask Redis again while it is away.
    """

    def __init__(self, url: str, retry_seconds: float = RETRY_SECONDS):
        self.url = url
        self.retry_seconds = retry_seconds
        # No retries inside redis-py: a refused command means "away" at once, not after backoff.
        self._redis = Redis.from_url(
            url, socket_connect_timeout=COMMAND_SECONDS, retry=Retry(NoBackoff(), 0)
        )
        self._memory = MemoryBroker()
        self._switched = asyncio.Event()  # set (and replaced) when Redis goes away or comes back
        self._probe: asyncio.Task | None = None
        self.away = False

    async def connect(self) -> None:
        """Checks Redis once at start; unreachable, the broker starts in-process."""
        await self._call(self._redis.ping())

    # --- the interface -------------------------------------------------------------------------

    async def publish(self, channel: str, data: bytes) -> None:
        if self.away or await self._call(self._redis.publish(channel, data), _AWAY) is _AWAY:
            await self._memory.publish(channel, data)

    @asynccontextmanager
    async def subscribe(self, channel: str):
        queue: asyncio.Queue[bytes] = asyncio.Queue(SUBSCRIBER_BACKLOG)

        def deliver(data: bytes) -> None:
            if queue.full():
                queue.get_nowait()  # the oldest goes: latest wins
            queue.put_nowait(data)

        async def messages():
            while True:
                yield await queue.get()

        ready = asyncio.Event()  # subscribed: what is published from now on arrives
        feed = asyncio.create_task(self._feed(channel, deliver, ready))
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(COMMAND_SECONDS):
                    await ready.wait()
            yield messages()
        finally:
            feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        await self._memory.put(key, value, ttl)
        if not self.away:
            await self._call(self._redis.set(key, value, px=max(1, round(ttl * 1000))))

    async def get(self, key: str) -> bytes | None:
        if not self.away:
            value = await self._call(self._redis.get(key), default=_AWAY)
            if value is not _AWAY:
                return value
        return await self._memory.get(key)

    async def delete(self, key: str) -> None:
        await self._memory.delete(key)
        if not self.away:
            await self._call(self._redis.delete(key))

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self._memory.close()
        await self._redis.aclose()

    # --- Redis away and back -------------------------------------------------------------------

    async def _call(self, command, default=None):
        """Awaits a Redis command; Redis away: the broker goes in-process and `default` is returned."""
        try:
            async with asyncio.timeout(COMMAND_SECONDS):
                return await command
        except UNREACHABLE as exc:
            self._went_away(exc)
            return default

    def _switch(self, away: bool) -> None:
        self.away = away
        switched, self._switched = self._switched, asyncio.Event()
        switched.set()

    def _went_away(self, exc: BaseException) -> None:
        if self.away:
            return
        self._switch(True)
        log.warning(
            "Redis at %s cannot be reached (%s): rooms go on in this process only; "
            "asking again every %g s.",
            self.url, str(exc) or type(exc).__name__, self.retry_seconds,
        )  # fmt: skip
        self._probe = asyncio.create_task(self._wait_for_redis())

    async def _wait_for_redis(self) -> None:
        while True:
            await asyncio.sleep(self.retry_seconds)
            with contextlib.suppress(*UNREACHABLE):
                async with asyncio.timeout(COMMAND_SECONDS):
                    await self._redis.ping()
                break
        self._probe = None
        self._switch(False)
        log.warning(
            "Redis at %s answers again: rooms are shared between processes again.", self.url
        )

    async def _feed(self, channel: str, deliver, ready: asyncio.Event) -> None:
        """Hands `channel`'s messages to `deliver`: from Redis while it answers, else from this
        process's publishers; again from the other side at each switch."""
        while True:
            switched = self._switched
            source = self._memory_messages if self.away else self._redis_messages
            feed = asyncio.create_task(source(channel, deliver, ready))
            switch = asyncio.create_task(switched.wait())
            try:
                await asyncio.wait((feed, switch), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (feed, switch):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _redis_messages(self, channel: str, deliver, ready: asyncio.Event) -> None:
        try:
            async with self._redis.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        deliver(message["data"])
                    elif message["type"] == "subscribe":
                        ready.set()
        except UNREACHABLE as exc:
            self._went_away(exc)

    async def _memory_messages(self, channel: str, deliver, ready: asyncio.Event) -> None:
        async with self._memory.subscribe(channel) as messages:
            ready.set()
            async for data in messages:
                deliver(data)
