"""The hub's bookkeeping, without sockets: groups, caps, and the shared traces."""

import asyncio

from app.live.hub import Hub, ServerFull
from app.settings import Settings


def test_a_full_class_splits_into_groups_that_share_one_trace() -> None:
    hub = Hub(Settings(max_group_size=2, max_sessions=10))
    sessions = [hub.open() for _ in range(5)]
    assert [len(g.slots) for g in hub.groups] == [2, 2, 1]
    assert len({g.trainer for g in hub.groups}) == 1
    for s in sessions:
        hub.close(s)
    assert hub.groups == [] and not hub.sessions


def test_sessions_over_the_cap_are_refused() -> None:
    hub = Hub(Settings(max_sessions=2))
    hub.open(), hub.open()
    try:
        hub.open()
    except ServerFull as e:
        assert "2 sessions" in str(e)
    else:
        raise AssertionError("a third session was let in")


def test_new_layer_sizes_reuse_the_trace() -> None:
    hub = Hub(Settings(use_xla=False))

    async def run():
        async with hub.lifespan(None):
            session = hub.open()
            session.running = True
            await hub.tick()
            before = set(hub.trainers)
            hub.configure(session, {"hidden": [7, 3]})
            await hub.tick()
            return before, set(hub.trainers), session.step

    before, after, step = asyncio.run(run())
    assert before == after  # [4, 2] and [7, 3] pad to the same shape
    assert step == 25  # restarted at 0 by the new architecture, then one epoch


def test_big_networks_get_fewer_steps_per_frame_than_asked() -> None:
    from app.live.session import Session
    from app.protocol import MlpConfig

    small = Session(MlpConfig(speed=10_000))
    big = Session(MlpConfig(speed=10_000, hidden=[50] * 6))
    assert small.steps_per_frame(0) == 10_000
    assert 1 <= big.steps_per_frame(0) < 200
    assert Session(MlpConfig(speed="epoch")).steps_per_frame(0) == 25
