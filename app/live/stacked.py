"""The stacked runner: sessions that pad to one trace shape train together, one compiled call a group.

Every frame (`frame_rate` a second) each group with work runs one call in the shared pool, off the
event loop; groups run in parallel up to `tf_threads`. The trainers (compiled traces) are shared by
every app in the process and kept in an LRU of `max_traces`; a group's XLA build runs in the
background once the group trains, and calls switch to it when it is ready.
"""

import asyncio
import logging
import time
from collections import OrderedDict

from app.live.group import FrameResult, Group
from app.live.session import LiveSession, paced
from models.datasets import DOMAIN
from models.mlp import Batch, TraceShape, Trainer

log = logging.getLogger(__name__)
# Each architecture's trainer traces once, by design; TF's retracing detector counts them as one
# function and would warn about "excessive retracing" on every new shape.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
COMPILE_AFTER_TICKS = 10

_TRAINERS: OrderedDict[tuple[TraceShape, int, int], Trainer] = OrderedDict()


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

    # -- placing sessions ------------------------------------------------------------------
    def add(self, session: LiveSession) -> None:
        """Puts the session in a group of its trace shape and speed class, loading its slot."""
        shape, max_speed = session.arch.shape, session.is_max_speed
        limit = self.settings.max_group_size
        group = next(
            (
                g
                for g in self.groups
                if (g.shape, g.max_speed) == (shape, max_speed) and g.has_room(limit)
            ),
            None,
        )
        if group is None:
            s = self.settings
            group = Group(self._trainer(shape), max_speed, s.grid_size, s.neuron_grid_size)
            self.groups.append(group)
        group.add(session)

    def remove(self, session: LiveSession) -> None:
        group = session.group
        if group is None:
            return
        group.remove(session)
        if group.empty:
            self.groups.remove(group)

    def move(self, session: LiveSession) -> None:
        """Moves a session to the group of its new speed class with the network it trains."""
        step, weights = session.step, [p[session.slot].copy() for p in session.group.params]
        self.remove(session)
        session.restart()  # the old slot's results in flight are stale now
        self.add(session)
        session.step = step
        for p, w in zip(session.group.params, weights, strict=True):
            p[session.slot] = w

    def _trainer(self, shape: TraceShape) -> Trainer:
        s = self.settings
        key = (shape, s.grid_size, s.neuron_grid_size)
        trainer = self.trainers.get(key)
        if trainer is None:
            trainer = Trainer(shape, s.grid_size, s.neuron_grid_size, DOMAIN)
            self.trainers[key] = trainer
            self._evict_trainers()
        self.trainers.move_to_end(key)
        return trainer

    def _evict_trainers(self) -> None:
        # Dropping a trainer frees its traces; one a group still holds lives on with the group.
        in_use = {g.trainer for g in self.groups}
        for key, trainer in list(self.trainers.items()):
            if len(self.trainers) <= self.settings.max_traces:
                break
            if trainer not in in_use:
                del self.trainers[key]

    def warm_up(self, sessions: list[tuple[LiveSession, bool]]) -> None:
        """Traces the shapes of `sessions` in the background, so nobody waits for them; the call of
        a session paired with True is XLA-compiled too."""
        s = self.settings
        jobs = []
        for session, compile_it in sessions:
            group = Group(self._trainer(session.arch.shape), False, s.grid_size, s.neuron_grid_size)
            group.add(session)
            jobs.append((group.trainer, group.prepare()[0], compile_it))

        def warm() -> None:
            for trainer, batch, compile_it in jobs:
                trainer(batch)
                if compile_it:
                    trainer.compile_xla(batch)

        self.runtime.compiler.submit(warm)

    # -- training --------------------------------------------------------------------------
    async def run(self) -> None:
        async for _ in paced(self.settings.frame_rate):
            try:
                await self.tick()
            except Exception:  # one bad tick must not stop every session's training
                log.exception("training tick failed")

    async def tick(self) -> None:
        """One call per group with work, in parallel in the pool; then frames go out."""
        loop = asyncio.get_running_loop()
        work = []
        for group in list(self.groups):
            prepared = group.prepare()
            if prepared is not None:
                batch, jobs = prepared
                call = loop.run_in_executor(self.runtime.pool, _call, group, batch, jobs)
                work.append((group, batch, call))
        for group, batch, call in work:
            try:
                results, seconds, k_max = await call
            except Exception:  # one group's failure must not drop the other groups' frames
                log.exception("training call failed for %s", group.shape)
                continue
            group.adapt_max_steps(seconds, k_max)
            group.training_ticks += k_max > 0
            for result in results:
                if group.apply(result):
                    _deliver(result)
            self._maybe_compile(group, batch)

    def _maybe_compile(self, group: Group, batch: Batch) -> None:
        """Builds the XLA version of a group's call in the background; calls switch when ready."""
        if not self.settings.use_xla:
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
                    trainer.compile_xla(batch)
            finally:
                self._compiling.discard(key)

        self.runtime.compiler.submit(compile_if_current)


def _deliver(result: FrameResult) -> None:
    session = result.job.session
    if not result.finite:
        session.diverge()
    session.offer_frame(result.text, result.data)


def _call(group: Group, batch: Batch, jobs) -> tuple[list, float, int]:
    started = time.perf_counter()
    params, metrics, frames = group.trainer(batch)
    seconds = time.perf_counter() - started
    return group.build_frames(jobs, params, metrics, frames), seconds, int(batch.k.max())
