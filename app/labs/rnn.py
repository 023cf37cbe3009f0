"""Recurrent networks: a sequence learned live, unrolled in time, over /ws/rnn.

A session trains one network (the solo runner, `app/live/solo.py`): each frame is one compiled
call of `speed` steps on fresh sequences, which also draws, several times a second, what the page
shows of the network unrolled in time (states, gates, ‖∂ℓ/∂h_t‖, eigenvalues, forecasts, text).
With `memory_curve` on, each training frame also advances the cells' memory curve.
"""

import asyncio
import logging
import math
import time
from functools import partial

import numpy as np

from app.bench.rnn import bench
from app.labs import Lab
from app.live.session import ConfigError, LiveSession
from app.live.solo import SoloRunner
from app.protocol import rnn as protocol
from app.protocol.rnn import (
    CLIENT_MESSAGE,
    MAX_STEPS_PER_FRAME,
    MAX_TEXT_BYTES,
    ArraySpec,
    MemoryCurve,
    RnnConfig,
    RnnDataMessage,
    RnnFrameMessage,
)
from models import rnn
from models.rnn import BATCH_SIZE, CELLS, FORECASTS, GATES, MEMORY_TASKS, OPTIMIZERS, TASKS

log = logging.getLogger(__name__)
# Forward multiply-adds one frame may spend training, each time step also costing about
# `OVERHEAD_PER_STEP` (fitted to XLA timings here): about 25 ms a frame on a quiet core, so a long,
# wide LSTM trains fewer steps a frame instead of holding a training thread while the class waits.
WORK_PER_FRAME = 2_000_000_000
OVERHEAD_PER_STEP = 2_000_000
FIGURES_PER_SECOND = 10  # while playing; a paused or stepped session gets them every frame
# Under load (`share` < 1) they follow the steps trained, as the network changes that much slower:
# at a share s, s × 10 a second, never fewer than 2 (a figures call is ~3 ms of a core).
MIN_FIGURES_PER_SECOND = 2
FIGURE_BYTES_PER_SECOND = 500_000  # bigger figures come less often,
FIGURE_SHARE = 0.25  # and so do slow ones: at most this share of the session's time
SAMPLE_SECONDS = 3.0  # text: a new sample this often
COMPILE_AFTER_FRAMES = 10  # a glance at a shape is not worth an XLA build
# Under load the server keeps every student's frames coming and trains fewer RNN steps: an LSTM's
# frame at 10 steps is ~18 ms of a core, so three such students fill two cores and a class's cheap
# sessions (an MLP student's costs ~2 % of a core) would wait behind them. At each reading of the
# machine's CPU (`CpuLoad`), a session cuts its share of its chosen speed by `SHARE_CUT` when the
# CPUs are over `BUSY_CPU` or its own frames came late (started more than `LATE_FRAME` frame periods
# after the one before), and grows it back by `SHARE_GROWTH` otherwise.
BUSY_CPU = 0.85
LATE_FRAME = 1.25
LATE_FRAMES = 0.1  # of a reading's frames, late ones that count as the session's frames being late
SHARE_CUT, SHARE_GROWTH = 0.7, 1.2
MEMORY_SECONDS_PER_FRAME = 0.015  # of a training frame, spent on the memory curve
MEMORY_MAX_CHUNK = 50
DELAY_TASKS = ("recall", "parity")  # first_bit's delay is the length
# The config's fields that `rnn.train` takes as they are, under the same names.
TRAIN_SETTINGS = {"learning_rate", "optimizer", "clip_norm", "seed", "temperature"}
# What each task's data depend on besides task, length and seed; other fields change nothing.
TASK_FIELDS = {
    **dict.fromkeys(FORECASTS, {"period", "noise"}),
    **dict.fromkeys(DELAY_TASKS, {"delay"}),
    "first_bit": set(),
    "text": {"text"},
}
RESTART_FIELDS = frozenset({"cell", "units", "recurrent_scale"})
CURVE_FIELDS = frozenset({"task", "units", "recurrent_scale", "seed"})
_compiling: set[rnn.TraceShape] = set()  # XLA builds queued or running, for every session


def make_dataset(c: RnnConfig) -> rnn.Dataset:
    """The session's task (first_bit asks for the first bit at the last step)."""
    delay = c.length - 1 if c.task == "first_bit" else c.delay
    return rnn.make_dataset(
        c.task, c.length, c.seed, period=c.period, noise=c.noise, delay=delay, text=c.text
    )


class RnnSession(LiveSession):
    config_type = RnnConfig
    client_message = CLIENT_MESSAGE
    runner_type = SoloRunner
    costly = True
    restart_fields = RESTART_FIELDS

    def __init__(self, runtime, config: RnnConfig | None = None):
        self.compiler = runtime.compiler  # the runtime's background pool for XLA builds
        self.cpu_load = runtime.cpu_load  # what it yields to when the machine is busy
        # The network, built (off the event loop) by the first call after a restart.
        self.stack: rnn.Stack | None = None
        self.curve: rnn.MemoryCurve | None = None
        self.curve_pace = 1.0
        self.opt_steps = 0  # updates the optimizer's state has seen (Adam's bias correction)
        self.last_figures = self.last_sample = -math.inf
        self.figure_bytes = 0
        self.figure_seconds = 0.0  # what the figures of the last call with them took
        self.step_seconds = 0.0  # a training step's time, measured on calls without figures
        self.frames_uncompiled = 0
        self.share = 1.0  # of the chosen speed the server trains now (`BUSY_CPU`)
        self.last_training = -math.inf  # when the last training frame's call started
        self.frames_paced = self.frames_late = 0  # since the last CPU reading
        self.plain_call = False  # the last call ran plain while its shape's XLA build is to come
        self.cpu_version = 0  # the last CPU reading the share was adjusted for
        super().__init__(runtime, config)

    @property
    def data_fields(self) -> frozenset[str]:  # the base's class constant, per task here
        return frozenset({"task", "length", "seed", *TASK_FIELDS[self.config.task]})

    def load_data(self) -> None:
        self.data = make_dataset(self.config)

    def init_weights(self) -> None:
        self.stack = None
        self.opt_steps = 0
        self.frames_uncompiled = 0
        self.figure_bytes, self.figure_seconds, self.step_seconds = 0, 0.0, 0.0
        self.curve = self._new_curve()

    @property
    def shape(self) -> rnn.TraceShape:
        return rnn.TraceShape.of(self.config.cell, self.config.units, self.data)

    def _new_curve(self) -> rnn.MemoryCurve | None:
        """A memory curve of the config's settings (its networks are built by its first step)."""
        c = self.config
        if not c.memory_curve:
            return None
        task = c.task if c.task in MEMORY_TASKS else "first_bit"
        self.curve_pace = 1.0  # seconds a curve step takes, measured; 1: not yet
        curve = rnn.MemoryCurve(task, c.units, c.seed, c.recurrent_scale)
        for shape in curve.shapes:
            self._compile(shape)
        return curve

    def validate(self, changes: dict) -> RnnConfig:
        config = super().validate(changes)
        if config.task in DELAY_TASKS and config.delay >= config.length:
            if "delay" in changes:
                raise ConfigError(
                    f"Invalid delay: must be less than length ({config.length}) for the "
                    f"{config.task} task. Received: delay={config.delay}",
                    "delay",
                )
            # A new length or task alone pulls the delay below the length.
            config = config.model_copy(update={"delay": config.length - 1})
        return config

    def reconfigure(self, old: RnnConfig, changed: set[str]) -> None:
        super().reconfigure(old, changed)
        if not self.restarts(changed) and (
            "memory_curve" in changed or (self.config.memory_curve and changed & CURVE_FIELDS)
        ):
            self.curve = self._new_curve()

    # -- frames ----------------------------------------------------------------------------
    def steps_per_frame(self) -> int:
        """The chosen speed times the session's `share`, at most what `WORK_PER_FRAME` allows
        for this network."""
        shape = self.shape
        per_step = shape.work_per_step() + shape.models * shape.length * OVERHEAD_PER_STEP
        speed = math.floor(self.config.speed * self.share)
        return max(1, min(speed, WORK_PER_FRAME // per_step))

    def play(self) -> None:
        self.last_training = -math.inf  # the pause before is not a late frame
        super().play()

    def _pace(self, started: float) -> None:
        """Counts whether this training frame started late; at a new CPU reading, adjusts `share`."""
        gap, self.last_training = started - self.last_training, started
        if gap == math.inf:  # the first since play: nothing to judge
            return
        self.frames_paced += 1
        # Frames late behind a plain call (~10× slower) say nothing of the machine: the shape's
        # XLA build is on its way, and a share cut now would take seconds to grow back.
        self.frames_late += gap > LATE_FRAME / self.settings.frame_rate and not self.plain_call
        cpu = self.cpu_load
        busy = cpu.sample()
        if cpu.version == self.cpu_version:
            return
        self.cpu_version = cpu.version
        late = self.frames_late > LATE_FRAMES * self.frames_paced
        self.frames_paced = self.frames_late = 0
        share = SHARE_CUT * self.share if late or busy > BUSY_CPU else SHARE_GROWTH * self.share
        self.share = min(1.0, max(share, 1 / self.config.speed))

    async def train_frame(self, pool) -> None:
        """One call in `pool`: `speed` steps when training, none for a frame of the current
        weights; figures when due (always when not playing)."""
        training = self.take_frame()
        now = time.monotonic()
        if training and self.running:
            self._pace(now)
        steps = self.steps_per_frame() if training else 0
        figures, sample = self._figures_due(now)
        curve = self.curve if training and self.curve is not None and not self.curve.done else None
        # The curve gets as many steps as fit its share of the frame, at its measured pace.
        chunk = max(1, min(MEMORY_MAX_CHUNK, round(MEMORY_SECONDS_PER_FRAME / self.curve_pace)))
        compiled = self.settings.use_xla
        gen, version, config = self.gen, self.version, self.config
        stack = self.stack or partial(
            rnn.new_stack, config.cell, config.units, self.data, config.seed, config.recurrent_scale
        )
        call = partial(
            _compute, stack, steps, config, self.step, self.opt_steps, figures, sample, compiled
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            stack, result, binary, arrays = await loop.run_in_executor(pool, call)
        except Exception:  # the solo runner's task would end with it, and the session go mute
            self._failed("training call")
            return
        if gen != self.gen:  # a restart made it stale
            return
        self.stack = stack
        self.plain_call = compiled and not result.compiled
        seconds = time.perf_counter() - started
        if figures:
            self.last_figures = now
            self.figure_bytes = len(binary)
            self.figure_seconds = max(0.0, seconds - steps * self.step_seconds)
        elif steps:
            self.step_seconds = seconds / steps
        if sample:
            self.last_sample = now
        self._count_uncompiled(stack.shape, steps)
        self._show(result, binary, arrays, steps, version, config.optimizer)
        if curve is not None and curve is self.curve:
            # Its own call, after the frame has gone out; the next frame shows its progress.
            started = time.perf_counter()
            try:
                await loop.run_in_executor(pool, curve.advance, chunk, compiled)
            except Exception:
                self._failed("memory curve")
                return
            self.curve_pace = (time.perf_counter() - started) / chunk

    def _figures_due(self, now: float) -> tuple[bool, bool]:
        """Whether this frame carries figures, and a new text sample: every frame when not
        playing; else `FIGURES_PER_SECOND` times the session's share, fewer when big or slow."""
        if not self.running:
            return True, self.data.kind == "text"
        interval = max(
            1 / max(MIN_FIGURES_PER_SECOND, FIGURES_PER_SECOND * self.share),
            self.figure_bytes / FIGURE_BYTES_PER_SECOND,
            self.figure_seconds / FIGURE_SHARE,
        )
        figures = now - self.last_figures >= interval
        sample = figures and self.data.kind == "text" and now - self.last_sample >= SAMPLE_SECONDS
        return figures, sample

    def _failed(self, what: str) -> None:
        log.exception("%s failed for %s", what, self.shape)
        self.running = False
        self.send_state()
        self.send_error(f"The {what} failed on the server; press Reset to start over.")

    def _count_uncompiled(self, shape: rnn.TraceShape, steps: int) -> None:
        """After a few training frames on a shape without its XLA build, queues the build."""
        if steps == 0 or not self.settings.use_xla or rnn.is_compiled(shape):
            return
        self.frames_uncompiled += 1
        if self.frames_uncompiled >= COMPILE_AFTER_FRAMES:
            self._compile(shape)

    def _compile(self, shape: rnn.TraceShape) -> None:
        s = self.settings
        built = rnn.is_compiled(shape) or shape in _compiling
        if built or not s.may_build_xla():
            return
        _compiling.add(shape)

        def build() -> None:
            try:
                rnn.compile_xla(shape, s.max_traces, s.max_xla_builds)
            except Exception:  # the plain trace keeps serving the shape
                log.exception("XLA build failed for %s", shape)
            finally:
                _compiling.discard(shape)

        self.compiler.submit(build)

    def _show(
        self, r: rnn.Result, binary: bytes, arrays: list, steps: int, version: int, optimizer: str
    ) -> None:
        self.step += steps
        if r.finite:
            self.stack.params, self.stack.slots = r.params, r.slots
            self.opt_steps += steps
            if optimizer != self.config.optimizer:  # its moments mean nothing to the new one
                self.stack.reset_slots()
                self.opt_steps = 0
        else:
            self.diverge()
        ok = not self.diverged
        f = r.figures if ok else None
        c = self.config
        message = RnnFrameMessage(
            version=version,
            step=self.step,
            steps_per_frame=steps,
            loss=float(r.loss[0]) if ok else None,
            val_loss=float(r.val_loss[0]) if f is not None else None,
            val_accuracy=(
                _finite(r.val_accuracy[0]) if f is not None and r.val_accuracy is not None else None
            ),
            diverged=self.diverged,
            running=self.running,
            figures=f is not None,
            compiled=r.compiled,
            cell=c.cell,
            units=c.units,
            length=self.data.length,
            gates=list(GATES[c.cell]),
            spectral_radius=_finite(f.spectral_radius) if f is not None else None,
            sample=self._sample_text(f),
            memory_curve=self._curve_message(),
            arrays=arrays if f is not None else [],
            frame_bytes=len(binary) if f is not None else 0,
        )
        self.offer_frame(message.model_dump_json(), binary if f is not None else b"")

    def _sample_text(self, f: rnn.Figures | None) -> str | None:
        if f is None or f.sample is None:
            return None
        vocabulary = self.data.vocabulary
        return "".join(vocabulary[int(i)] for i in (f.x[0], *f.sample))

    def _curve_message(self) -> MemoryCurve | None:
        curve = self.curve
        if curve is None:
            return None
        return MemoryCurve(
            task=curve.task,
            units=curve.units,
            delays=list(curve.delays),
            cells=list(CELLS),
            accuracy=[[_finite(a) for a in row] for row in curve.accuracy],
            chance=curve.chance,
            step=curve.step,
            steps=curve.steps,
            done=curve.done,
        )

    def limits(self) -> dict:
        return {
            "max_steps_per_frame": MAX_STEPS_PER_FRAME,
            "frame_rate": self.settings.frame_rate,
            "figures_per_second": FIGURES_PER_SECOND,
            "sample_seconds": SAMPLE_SECONDS,
            "batch_size": BATCH_SIZE,
            "max_text_bytes": MAX_TEXT_BYTES,
            "max_message_bytes": self.settings.ws_max_message_bytes,
            "memory_steps": rnn.MEMORY_STEPS,
        }

    def data_message(self) -> RnnDataMessage:
        d = self.data
        return RnnDataMessage(
            version=self.version,
            task=d.task,
            kind=d.kind,
            length=d.length,
            n_inputs=d.n_inputs,
            n_outputs=d.n_outputs,
            vocabulary=list(d.vocabulary),
            chance=d.chance,
            delay=d.delay,
            warmup=d.warmup,
            batch_size=BATCH_SIZE,
        )


def _finite(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _compute(stack, steps, c: RnnConfig, step, opt_steps, figures, sample, compiled):
    """The frame's work, in a training thread: the network (`stack`, or built by calling it),
    the call, and its binary figures."""
    if not isinstance(stack, rnn.Stack):
        stack = stack()
    result = rnn.train(
        stack,
        steps,
        **c.model_dump(include=TRAIN_SETTINGS),
        step=step,
        opt_step=opt_steps,
        figures=figures,
        sample=sample,
        compiled=compiled,
    )
    binary, arrays = b"", []
    if result.figures is not None and result.finite:
        binary, arrays = pack_figures(result.figures, stack.data[0].kind)
    return stack, result, binary, arrays


def pack_figures(f: rnn.Figures, kind: str) -> tuple[bytes, list[ArraySpec]]:
    """A frame's binary message: float32 arrays first, then uint8 ones, and where each lies."""
    if kind == "forecast":
        outputs = [("prediction", f.output), ("free_running", f.free_running)]
    else:
        labels = f.y.astype(np.int64)
        outputs = [
            ("prediction", f.output.argmax(axis=-1)),
            ("probability", f.output[np.arange(len(labels)), labels]),
        ]
    floats = [
        ("x", f.x),
        ("target", f.y),
        ("scored", f.weight),
        *outputs,
        ("grad_norm", f.grad_norm),
        ("eigenvalues", np.stack([f.eigenvalues.real, f.eigenvalues.imag], axis=-1)),
    ]
    quantized = [("h", f.h, -1.0, 1.0)]
    if f.c is not None:
        bound = max(1.0, float(np.abs(f.c).max()))
        quantized.append(("c", f.c, -bound, bound))
    for name, gate in f.gates.items():
        quantized.append((name, gate, -1.0, 1.0) if name == "candidate" else (name, gate, 0.0, 1.0))
    chunks, arrays, offset = [], [], 0
    for name, v in floats:
        data = np.ascontiguousarray(v, dtype="<f4").tobytes()
        arrays.append(ArraySpec(name=name, dtype="float32", shape=list(np.shape(v)), offset=offset))
        chunks.append(data)
        offset += len(data)
    for name, v, lo, hi in quantized:
        q = np.round((np.clip(np.nan_to_num(v), lo, hi) - lo) / (hi - lo) * 255).astype(np.uint8)
        arrays.append(
            ArraySpec(name=name, dtype="uint8", shape=list(v.shape), offset=offset, lo=lo, hi=hi)
        )
        chunks.append(q.tobytes())
        offset += q.nbytes
    return b"".join(chunks), arrays


def warm_up(runtime) -> None:
    """Traces the default session's call and, with XLA on, builds it and the default memory
    curve's calls, in the background: one job each, so a shutdown drops those still queued."""
    c = RnnConfig()
    data = make_dataset(c)

    def trace() -> None:
        stack = rnn.new_stack(c.cell, c.units, data, c.seed, c.recurrent_scale)
        rnn.train(stack, 1, learning_rate=c.learning_rate, compiled=False)

    runtime.compiler.submit(trace)
    s = runtime.settings
    if s.use_xla:
        curve = rnn.MemoryCurve("first_bit", c.units, c.seed, c.recurrent_scale)
        for shape in [rnn.TraceShape.of(c.cell, c.units, data), *curve.shapes]:
            runtime.compiler.submit(rnn.compile_xla, shape, s.max_traces, s.max_xla_builds)


LAB = Lab(
    "rnn",
    "Recurrent networks",
    "Sequences learned live: hidden states over time, gradients through time, why LSTMs remember.",
    80,
    short="RNN",
    session=RnnSession,
    protocol=protocol,
    bench=bench,
    warm_up=warm_up,
    traces=rnn.traces_held,
    choices={
        "task": tuple(
            zip(
                TASKS,
                (
                    "noisy sine",
                    "sum of sines",
                    "square wave",
                    "recall the symbol k steps back",
                    "parity of the last k + 1 bits",
                    "remember the first bit",
                    "next character of a text",
                ),
                strict=True,
            )
        ),
        "cell": tuple(zip(CELLS, ("SimpleRNN", "GRU", "LSTM"), strict=True)),
        "optimizer": tuple(
            zip(OPTIMIZERS, ("SGD", "SGD + momentum", "RMSprop", "Adam"), strict=True)
        ),
    },
    ready=True,
)
