"""The Redis broker against a real redis-server: every subscription of a process over one
connection, and join attempts counted across processes through Redis keys with a time to live."""

import asyncio
from types import SimpleNamespace

import redis as redis_client

from app.redis_broker import RedisBroker
from app.rooms.routes import join_retry_after
from app.settings import Settings
from tests.redis_server import RedisServer

CHANNELS = 20


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def with_broker(url: str, act):
    """`act(broker)` on a connected broker of its own, closed afterwards; what it returned."""

    async def scenario():
        broker = RedisBroker(url)
        await broker.connect()
        try:
            return await act(broker)
        finally:
            await broker.close()

    return run(scenario())


def test_every_subscription_of_a_process_shares_one_connection(shared_redis: RedisServer) -> None:
    async def scenario() -> tuple[int, dict[str, bytes]]:
        broker = RedisBroker(shared_redis.url)
        await broker.connect()
        got: dict[str, bytes] = {}

        async def listen(channel: str, subscribed: asyncio.Event) -> None:
            async with broker.subscribe(channel) as messages:
                subscribed.set()
                async for data in messages:
                    got[channel] = data
                    return

        ready = [asyncio.Event() for _ in range(CHANNELS)]
        listeners = [
            asyncio.create_task(listen(f"room:R{i}:live", ready[i])) for i in range(CHANNELS)
        ]
        await asyncio.gather(*(event.wait() for event in ready))
        # The broker's connections as Redis sees them (this check's own client excluded).
        clients = redis_client.Redis.from_url(shared_redis.url).client_list()
        for i in range(CHANNELS):
            await broker.publish(f"room:R{i}:live", f"frame {i}".encode())
        await asyncio.gather(*listeners)
        await broker.close()
        return len(clients) - 1, got

    connections, got = run(scenario())
    assert connections <= 2  # commands, and one for every subscription
    assert got == {f"room:R{i}:live": f"frame {i}".encode() for i in range(CHANNELS)}


def test_a_channel_listened_to_twice_and_left_once_still_delivers(
    shared_redis: RedisServer,
) -> None:
    async def listen_twice_leave_once(broker: RedisBroker) -> bytes:
        async with broker.subscribe("room:TWICE:live") as kept:
            async with broker.subscribe("room:TWICE:live"):
                pass
            await broker.publish("room:TWICE:live", b"still here")
            return await anext(aiter(kept))

    assert with_broker(shared_redis.url, listen_twice_leave_once) == b"still here"


def test_join_attempts_are_counted_across_processes(shared_redis: RedisServer) -> None:
    settings = Settings(room_join_burst=3, room_joins_per_minute=1)

    async def scenario() -> list[int | None]:
        # Two server processes: each its own broker (its own connections) on one Redis.
        brokers = [RedisBroker(shared_redis.url), RedisBroker(shared_redis.url)]
        apps = []
        for broker in brokers:
            await broker.connect()
            state = SimpleNamespace(settings=settings, live=SimpleNamespace(broker=broker))
            apps.append(SimpleNamespace(state=state))
        first, second = apps
        waits = [
            await join_retry_after(first, "10.0.0.9"),
            await join_retry_after(second, "10.0.0.9"),
            await join_retry_after(first, "10.0.0.9"),
            await join_retry_after(second, "10.0.0.9"),  # the fourth, wherever it lands
            await join_retry_after(second, "10.0.0.10"),
        ]
        ttl = await brokers[0]._redis.pttl("room-joins:10.0.0.9")
        for broker in brokers:
            await broker.close()
        assert 0 < ttl <= 180_000  # a key that goes by itself
        return waits

    waits = run(scenario())
    assert waits[:3] == [None, None, None] and waits[4] is None
    assert 1 <= waits[3] <= 180


def test_a_class_joining_at_once_waits_for_connections_and_redis_stays_shared(
    shared_redis: RedisServer,
) -> None:
    async def burst(broker: RedisBroker) -> bool:
        # Far more commands at once than the connection pool holds (a lecture hall's joins).
        await asyncio.gather(*(broker.publish(f"burst-{i}", b"hello") for i in range(300)))
        return broker.away

    assert (
        with_broker(shared_redis.url, burst) is False
    )  # not taken for Redis going away: the rooms stay shared
