"""One single-neuron session per socket: its config, its data, and the task that trains it.

Each session is small (one neuron, ≤ 500 points), so it runs its own loop: while playing, one
compiled call of `speed` steps per frame in a bounded thread pool shared by every session, paced to
FRAME_RATE; the newest frame replaces an unsent one (latest frame wins).
"""

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from pydantic import ValidationError

from app.live.channel import ServerFull, describe_config_error
from app.live.outbox import Outbox
from app.protocol_neurons import (
    DATASETS,
    MAX_STEPS_PER_FRAME,
    NeuronConfig,
    NeuronDataMessage,
    NeuronFrameMessage,
    NeuronStateMessage,
)
from app.settings import Settings
from models import neurons
from models.datasets import make_xor

FRAME_RATE = 30.0
N_POINTS = {"line": 60, "linear": 200, "xor": 200, "three": 240}
# Changing these draws new data and new weights; learning_rate and speed apply to the running neuron.
DATA_FIELDS = frozenset(
    {"model", "dataset", "noise", "slope", "intercept", "iris_features", "seed"}
)
_ROUND = 4

# TF releases the GIL: two threads keep both cores busy without starving the event loop.
POOL = ThreadPoolExecutor(2, thread_name_prefix="neurons")


def load_data(c: NeuronConfig) -> dict:
    """The session's points as model inputs, plus what the page draws."""
    if c.dataset == "iris":
        iris = neurons.load_iris(tuple(c.iris_features))
        x, y, domain = iris["x"], iris["y"], neurons.IRIS_DOMAIN
        axes = [f"{name.replace('_', ' ')} (z-score)" for name in c.iris_features]
        classes = list(neurons.IRIS_CLASSES)
    elif c.dataset == "line":
        x, y = neurons.make_line(N_POINTS["line"], c.noise, c.seed, c.slope, c.intercept)
        domain, axes, classes = neurons.DOMAIN, ["x", "y"], []
    else:
        make = {"linear": neurons.make_linear, "xor": make_xor, "three": neurons.make_three_class}
        x, y = make[c.dataset](N_POINTS[c.dataset], c.noise, c.seed)
        domain, axes = neurons.DOMAIN, ["x₁", "x₂"]
        classes = ["class 0", "class 1", "class 2"][: 3 if c.model == "softmax" else 2]
    if c.model == "softmax":
        y = y.astype(np.int32)
    cols = [x[:, 0], y] if c.model == "linear" else [x[:, 0], x[:, 1], y]
    points = np.round(np.stack(cols, axis=1).astype(np.float64), _ROUND).tolist()
    return {"x": x, "y": y, "domain": domain, "axes": axes, "classes": classes, "points": points}


class NeuronSession(Outbox):
    """State of one session. Only the event loop touches it; the pool works on copies."""

    def __init__(self):
        super().__init__()
        self.config = NeuronConfig()
        self.version = 0
        self.running = False
        self.single_step = False
        self.diverged = False
        self.gen = (
            0  # bumped when the weights are re-initialised: results of older calls are dropped
        )
        self.closed = False
        self._work = asyncio.Event()  # set while a frame is wanted: playing, a step, or a change
        self._wanted = False
        self.load()

    # -- state -----------------------------------------------------------------------------
    def load(self) -> None:
        self.data = load_data(self.config)
        self.restart()

    def restart(self) -> None:
        """Step 0 with the seed's initial weights; a frame of them follows."""
        self.w, self.b = neurons.init_params(self.config.model, self.config.seed)
        self.step = 0
        self.diverged = False
        self.grid = b""
        self.gen += 1
        self._want_frame()

    def configure(self, changes: dict) -> None:
        """Applies a partial config; a bad value changes nothing and the error names it."""
        # A model switch alone keeps the data set when the new model can learn it.
        model = changes.get("model")
        if model and "dataset" not in changes and self.config.dataset not in DATASETS[model]:
            changes = {**changes, "dataset": DATASETS[model][0]}
        try:
            config = NeuronConfig.model_validate({**self.config.model_dump(), **changes})
        except ValidationError as e:
            self.send_error(*describe_config_error(e, changes))
            return
        if config.dataset not in DATASETS[config.model]:
            allowed = ", ".join(DATASETS[config.model])
            self.send_error(
                f"Invalid dataset for the {config.model} model: expected one of {allowed}. "
                f"Received: dataset={config.dataset!r}",
                "dataset",
            )
            return
        changed = {k for k in changes if getattr(self.config, k) != getattr(config, k)}
        self.config = config
        self.version += 1
        if changed & DATA_FIELDS:
            self.load()
        elif not self.running:
            self._want_frame()  # the paused page still gets a frame with the new version
        self.send_state()
        if changed & DATA_FIELDS:
            self.send_data()

    def play(self) -> None:
        if self.diverged:
            self.restart()
        self.running = True
        self._want_frame()
        self.send_state()

    def pause(self) -> None:
        self.running = False
        self.send_state()

    def step_once(self) -> None:
        if self.diverged:
            self.restart()
        self.running = False
        self.single_step = True
        self._want_frame()
        self.send_state()

    def reset(self) -> None:
        self.running = False
        self.restart()
        self.send_state()

    # -- training --------------------------------------------------------------------------
    def _want_frame(self) -> None:
        self._wanted = True
        self._work.set()

    async def run(self) -> None:
        """Trains while playing, one compiled call a frame; sends a frame after every change."""
        loop = asyncio.get_running_loop()
        period = 1.0 / FRAME_RATE
        while not self.closed:
            await self._work.wait()
            started = loop.time()
            steps = self.config.speed if (self.running or self.single_step) else 0
            self.single_step = self._wanted = False
            gen, version, c, data = self.gen, self.version, self.config, self.data
            frame = await loop.run_in_executor(
                POOL,
                neurons.train,
                c.model,
                data["x"],
                data["y"],
                self.w,
                self.b,
                c.learning_rate,
                steps,
                data["domain"],
            )
            if gen == self.gen:
                self._apply(frame, steps, version)
            if not (self.running or self.single_step or self._wanted):
                self._work.clear()
            await asyncio.sleep(max(0.0, period - (loop.time() - started)))

    def _apply(self, frame: neurons.Frame, steps: int, version: int) -> None:
        self.step += steps
        if frame.finite:
            self.w, self.b, self.grid = frame.w, frame.b, frame.grid
        elif not self.diverged:
            self.diverged = True
            self.running = False
            self.send_state()
        ok = not self.diverged
        message = NeuronFrameMessage(
            version=version,
            step=self.step,
            loss=frame.loss if ok else None,
            accuracy=frame.accuracy if ok and self.config.model != "linear" else None,
            # Weights stay the last finite ones: never NaN on the wire.
            weights=self.w.astype(np.float64).tolist(),
            bias=self.b.astype(np.float64).tolist(),
            diverged=self.diverged,
            running=self.running,
            grid_size=neurons.GRID_SIZE,
            frame_bytes=len(self.grid),
        )
        self.offer_frame(message.model_dump_json(), self.grid)

    # -- outgoing --------------------------------------------------------------------------
    def limits(self) -> dict:
        return {
            "max_steps_per_frame": MAX_STEPS_PER_FRAME,
            "frame_rate": FRAME_RATE,
            "grid_size": neurons.GRID_SIZE,
            "datasets": DATASETS,
        }

    def send_state(self) -> None:
        self.send(
            NeuronStateMessage(
                version=self.version,
                config=self.config,
                running=self.running,
                diverged=self.diverged,
                limits=self.limits(),
            )
        )

    def send_data(self) -> None:
        d = self.data
        self.send(
            NeuronDataMessage(
                version=self.version,
                model=self.config.model,
                dataset=self.config.dataset,
                domain=d["domain"],
                axes=d["axes"],
                classes=d["classes"],
                points=d["points"],
            )
        )


class NeuronSessions:
    """The open sessions of one app, capped at `settings.max_sessions`."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.sessions: set[NeuronSession] = set()
        self.tasks: dict[NeuronSession, asyncio.Task] = {}

    def open(self) -> NeuronSession:
        if len(self.sessions) >= self.settings.max_sessions:
            raise ServerFull(
                f"The server is full: {self.settings.max_sessions} single-neuron sessions are "
                "open. Try again in a minute."
            )
        session = NeuronSession()
        self.sessions.add(session)
        session.send_state()
        session.send_data()
        self.tasks[session] = asyncio.create_task(session.run())
        return session

    async def close(self, session: NeuronSession) -> None:
        session.closed = True
        self.sessions.discard(session)
        task = self.tasks.pop(session, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
