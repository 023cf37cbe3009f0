"""Registry of live sessions: the cap, the compiled trainers they share, and the ticker that trains them.

Every tick (`frame_rate` per second) each group of sessions with work runs one compiled call in a
bounded thread pool, off the event loop; groups run in parallel up to `tf_threads`.
"""

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from pydantic import ValidationError

from app.live.channel import ServerFull, describe_config_error
from app.live.group import Group
from app.live.session import ARCH_FIELDS, DATA_FIELDS, Session
from app.protocol import (
    MAX_LAYERS,
    MAX_NEURONS,
    MAX_STEPS_PER_FRAME,
    DataMessage,
    MlpConfig,
    StateMessage,
)
from app.settings import Settings
from models.datasets import DOMAIN
from models.mlp import Batch, TraceShape, Trainer

log = logging.getLogger(__name__)
# Each architecture's trainer traces once, by design; TF's retracing detector counts them as one
# function and would warn about "excessive retracing" on every new shape.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
COMPILE_AFTER_TICKS = 10


_TRAINERS: OrderedDict[tuple[TraceShape, int, int], Trainer] = OrderedDict()


class Hub:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.sessions: set[Session] = set()
        self.groups: list[Group] = []
        self.trainers = _TRAINERS  # traces are per process: every hub (and test app) shares them
        self._pool: ThreadPoolExecutor | None = None
        self._compiler: ThreadPoolExecutor | None = None
        self._compiling: set[tuple[TraceShape, int]] = set()
        self._ticker: asyncio.Task | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @asynccontextmanager
    async def lifespan(self, app):
        self._pool = ThreadPoolExecutor(self.settings.tf_threads, thread_name_prefix="tf")
        self._compiler = ThreadPoolExecutor(1, thread_name_prefix="xla")
        self._ticker = asyncio.create_task(self._run_ticker())
        self._warm_up()
        try:
            yield
        finally:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            # A compile in progress finishes (it cannot be interrupted); queued ones are dropped.
            self._compiler.shutdown(wait=True, cancel_futures=True)
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _warm_up(self) -> None:
        """Traces the shapes a class reaches first (the default network, compiled too, then one
        fewer and one more hidden layer) in the background at start-up, so nobody waits for them."""
        s = self.settings
        jobs = []
        for hidden, compile_it in (
            ([4, 2], s.use_xla),
            ([4], False),
            ([4, 2, 2], False),
            ([], False),
        ):
            session = Session(MlpConfig(hidden=hidden))
            group = Group(self._trainer(session.arch.shape), False, s.grid_size, s.neuron_grid_size)
            group.add(session)
            jobs.append((group.trainer, group.prepare()[0], compile_it))

        def warm() -> None:
            for trainer, batch, compile_it in jobs:
                trainer(batch)
                if compile_it:
                    trainer.compile_xla(batch)

        self._compiler.submit(warm)

    def limits(self) -> dict:
        return {
            "max_layers": MAX_LAYERS,
            "max_neurons": MAX_NEURONS,
            "max_steps_per_frame": MAX_STEPS_PER_FRAME,
            "frame_rate": self.settings.frame_rate,
            "max_message_bytes": self.settings.ws_max_message_bytes,
        }

    # -- sessions --------------------------------------------------------------------------
    def open(self) -> Session:
        if len(self.sessions) >= self.settings.max_sessions:
            raise ServerFull(
                f"The server is full: {self.settings.max_sessions} sessions are open. "
                "Try again in a minute."
            )
        session = Session(MlpConfig())
        self.sessions.add(session)
        self._place(session)
        session.send(self._state(session))
        session.send(self._data(session))
        return session

    def close(self, session: Session) -> None:
        session.closed = True
        self.sessions.discard(session)
        self._unplace(session)

    def _state(self, session: Session) -> StateMessage:
        return StateMessage(
            version=session.version,
            config=session.config,
            running=session.running,
            diverged=session.diverged,
            limits=self.limits(),
        )

    def _data(self, session: Session) -> DataMessage:
        x_tr, y_tr, x_te, y_te = session.data

        def rows(x, y):
            return [
                [round(float(a), 4), round(float(b), 4), int(c)]
                for (a, b), c in zip(x, y, strict=True)
            ]

        return DataMessage(
            version=session.version, domain=DOMAIN, train=rows(x_tr, y_tr), test=rows(x_te, y_te)
        )

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

    def _place(self, session: Session) -> None:
        """Puts the session in the group of its trace shape and speed class."""
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
        session.restart()
        group.add(session)

    def _unplace(self, session: Session) -> None:
        group = session.group
        if group is None:
            return
        group.remove(session)
        if group.empty:
            self.groups.remove(group)

    # -- control messages ------------------------------------------------------------------
    def configure(self, session: Session, changes: dict) -> None:
        """Applies a partial config; on a bad value nothing changes and the error names it."""
        try:
            config = MlpConfig.model_validate({**session.config.model_dump(), **changes})
        except ValidationError as e:
            session.send_error(*describe_config_error(e, changes))
            return
        old = session.config
        changed = {k for k in changes if getattr(old, k) != getattr(config, k)}
        session.config = config
        session.version += 1
        if changed & DATA_FIELDS:
            session.load_data()
        restart = bool(changed & (DATA_FIELDS | ARCH_FIELDS))
        moves = "speed" in changed and (old.speed == "max") != (config.speed == "max")
        if restart or moves:
            step = session.step
            weights = [p[session.slot].copy() for p in session.group.params]
            self._unplace(session)
            self._place(session)
            if not restart:  # a speed change moves the network it trains to the other group
                session.step = step
                for p, w in zip(session.group.params, weights, strict=True):
                    p[session.slot] = w
        else:
            session.group.set_rates(session)
            session.needs_frame = not session.running
        session.send(self._state(session))
        if changed & DATA_FIELDS:
            session.send(self._data(session))

    def play(self, session: Session) -> None:
        if session.diverged:
            self._restart(session)
        session.running = True
        session.send(self._state(session))

    def pause(self, session: Session) -> None:
        session.running = False
        session.send(self._state(session))

    def step(self, session: Session) -> None:
        if session.diverged:
            self._restart(session)
        session.running = False
        session.single_step = True
        session.send(self._state(session))

    def reset(self, session: Session) -> None:
        session.running = False
        self._restart(session)
        session.send(self._state(session))

    def _restart(self, session: Session) -> None:
        session.restart()
        session.group.load(session)

    # -- the ticker ------------------------------------------------------------------------
    async def _run_ticker(self) -> None:
        period = 1.0 / self.settings.frame_rate
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.tick()
            except Exception:  # one bad tick must not stop every session's training
                log.exception("training tick failed")
            await asyncio.sleep(max(0.0, period - (loop.time() - started)))

    def _pause_idle(self) -> None:
        """A tab left playing with nobody at it pauses, so it stops taking a class's CPU."""
        limit = self.settings.idle_pause_seconds
        now = time.monotonic()
        for session in self.sessions:
            if session.running and now - session.last_input > limit:
                session.running = False
                session.send(self._state(session))
                session.send_error(
                    f"Paused after {limit / 60:g} minutes without input; press Play to go on."
                )

    async def tick(self) -> None:
        """One call per group with work, in parallel in the TF pool; then frames go out."""
        loop = asyncio.get_running_loop()
        self._pause_idle()
        work = []
        for group in list(self.groups):
            prepared = group.prepare()
            if prepared is not None:
                batch, jobs = prepared
                work.append(
                    (group, batch, loop.run_in_executor(self._pool, _call, group, batch, jobs))
                )
        for group, batch, future in work:
            try:
                results, seconds, k_max = await future
            except Exception:  # one group's failure must not drop the other groups' frames
                log.exception("training call failed for %s", group.shape)
                continue
            group.adapt_max_steps(seconds, k_max)
            group.training_ticks += k_max > 0
            for result in results:
                if group.apply(result):
                    self._deliver(result)
            self._maybe_compile(group, batch)

    def _deliver(self, result) -> None:
        session = result.job.session
        if not result.finite and not session.diverged:
            session.diverged = True
            session.running = False
            session.send(self._state(session))
        session.offer_frame(result.text, result.data)

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

        self._compiler.submit(compile_if_current)


def _call(group: Group, batch: Batch, jobs) -> tuple[list, float, int]:
    started = time.perf_counter()
    params, metrics, frames = group.trainer(batch)
    seconds = time.perf_counter() - started
    return group.build_frames(jobs, params, metrics, frames), seconds, int(batch.k.max())
