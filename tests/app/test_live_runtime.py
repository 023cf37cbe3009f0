"""The live runtime's bookkeeping, without sockets: one cap, the stacked groups and their shared
traces, the solo tasks, and the thread pools the app's lifespan owns."""

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from app.labs import rnn as rnn_lab
from app.labs.mlp import MlpSession
from app.labs.neurons import NeuronSession
from app.live.channel import ServerFull
from app.live.group import MAX_SPEED_CALL_SECONDS, Group, StepBudget
from app.live.runtime import BackgroundPool, LiveRuntime
from app.live.session import paced
from app.live.stacked import COMPILE_AFTER_TICKS, EXACT_UNROLL
from app.main import create_app
from app.protocol.mlp import MlpConfig
from app.settings import Settings
from models import neurons, xla_budget
from models.mlp import Architecture, TraceShape


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
            session.configure({"hidden": [3, 1]})
            await live.stacked.tick()
            return before, set(live.stacked.trainers), session.step

    before, after, step = asyncio.run(run())
    assert before == after  # [4, 2] and [3, 1] pad to the same shape
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
    assert live.pool is live.stacked_pool is live.costly_pool is live.compiler is None  # not yet
    threads = set(threading.enumerate())
    with TestClient(app) as c, c.websocket_connect("/ws/neurons") as ws:
        ws.receive_text()
        pools = live.pool, live.stacked_pool, live.costly_pool, live.compiler
        assert [p.submit(lambda: 1).result() for p in pools] == [1, 1, 1, 1]
    for pool in pools:  # shut down with the app: nothing more is taken
        with pytest.raises(RuntimeError, match="shutdown"):
            pool.submit(lambda: 1)
    left = {t.name for t in set(threading.enumerate()) - threads}
    assert not {name for name in left if name.startswith(("tf_", "xla_"))}, left
    assert not live.solo.tasks


def test_a_costly_solo_sessions_frames_take_threads_of_their_own(monkeypatch) -> None:
    """A neuron's frames (0.3 ms) never queue behind an RNN's (up to ~25 ms)."""
    threads = {}

    def recording(lab: str, call):
        def record(*args, **kwargs):
            threads[lab] = threading.current_thread().name
            return call(*args, **kwargs)

        return record

    monkeypatch.setattr(neurons, "train", recording("neurons", neurons.train))
    monkeypatch.setattr(rnn_lab, "_compute", recording("rnn", rnn_lab._compute))
    with TestClient(create_app(Settings(use_xla=False))) as c:
        for lab in ("neurons", "rnn"):
            with c.websocket_connect(f"/ws/{lab}") as ws:
                while json.loads(ws.receive_text())["type"] != "frame":
                    pass
    assert threads["rnn"].startswith("tf_costly_"), threads
    assert threads["neurons"].startswith("tf_") and not threads["neurons"].startswith(
        ("tf_costly_", "tf_stacked_")
    ), threads


def test_the_start_up_warm_ups_are_a_setting() -> None:
    async def queued_at_start(warm_up: bool) -> int:
        live = LiveRuntime(Settings(use_xla=False, warm_up=warm_up))
        async with live.lifespan(None):
            return live.compiling

    assert asyncio.run(queued_at_start(False)) == 0
    assert asyncio.run(queued_at_start(True)) > 0  # every lab's, in the background


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


def _budget_after(call_seconds) -> int:
    """The max-speed K after calls whose time is `call_seconds(k)`, K probed around its target."""
    budget = StepBudget()
    for _ in range(60):
        k = budget.next()
        budget.observe(k, call_seconds(k))
    return budget.target


def test_max_speed_fits_its_steps_to_a_calls_fixed_and_per_step_cost() -> None:
    # 4 ms a call plus 2 µs a step: the rest of the call budget goes to steps.
    assert _budget_after(lambda k: 0.004 + 2e-6 * k) == pytest.approx(
        (MAX_SPEED_CALL_SECONDS - 0.004) / 2e-6, rel=0.05
    )
    # A busy machine: the fixed cost alone is over the budget, and steps cost 3× more. Steps
    # take as long as the fixed cost: fewer steps a frame, not one.
    busy = _budget_after(lambda k: 0.03 + 6e-6 * k)
    assert busy == pytest.approx(0.03 / 6e-6, rel=0.05)


def test_the_warm_up_compiles_the_first_shape_for_every_group_size_a_class_reaches() -> None:
    """A class arriving in the default network grows its group 1 → 2 → 4 …: each size's XLA
    build is made at start-up, not while the class waits (plain calls, a busy core)."""
    live = LiveRuntime(Settings(max_group_size=4))
    live.compiler = BackgroundPool(1, "xla")
    try:
        first = MlpSession(live)
        live.stacked.warm_up([(first, True)])
        deadline = time.monotonic() + 300  # a bound against a hang, not a target
        while live.compiling and time.monotonic() < deadline:
            time.sleep(0.1)
        assert live.stacked._trainer(first.arch.shape).xla_ready >= {1, 2, 4}
    finally:
        live.compiler.shutdown()


def test_a_never_traced_shape_trains_in_a_wider_ready_one_then_moves_to_its_own() -> None:
    live = LiveRuntime(Settings(use_xla=False))
    runner = live.stacked
    # The pools without the lifespan's start-up warm-ups: only this test's work is queued.
    live.stacked_pool, live.compiler = ThreadPoolExecutor(1), BackgroundPool(1, "xla")
    wide = Architecture(2, (20, 20, 20, 20, 20), "tanh", 10).shape
    stand_in = runner._trainer(wide)
    if not stand_in.traced:  # traced once a process
        group = Group(stand_in, False, live.settings.grid_size, 16)
        group.add(MlpSession(live, MlpConfig(hidden=[20] * 5)))
        stand_in(group.prepare_idle())

    async def run():
        session = live.open(MlpSession)
        session.configure({"hidden": [3, 5, 2, 7, 4]})  # pads to width 8, depth 5
        own = runner._trainer(session.arch.shape)
        assert session.group.trainer is (own if own.traced else stand_in)
        session.running = True
        await runner.tick()
        assert session.step == 25
        await asyncio.to_thread(live.compiler.submit(lambda: None).result)  # its own is traced
        await runner.tick()
        assert session.group.trainer is own and session.step == 50

    try:
        asyncio.run(run())
    finally:
        live.stacked_pool.shutdown()
        live.compiler.shutdown()


def test_max_speed_with_nothing_ready_trains_padded_while_its_exact_trace_compiles() -> None:
    live = LiveRuntime(Settings(use_xla=True))
    runner = live.stacked
    # A compiler held busy: the exact build is queued, never run (an XLA compile takes seconds).
    hold = threading.Event()
    live.compiler = BackgroundPool(1, "xla")
    live.compiler.submit(hold.wait)
    try:
        session = live.open(MlpSession)
        session.configure({"hidden": [7, 3, 5, 2, 6, 1], "speed": "max"})
        own = runner._own(session)
        assert own.unroll > 1 and not runner._ready(own)
        # Not its exact trace, which would run plain (its unrolled loop, slowly) until compiled.
        assert session.group.trainer.unroll == 1
        assert session.group.trainer.shape.fits(session.arch)
        assert session in runner._waiting and own in runner._building
    finally:
        live.compiler.shutdown(wait=False, cancel_futures=True)
        hold.set()


@pytest.mark.parametrize("spent", [False, True])
def test_past_the_xla_build_budget_groups_and_max_speed_stay_plain(spent: bool) -> None:
    """TensorFlow never frees an XLA build: once the process has made `max_xla_builds`, a group
    that trains on queues no build, and max speed trains in its padded shape, not an exact one."""
    budget = xla_budget.made() + (0 if spent else 1000)
    live = LiveRuntime(Settings(use_xla=True, max_xla_builds=budget))
    runner = live.stacked
    hold = threading.Event()  # a compiler held busy: a build is queued, never run
    live.compiler = BackgroundPool(1, "xla")
    live.compiler.submit(hold.wait)
    try:
        session = live.open(MlpSession)
        # A shape no other test compiles (its batch pads to 4).
        session.configure({"hidden": [7, 3, 5], "batch_size": 3, "speed": "max"})
        assert (runner._own(session).unroll == 1) is spent
        group = session.group
        group.training_ticks = COMPILE_AFTER_TICKS
        runner._maybe_compile(group, group.prepare_idle())
        assert ((group.shape, 1) in runner._compiling) is not spent  # the group's XLA build
        assert any(t.unroll == EXACT_UNROLL for t in runner._building) is not spent
    finally:
        live.compiler.shutdown(wait=False, cancel_futures=True)
        hold.set()


def test_trainers_without_xla_builds_are_dropped_first() -> None:
    """TensorFlow never frees an XLA build: a trainer with builds is dropped after the plain ones,
    least recently used first within each, and never the one just asked for."""
    runner = LiveRuntime(Settings(max_traces=2)).stacked
    # Shapes no other test trains in (one input, layers of 3, batch 1).
    built, plain, new = (TraceShape(1, (3,) * depth, 1) for depth in (4, 5, 6))
    try:
        runner._trainer(built).xla_ready.add(1)  # as if built: only the bookkeeping matters here
        runner._trainer(plain)
        assert runner._trainer(new) in runner.trainers.values()
        kept = {key[0] for key in runner.trainers}
        assert kept == {built, new}
    finally:
        for key in [k for k in runner.trainers if k[0] in (built, plain, new)]:
            del runner.trainers[key]


def test_a_new_setting_hurries_the_next_frame_without_a_second_one_early() -> None:
    """A solo session's pace (`paced`): a config message's frame waits for nothing; the one
    after it keeps the pace again."""

    async def run() -> list[float]:
        hurry = asyncio.Event()
        loop = asyncio.get_running_loop()
        times = []
        async for _ in paced(0.5, hurry):  # a frame every 2 s
            times.append(loop.time())
            if len(times) == 1:
                loop.call_later(0.05, hurry.set)
            if len(times) == 3:
                return times

    first, hurried, paced_again = asyncio.run(run())
    assert hurried - first < 1.0
    assert paced_again - hurried >= 1.9


def test_a_session_closed_just_after_a_new_setting_stops_training() -> None:
    """A page that sends a setting and closes at once: the close must end the session's task
    (cancelling it while its hurried wait had just ended once let the task train on, unseen)."""

    async def run() -> bool:
        live = LiveRuntime(Settings(use_xla=False))
        async with live.lifespan(None):
            session = live.open(NeuronSession)
            session.play()
            deadline = time.monotonic() + 60  # a bound against a hang: its first call traces
            while session.step < 50 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            task = live.solo.tasks[session]
            await asyncio.sleep(0.005)  # between frames: in the pace's wait
            session.configure({"learning_rate": 0.05})
            live.close(session)
            await asyncio.sleep(0.3)
            return task.done()

    assert asyncio.run(run())


def test_a_restart_drops_the_old_runs_frame_not_yet_sent() -> None:
    """A diverged run's last frame must not reach the page after the new run's state."""
    s = NeuronSession(LiveRuntime(Settings(use_xla=False)))
    s.diverge()
    s.offer_frame(json.dumps({"type": "frame", "diverged": True}), b"")
    s.step_once()  # starts over

    async def outgoing() -> list:
        sent = []
        while True:
            try:
                sent.append(await asyncio.wait_for(s.next_outgoing(), 0.05))
            except TimeoutError:
                return sent

    sent = asyncio.run(outgoing())
    assert [frame for _, frame in sent if frame is not None] == []
    assert [json.loads(text)["diverged"] for text, _ in sent] == [True, False]
