"""The in-memory broker's keys: rate limits (token buckets) with a time to live, and expired keys
dropped on a write (an abandoned room's keys do not stay in memory until someone reads them)."""

import asyncio
from types import SimpleNamespace

import pytest

from app import broker as broker_module
from app.broker import MemoryBroker
from app.rooms.routes import join_retry_after
from app.settings import Settings


def test_expired_keys_go_on_a_later_write_even_unread(monkeypatch) -> None:
    monkeypatch.setattr(broker_module, "SWEEP_SECONDS", 0.0)

    async def scenario() -> set[str]:
        broker = MemoryBroker()
        for code in ("ROOMA", "ROOMB"):
            await broker.put(f"room:{code}", b"{}", ttl=0.01)
        await broker.put("room:KEPT", b"{}", ttl=60)
        await asyncio.sleep(0.05)  # the two rooms' keys expire; nobody reads them
        await broker.put("room:NEW", b"{}", ttl=60)
        return set(broker._keys)

    assert asyncio.run(scenario()) == {"room:KEPT", "room:NEW"}


def test_a_throttle_is_a_token_bucket_whose_key_goes_once_it_is_full() -> None:
    async def scenario() -> list[float]:
        broker = MemoryBroker()
        waits = [await broker.throttle("joins", interval=0.05, burst=2) for _ in range(3)]
        assert "joins" in broker._keys
        await asyncio.sleep(0.06)  # one attempt's worth refilled
        waits.append(await broker.throttle("joins", interval=0.05, burst=2))
        return waits

    first, second, refused, later = asyncio.run(scenario())
    assert first == second == 0 and 0 < refused <= 0.05 and later == 0


@pytest.mark.parametrize("burst", [1, 3])
def test_join_attempts_are_counted_in_the_broker(burst: int) -> None:
    settings = Settings(room_join_burst=burst, room_joins_per_minute=1)
    app = SimpleNamespace(state=SimpleNamespace(settings=settings))
    app.state.live = SimpleNamespace(broker=MemoryBroker())

    async def attempts() -> list[int | None]:
        return [await join_retry_after(app, "10.0.0.1") for _ in range(burst + 1)] + [
            await join_retry_after(app, "10.0.0.2")
        ]

    *allowed, refused, other = asyncio.run(attempts())
    assert allowed == [None] * burst and other is None
    assert 1 <= refused <= burst * 60  # the window: `burst` attempts a `burst` minutes
