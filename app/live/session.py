"""The base of every live lab's session: config → validate → version, the verbs, idle pause, pacing.

A lab subclasses `LiveSession` with its config model and client messages, names the runner that
trains it (solo or stacked), and fills in the hooks: `load_data`, `init_weights`, `data_message`,
`limits` (and `reconfigure`, when a config change means more than a restart or a new frame). A solo
session also makes its own frames (`train_frame`); a stacked one tells its group what it trains.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import ClassVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from app.live.channel import describe_config_error, parse_message
from app.live.outbox import Outbox
from app.protocol.shared import CLIENT_TYPES, StateMessage


class ConfigError(ValueError):
    """A config the session refuses; the message names the field, the value and what is allowed."""

    def __init__(self, message: str, field: str | None):
        super().__init__(message)
        self.field = field


class LiveSession(Outbox):
    """One socket's session. Only the event loop touches it; runners train on snapshots of it."""

    config_type: ClassVar[type[BaseModel]]
    client_message: ClassVar[TypeAdapter]  # the lab's client messages, discriminated by `type`
    client_types: ClassVar[str] = CLIENT_TYPES  # their names, for the "unknown type" error
    runner_type: ClassVar[type]  # SoloRunner or StackedRunner
    costly: ClassVar[bool] = False  # a solo session whose frames take milliseconds of a core
    data_fields: ClassVar[frozenset[str]] = frozenset()  # a change draws new data and restarts
    restart_fields: ClassVar[frozenset[str]] = frozenset()  # a change restarts (new weights)
    # A config field whose value offers only `datasets[value]` as `dataset` (the MLP's problem,
    # the neurons' model); None where every data set fits.
    dataset_choice: ClassVar[str | None] = None
    datasets: ClassVar[Mapping[str, Sequence[str]]] = {}

    def __init__(self, runtime, config: BaseModel | None = None):
        super().__init__()
        self.settings = runtime.settings
        self.runner = runtime.runners[self.runner_type]
        self.config = config or self.config_type()
        self.version = 0  # config messages applied; every frame carries it
        self.running = False
        self.single_step = False
        self.frame_due = True  # a frame is wanted even without training (a new config, a reset)
        self.diverged = False
        self.step = 0
        self.gen = 0  # bumped whenever the weights are re-initialised: older results are stale
        self.closed = False
        self.last_input = time.monotonic()  # when the client last sent a message
        self.wake = asyncio.Event()  # set while there is work; the solo runner waits on it
        self.hurry = asyncio.Event()  # a new config: its frame need not wait out the frame's pace
        self.load_data()

    # -- the lab's hooks -------------------------------------------------------------------
    def load_data(self) -> None:
        """Draws the data set the config describes."""
        raise NotImplementedError

    def init_weights(self) -> None:
        """Sets the initial weights the seed gives."""
        raise NotImplementedError

    def data_message(self) -> BaseModel:
        raise NotImplementedError

    def limits(self) -> dict:
        """What the page needs to know of the server's limits, sent in every `state`."""
        raise NotImplementedError

    def handle(self, message: BaseModel) -> None:
        """A client message of the lab's own, beyond `config` and the four verbs."""
        raise NotImplementedError

    # -- life ------------------------------------------------------------------------------
    def open(self) -> None:
        """A new run at step 0; the runner takes it; the page gets state, data and a first frame."""
        self.restart()
        self.runner.add(self)
        self.send_state()
        self.send_data()

    def close(self) -> None:
        self.closed = True
        self.runner.remove(self)

    def restart(self) -> None:
        """A new run from step 0 with the seed's initial weights; its first frame is due."""
        self.gen += 1
        self.step = 0
        self.diverged = False
        self.drop_frame()  # else the old run's last frame could follow the new run's state
        self.init_weights()
        self.want_frame()

    # -- messages in -----------------------------------------------------------------------
    def receive(self, text: str) -> None:
        """Applies one client message; anything wrong becomes an `error` to this client."""
        self.last_input = time.monotonic()
        message = parse_message(self.client_message, text, self, self.client_types)
        if message is None:
            return
        match message.type:
            case "config":
                self.configure(message.changes())
            case "play":
                self.play()
            case "pause":
                self.pause()
            case "step":
                self.step_once()
            case "reset":
                self.reset()
            case _:
                self.handle(message)

    def configure(self, changes: dict) -> None:
        """Applies a partial config; on a bad value nothing changes and the error names it."""
        try:
            config = self.validate(changes)
        except ConfigError as e:
            self.send_error(str(e), e.field)
            return
        old, self.config = self.config, config
        changed = {k for k in type(config).model_fields if getattr(old, k) != getattr(config, k)}
        self.version += 1
        self.hurry.set()
        if changed & self.data_fields:
            self.load_data()
        self.reconfigure(old, changed)
        self.send_state()
        if changed & self.data_fields:
            self.send_data()

    def validate(self, changes: dict) -> BaseModel:
        """The config with `changes` applied, or a `ConfigError` naming the first bad field.

        A switch of `dataset_choice` alone keeps the data set when the new choice offers it, else
        takes the choice's first one.
        """
        choice = changes.get(self.dataset_choice) if self.dataset_choice else None
        offered = self.datasets.get(choice, ()) if isinstance(choice, str) else ()
        if offered and "dataset" not in changes and self.config.dataset not in offered:
            changes = {**changes, "dataset": offered[0]}
        try:
            config = self.config_type.model_validate({**self.config.model_dump(), **changes})
        except ValidationError as e:
            raise ConfigError(*describe_config_error(e, changes)) from None
        if self.dataset_choice:
            choice = getattr(config, self.dataset_choice)
            if config.dataset not in self.datasets[choice]:
                raise ConfigError(
                    f"Invalid dataset for the {choice} {self.dataset_choice}: expected one of "
                    f"{', '.join(self.datasets[choice])}. Received: dataset={config.dataset!r}",
                    "dataset",
                )
        return config

    def restarts(self, changed: set[str]) -> bool:
        return bool(changed & (self.data_fields | self.restart_fields))

    def reconfigure(self, old: BaseModel, changed: set[str]) -> None:
        """Applies an accepted config to the run: a restart, or a frame showing the new version."""
        if self.restarts(changed):
            self.restart()
        elif not self.running:
            self.want_frame()  # a paused page still gets a frame with the new version

    def play(self) -> None:
        self._advance(running=True)

    def pause(self) -> None:
        self.running = False
        self.send_state()

    def step_once(self) -> None:
        self._advance(running=False)

    def _advance(self, running: bool) -> None:
        """Plays on (`running`) or takes one step; a diverged run starts again first."""
        if self.diverged:
            self.restart()
        self.running = running
        self.single_step = not running
        self.want_frame()
        self.send_state()

    def reset(self) -> None:
        self.running = False
        self.restart()
        self.send_state()

    def pause_if_idle(self, now: float, limit: float) -> None:
        """A tab left playing with nobody at it pauses, so it stops taking a class's CPU."""
        if self.running and now - self.last_input > limit:
            self.running = False
            self.send_state()
            self.send_error(
                f"Paused after {limit / 60:g} minutes without input; press Play to go on."
            )

    # -- frames ----------------------------------------------------------------------------
    def want_frame(self) -> None:
        self.frame_due = True
        self.wake.set()

    @property
    def has_work(self) -> bool:
        return self.running or self.single_step or self.frame_due

    def take_frame(self) -> bool:
        """Claims the frame that is due for a call; True when that call trains."""
        training = self.running or self.single_step
        self.single_step = self.frame_due = False
        return training

    def diverge(self) -> None:
        """A loss or weight is not finite: training stops; the `state` saying so precedes the frame."""
        if not self.diverged:
            self.diverged = True
            self.running = False
            self.send_state()

    # -- messages out ----------------------------------------------------------------------
    def send_state(self) -> None:
        self.send(
            StateMessage[self.config_type](
                version=self.version,
                config=self.config,
                running=self.running,
                diverged=self.diverged,
                limits=self.limits(),
            )
        )

    def send_data(self) -> None:
        self.send(self.data_message())


async def paced(frame_rate: float, hurry: asyncio.Event | None = None) -> AsyncIterator[None]:
    """Yields at most `frame_rate` times a second, for a loop whose body makes one frame; or
    sooner once `hurry` is set (a student's new setting: its frame waits for nothing else)."""
    loop = asyncio.get_running_loop()
    period = 1.0 / frame_rate
    while True:
        started = loop.time()
        yield
        wait = max(0.0, period - (loop.time() - started))
        if hurry is None:
            await asyncio.sleep(wait)
            continue
        # Not `wait_for`: on Python 3.11 it swallows a cancel that comes just after the event
        # was set (a page sending a setting and closing at once), and the closed session's task
        # trained on, unseen. `timeout` re-raises it.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await hurry.wait()
        hurry.clear()
