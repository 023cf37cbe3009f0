"""The stacked runner: sessions that pad to one trace shape train together, one compiled call a group.

Every frame (`frame_rate` a second) each group with work runs one call in the shared pool, off the
event loop; groups run in parallel up to `tf_threads`. The trainers (compiled traces) are shared by
every app in the process and kept in an LRU of `max_traces`; a group's XLA build runs in the
background once the group trains, and calls switch to it when it is ready.

A session never waits for a trace: while its own shape is traced (or, at max speed, its exact
shape is compiled) in the background, it trains in the nearest wider shape that is ready, and
moves to its own, weights and step kept, at the first tick after it is.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from concurrent.futures import Future

from app.live.group import Group
from app.live.session import LiveSession, paced
from models.datasets import DOMAIN
from models.mlp import Architecture, Batch, TraceShape, Trainer

log = logging.getLogger(__name__)
# Each architecture's trainer traces once, by design; TF's retracing detector counts them as one
# function and would warn about "excessive retracing" on every new shape.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
COMPILE_AFTER_TICKS = 10
EXACT_UNROLL = (
    2  # steps per loop iteration in an exact (max-speed) trace: 4 compiles 0.5 s longer for no gain
)

_TRAINERS: OrderedDict[tuple[TraceShape, int, int, int], Trainer] = OrderedDict()


def traces_held() -> int:
    """The trainers' traces and XLA builds (one a group size) this process holds."""
    return sum(t.traced + len(t.xla_ready) for t in list(_TRAINERS.values()))


class StackedRunner:
    """Its sessions say what they train (`arch`, `is_max_speed`, `data`, `initial_params()`,
    `steps_per_frame(k)`) and hold their place (`group`, `slot`)."""

    def __init__(self, runtime):
        self.runtime = runtime
        self.settings = runtime.settings
        self.groups: list[Group] = []
        # Traces are per process: every runtime (and test app) shares them.
        self.trainers = _TRAINERS
        self._compiling: set[tuple[TraceShape, int]] = set()
        # Own shapes traced or compiled in the background, and the sessions in a stand-in shape
        # until theirs is ready. Only the event loop touches them.
        self._building: dict[Trainer, Future] = {}
        self._waiting: set[LiveSession] = set()

    # -- placing sessions ------------------------------------------------------------------
    def add(self, session: LiveSession) -> None:
        """Puts the session in a group of the shape it trains in now and its speed class."""
        trainer = self._place(session)
        max_speed = session.is_max_speed
        limit = self.settings.max_group_size
        group = next(
            (
                g
                for g in self.groups
                if (g.trainer, g.max_speed) == (trainer, max_speed) and g.has_room(limit)
            ),
            None,
        )
        if group is None:
            s = self.settings
            group = Group(trainer, max_speed, s.grid_size, s.neuron_grid_size)
            self.groups.append(group)
        group.add(session)

    def _own(self, session: LiveSession) -> Trainer:
        """The trainer a session belongs in: its exact shape at max speed (while the process may
        still make XLA builds), else its padded one."""
        arch = session.arch
        if session.is_max_speed and self.settings.may_build_xla():
            return self._trainer(arch.exact, EXACT_UNROLL)
        return self._trainer(arch.shape)

    def _ready(self, trainer: Trainer) -> bool:
        exact = trainer.unroll == EXACT_UNROLL
        return 1 in trainer.xla_ready if exact else trainer.traced

    def _place(self, session: LiveSession) -> Trainer:
        """Its own trainer when ready (or when nothing runs in the background to build it);
        else, while that one is built, the nearest ready one its network fits."""
        own = self._own(session)
        self._waiting.discard(session)
        if self._ready(own) or self.runtime.compiler is None:
            return own
        stand_in = self._nearest_ready(session.arch)
        if stand_in is None:
            if own.unroll == 1:
                return own  # nothing fits: its first call traces its own shape
            # An exact trace runs plain (slow: its loop is unrolled) until it is compiled: train
            # in the padded shape meanwhile, its first call tracing it (a plain loop, quick).
            stand_in = self._trainer(session.arch.shape)
        self._build(own, session)
        self._waiting.add(session)
        return stand_in

    def _nearest_ready(self, arch: Architecture) -> Trainer | None:
        fits = [t for t in self.trainers.values() if self._ready(t) and t.shape.fits(arch)]
        return min(fits, key=lambda t: (t.unroll != 1, _cost(t.shape)), default=None)

    def _build(self, trainer: Trainer, session: LiveSession) -> None:
        """Traces `trainer` (and compiles it for one network, if exact) in the background."""
        building = self._building.get(trainer)
        if building is not None and not building.done():
            return
        s = self.settings
        group = Group(trainer, False, s.grid_size, s.neuron_grid_size)
        group.add(type(session)(self.runtime, session.config))  # a stand-in with its config
        batch = group.prepare_idle()
        exact = trainer.unroll == EXACT_UNROLL

        def build() -> None:
            trainer.compile_xla(batch, s.max_xla_builds) if exact else trainer(batch)

        self._building[trainer] = self.runtime.compiler.submit(build)

    def _swap_ready(self) -> None:
        """Moves every waiting session whose own trainer became ready into it."""
        failed = set()
        for trainer, building in list(self._building.items()):
            if building.done():
                del self._building[trainer]
                if building.exception() is not None:
                    log.error("building %s failed", trainer.shape, exc_info=building.exception())
                    failed.add(trainer)
        for session in list(self._waiting):
            if session.closed or session.group is None or self._own(session) in failed:
                self._waiting.discard(session)  # a failed build: it trains on in its stand-in
            elif self._ready(own := self._own(session)):
                self.move(session)
            else:  # its trainer may have been evicted meanwhile: build it again
                self._build(own, session)

    def remove(self, session: LiveSession) -> None:
        self._waiting.discard(session)
        group = session.group
        if group is None:
            return
        group.remove(session)
        if group.empty:
            self.groups.remove(group)

    def move(self, session: LiveSession) -> None:
        """Moves a session to the group it belongs in now (its speed class, its shape), with the
        network it trains and its step."""
        step, weights = session.step, session.group.params_of(session)
        self.remove(session)
        session.restart()  # the old slot's results in flight are stale now
        self.add(session)
        session.step = step
        session.group.set_params(session, weights)

    def _trainer(self, shape: TraceShape, unroll: int = 1) -> Trainer:
        s = self.settings
        key = (shape, s.grid_size, s.neuron_grid_size, unroll)
        trainer = self.trainers.get(key)
        if trainer is None:
            self._evict_trainers(s.max_traces - 1)
            trainer = Trainer(shape, s.grid_size, s.neuron_grid_size, DOMAIN, unroll)
            self.trainers[key] = trainer
        self.trainers.move_to_end(key)
        return trainer

    def _evict_trainers(self, keep: int) -> None:
        """Drops trainers no group holds until `keep` are left: the least recently used first,
        those without XLA builds before those with. Dropping a trainer frees its graphs, not its
        builds (`models/xla_budget.py`): its shape coming back would build them again."""
        in_use = {g.trainer for g in self.groups} | set(self._building)
        unused = [key for key, trainer in self.trainers.items() if trainer not in in_use]
        for key in sorted(unused, key=lambda k: bool(self.trainers[k].xla_ready)):  # stable: LRU
            if len(self.trainers) <= keep:
                break
            del self.trainers[key]

    def warm_up(self, sessions: list[tuple[LiveSession, bool]]) -> None:
        """Traces the shapes of `sessions` in the background, so nobody waits for them; the call of
        a session paired with True is XLA-compiled too, for one network and, last, for every
        group size a class arriving in it reaches (2, 4, … `max_group_size`), and so is its exact
        max-speed trace."""
        s = self.settings
        builds, class_sizes = [], []  # (trainer, session, xla, group size)
        for session, compile_it in sessions:
            padded = self._trainer(session.arch.shape)
            builds.append((padded, session, False, 1))
            if compile_it:
                exact = self._trainer(session.arch.exact, EXACT_UNROLL)
                builds += [(padded, session, True, 1), (exact, session, True, 1)]
                size = 2
                while size <= s.max_group_size:
                    class_sizes.append((padded, session, True, size))
                    size *= 2
        jobs = []
        for trainer, session, xla, size in builds + class_sizes:
            group = Group(trainer, False, s.grid_size, s.neuron_grid_size)
            group.add(session)
            jobs.append((trainer, group.prepare_idle(size), xla))

        def warm(trainer: Trainer, batch: Batch, xla: bool) -> None:
            trainer.compile_xla(batch, s.max_xla_builds) if xla else trainer(batch)

        for job in jobs:  # one job each: an app that stops drops those not started yet
            self.runtime.compiler.submit(warm, *job)

    # -- training --------------------------------------------------------------------------
    async def run(self) -> None:
        async for _ in paced(self.settings.frame_rate):
            try:
                await self.tick()
            except Exception:  # one bad tick must not stop every session's training
                log.exception("training tick failed")

    async def tick(self) -> None:
        """One call per group with work, in parallel in the pool; then frames go out."""
        self._swap_ready()
        loop = asyncio.get_running_loop()
        work = []
        for group in list(self.groups):
            prepared = group.prepare()
            if prepared is not None:
                batch, jobs = prepared
                call = loop.run_in_executor(self.runtime.stacked_pool, _call, group, batch, jobs)
                work.append((group, batch, call))
        for group, batch, call in work:
            try:
                result, seconds, k_max = await call
            except Exception:  # one group's failure must not drop the other groups' frames
                log.exception("training call failed for %s", group.shape)
                continue
            if group.max_speed:
                group.budget.observe(k_max, seconds)
            group.training_ticks += k_max > 0
            for job, message, finite in group.apply(result):
                if not finite:
                    job.session.diverge()
                job.session.offer_frame("", message)
            self._maybe_compile(group, batch)

    def _maybe_compile(self, group: Group, batch: Batch) -> None:
        """Builds the XLA version of a group's call in the background; calls switch when ready."""
        s = self.settings
        if not s.may_build_xla():
            return
        trainer, capacity = group.trainer, len(group.slots)
        key = (trainer.shape, capacity)
        if capacity in trainer.xla_ready or key in self._compiling:
            return
        if group.training_ticks < COMPILE_AFTER_TICKS:  # a glance at a shape is not worth a compile
            return
        self._compiling.add(key)

        def compile_if_current() -> None:
            # A group that grew or emptied while this waited would never use it: skip it.
            try:
                if len(group.slots) == capacity and not group.empty:
                    trainer.compile_xla(batch, s.max_xla_builds)
            finally:
                self._compiling.discard(key)

        self.runtime.compiler.submit(compile_if_current)


def _cost(shape: TraceShape) -> int:
    # Multiply-adds of one example through the shape: what a stand-in trace costs a call.
    sizes = shape.sizes
    return shape.batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def _call(group: Group, batch: Batch, jobs):
    started = time.perf_counter()
    params, metrics, frames = group.trainer(batch)
    seconds = time.perf_counter() - started
    return group.build_frames(jobs, params, metrics, frames), seconds, int(batch.k.max())
