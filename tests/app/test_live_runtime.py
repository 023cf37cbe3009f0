"""The live runtime's bookkeeping, without sockets: one cap, the stacked groups and their shared
traces, the solo tasks, and the thread pools the app's lifespan owns."""

import asyncio
import threading
import time

import pytest
from fastapi.testclient import TestClient

from app.labs.mlp import MlpSession
from app.labs.neurons import NeuronSession
from app.live.channel import ServerFull
from app.live.runtime import BackgroundPool, LiveRuntime
from app.main import create_app
from app.protocol.mlp import MlpConfig
from app.settings import Settings


def test_a_full_class_splits_into_groups_that_share_one_trace() -> None:
    live = LiveRuntime(Settings(max_group_size=2, max_sessions=10))
    sessions = [live.open(MlpSession) for _ in range(5)]
    assert [len(g.slots) for g in live.stacked.groups] == [2, 2, 1]
    assert len({g.trainer for g in live.stacked.groups}) == 1
    for s in sessions:
        live.close(s)
    assert live.stacked.groups == [] and not live.sessions


def test_sessions_over_the_cap_are_refused() -> None:
    live = LiveRuntime(Settings(max_sessions=2))
    live.open(MlpSession), live.open(MlpSession)
    try:
        live.open(MlpSession)
    except ServerFull as e:
        assert "2 sessions" in str(e)
    else:
        raise AssertionError("a third session was let in")


def test_one_cap_counts_the_sessions_of_every_lab() -> None:
    live = LiveRuntime(Settings(max_sessions=2, use_xla=False))

    async def run():
        async with live.lifespan(None):
            neuron = live.open(NeuronSession)
            live.open(MlpSession)
            assert live.solo.tasks.keys() == {neuron}
            with pytest.raises(ServerFull):
                live.open(NeuronSession)
            live.close(neuron)  # its task ends with it
            assert not live.solo.tasks
            live.open(NeuronSession)

    asyncio.run(run())


def test_new_layer_sizes_reuse_the_trace() -> None:
    live = LiveRuntime(Settings(use_xla=False))

    async def run():
        async with live.lifespan(None):
            session = live.open(MlpSession)
            session.running = True
            await live.stacked.tick()
            before = set(live.stacked.trainers)
            session.configure({"hidden": [7, 3]})
            await live.stacked.tick()
            return before, set(live.stacked.trainers), session.step

    before, after, step = asyncio.run(run())
    assert before == after  # [4, 2] and [7, 3] pad to the same shape
    assert step == 25  # restarted at 0 by the new architecture, then one epoch


def test_big_networks_get_fewer_steps_per_frame_than_asked() -> None:
    live = LiveRuntime(Settings())
    small = MlpSession(live, MlpConfig(speed=10_000))
    big = MlpSession(live, MlpConfig(speed=10_000, hidden=[50] * 6))
    assert small.steps_per_frame(0) == 10_000
    assert 1 <= big.steps_per_frame(0) < 200
    assert MlpSession(live, MlpConfig(speed="epoch")).steps_per_frame(0) == 25


def test_the_lifespan_owns_the_thread_pools() -> None:
    app = create_app(Settings(use_xla=False))
    live = app.state.live
    assert live.pool is None and live.compiler is None  # nothing runs before the app starts
    threads = set(threading.enumerate())
    with TestClient(app) as c, c.websocket_connect("/ws/neurons") as ws:
        ws.receive_text()
        pools = live.pool, live.compiler
        assert [p.submit(lambda: 1).result() for p in pools] == [1, 1]
    for pool in pools:  # shut down with the app: nothing more is taken
        with pytest.raises(RuntimeError, match="shutdown"):
            pool.submit(lambda: 1)
    left = {t.name for t in set(threading.enumerate()) - threads}
    assert not {name for name in left if name.startswith(("tf_", "xla_"))}, left
    assert not live.solo.tasks


def test_the_background_pool_counts_what_it_still_has_to_do() -> None:
    release = threading.Event()
    pool = BackgroundPool(1, "test")
    try:
        futures = [pool.submit(release.wait) for _ in range(3)]
        assert pool.pending == 3  # one running, two queued
        release.set()
        for f in futures:
            f.result(timeout=5)
        deadline = time.monotonic() + 5
        while pool.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.pending == 0
    finally:
        pool.shutdown()
