"""The broker of several server processes: Redis pub/sub and keys with a time to live.

`RedisBroker` keeps `MemoryBroker`'s promises: a subscriber is a bounded queue (a slow one loses
the oldest messages, it never holds the publisher), a key is forgotten after its TTL (SET PX).
Every subscription of the process shares one Redis connection (`Channels`: one redis-py `PubSub`
on many channels, read by one task), so 300 rooms are not 300 connections.

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
from collections import defaultdict
from collections.abc import Callable
from contextlib import asynccontextmanager

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.broker import SUBSCRIBER_BACKLOG, MemoryBroker

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
# A command Redis does not answer within this is taken for Redis gone (a hung host, not a refusal).
COMMAND_SECONDS = 2.0
# Commands in flight at once per process; more wait for a free connection (up to COMMAND_SECONDS)
# rather than fail: a class of 300 joining at once must not look like Redis going away.
MAX_CONNECTIONS = 32
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_AWAY = object()  # what a command returns when Redis did not answer (unlike None: no such key)
# app.broker.throttled on Redis: KEYS[1] holds when the bucket is full again (Unix seconds).
THROTTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local full = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now) + interval
local wait = full - now - burst * interval
if wait > 0 then return tostring(wait) end
redis.call('SET', KEYS[1], tostring(full), 'PX', math.ceil((full - now) * 1000))
return '0'
"""


Deliver = Callable[[bytes], None]


class Channels:
    """Every Redis subscription of a process over one connection: a redis-py `PubSub` subscribed
    to each channel someone here listens to, and one task handing each message to the channel's
    listeners. A connection error reaches `on_error`; the next subscription connects anew.
    """

    def __init__(self, redis: Redis, on_error: Callable[[BaseException], None]):
        self.redis, self.on_error = redis, on_error
        self.pubsub = None
        self.reader: asyncio.Task | None = None
        self.listeners: dict[str, set[Deliver]] = defaultdict(set)
        self.subscribed: dict[str, asyncio.Event] = {}  # channel → set once Redis confirmed it

    async def add(self, channel: str, deliver: Deliver) -> None:
        """Listens to `channel` (raises if Redis cannot be reached); returns once subscribed."""
        listeners = self.listeners[channel]
        listeners.add(deliver)
        confirmed = self.subscribed.get(channel)
        if confirmed is None:
            confirmed = self.subscribed[channel] = asyncio.Event()
            if self.pubsub is None:
                self.pubsub = self.redis.pubsub()
            try:
                async with asyncio.timeout(COMMAND_SECONDS):
                    await self.pubsub.subscribe(channel)
            except UNREACHABLE:
                await self.reset()
                raise
            if self.reader is None:
                self.reader = asyncio.create_task(self._read(self.pubsub))
        async with asyncio.timeout(COMMAND_SECONDS):
            await confirmed.wait()

    async def remove(self, channel: str, deliver: Deliver) -> None:
        listeners = self.listeners.get(channel, set())
        listeners.discard(deliver)
        if listeners or channel not in self.listeners:
            return
        del self.listeners[channel]
        self.subscribed.pop(channel, None)
        if self.pubsub is not None:
            with contextlib.suppress(*UNREACHABLE):
                async with asyncio.timeout(COMMAND_SECONDS):
                    await self.pubsub.unsubscribe(channel)
                    if channel in self.listeners:  # listened to again meanwhile
                        await self.pubsub.subscribe(channel)

    async def _read(self, pubsub) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                channel = message["channel"].decode()
                if message["type"] == "message":
                    for deliver in list(self.listeners.get(channel, ())):
                        deliver(message["data"])
                elif message["type"] == "subscribe" and channel in self.subscribed:
                    self.subscribed[channel].set()
        except UNREACHABLE as exc:
            await self.reset()
            self.on_error(exc)

    async def reset(self) -> None:
        """Forgets the connection (Redis went away): listeners subscribe again on their return."""
        pubsub, self.pubsub, self.reader = self.pubsub, None, None
        self.listeners.clear()
        self.subscribed.clear()
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        await self.reset()


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
        self._redis = Redis.from_pool(  # the client owns the pool: closing it closes them all
            BlockingConnectionPool.from_url(
                url,
                max_connections=MAX_CONNECTIONS,
                timeout=COMMAND_SECONDS,
                socket_connect_timeout=COMMAND_SECONDS,
                retry=Retry(NoBackoff(), 0),
            )
        )
        self._memory = MemoryBroker()
        self._channels = Channels(self._redis, self._went_away)
        self._throttle = self._redis.register_script(THROTTLE)
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

    async def throttle(self, key: str, interval: float, burst: int) -> float:
        """`MemoryBroker.throttle`'s bucket in one Lua script: atomic, on Redis's clock."""
        if not self.away:
            wait = await self._call(self._throttle(keys=[key], args=[interval, burst]), _AWAY)
            if wait is not _AWAY:
                return float(wait)
        return await self._memory.throttle(key, interval, burst)

    async def delete(self, key: str) -> None:
        await self._memory.delete(key)
        if not self.away:
            await self._call(self._redis.delete(key))

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self._channels.close()
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
        """Listens on the process's one Redis subscription connection until the next switch."""
        try:
            await self._channels.add(channel, deliver)
            ready.set()
            await asyncio.Future()  # until cancelled (a switch, or the subscription's end)
        except UNREACHABLE as exc:
            self._went_away(exc)
        finally:
            await self._channels.remove(channel, deliver)

    async def _memory_messages(self, channel: str, deliver, ready: asyncio.Event) -> None:
        async with self._memory.subscribe(channel) as messages:
            ready.set()
            async for data in messages:
                deliver(data)
