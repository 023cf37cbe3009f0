"""Sessions that share a compiled trainer, stacked on a leading axis and trained in one call."""

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from app.live.session import LiveSession
from app.protocol.mlp import N_POINTS
from app.protocol.mlp_frame import FRAME_FLAGS, FRAME_HEADER, FRAME_KIND, LAYER_SLOTS
from models.datasets import PROBLEMS
from models.mlp import ACTIVATIONS, FEATURES, Architecture, Batch, Trainer, feature_selector

START_MAX_STEPS = 64
MAX_STEPS_CAP = 100_000
# At "max", K is what fits in a call of about this long: a whole frame at the default 40 frames/s.
# The rest of a tick (the frame's bytes: ~0.3 ms) leaves frames at ~37/s, over the 30 wanted.
MAX_SPEED_CALL_SECONDS = 1 / 40
COST_SAMPLES = 12  # recent calls the max-speed cost model is fitted to
PROBE = 0.2  # K alternates ± this around its target, so the fit sees more than one K


@dataclass
class SlotJob:
    """What the trainer needs to build one slot's frame; a snapshot, safe to read off the loop."""

    slot: int
    session: LiveSession
    gen: int
    version: int
    step0: int
    k: int
    n_train: int
    arch: Architecture
    running: bool


@dataclass
class CallResult:
    """One call's output for its jobs: the new parameters (every slot), and per job its frame's
    binary message and whether its network is still finite."""

    jobs: list[SlotJob]
    params: list[np.ndarray]
    messages: list[bytes]
    finite: np.ndarray


class StepBudget:
    """At max speed, the steps a call trains: a call's time is modelled as a fixed cost plus a
    per-step cost, fitted to the recent calls, so K is what fits in `MAX_SPEED_CALL_SECONDS`.

    When the fixed cost alone fills the call (a busy machine, a slow path), K makes the steps
    take as long as the fixed cost: frames slow down, but every call still trains many steps.
    """

    def __init__(self):
        self.samples: deque[tuple[int, float]] = deque(maxlen=COST_SAMPLES)
        self.fixed, self.per_step = 0.0, 0.0
        self.target = START_MAX_STEPS
        self.calls = 0

    def observe(self, k: int, seconds: float) -> None:
        if k <= 0 or seconds <= 0:
            return
        self.samples.append((k, seconds))
        ks, ts = np.array(self.samples, np.float64).T
        slope = intercept = -1.0
        if len(ks) >= 3 and ks.std() > 0.05 * ks.mean():
            slope, intercept = np.polyfit(ks, ts, 1)
        if slope > 0 and intercept >= 0:
            self.per_step, self.fixed = float(slope), float(min(intercept, ts.min()))
        elif not self.per_step:  # too few calls to fit: guess half of a call is fixed
            self.fixed = ts.min() / 2
            self.per_step = max((ts.mean() - self.fixed) / ks.mean(), 1e-9)
        # else too noisy a fit: the model so far stands
        steps = max(MAX_SPEED_CALL_SECONDS - self.fixed, self.fixed) / self.per_step
        # Geometric smoothing, at most doubling a call: one odd call (a GC pause, a compile)
        # neither collapses K nor blows it up; a call far over its time cuts K at once.
        target = min(2 * self.target, math.sqrt(self.target * steps))
        if seconds > 2 * max(MAX_SPEED_CALL_SECONDS, 2 * self.fixed):
            target = min(target, steps)
        self.target = int(np.clip(target, 1, MAX_STEPS_CAP))

    def next(self) -> int:
        self.calls += 1
        return max(1, round(self.target * (1 + PROBE * (-1) ** self.calls)))


class Group:
    """Slots of one `TraceShape` (and speed class), with their stacked arrays.

    Capacity grows in powers of two so that XLA compiles few shapes, up to
    `Settings.max_group_size`: a full class splits into several groups, which the TF threads
    train in parallel.
    """

    def __init__(self, trainer: Trainer, max_speed: bool, grid_size: int, neuron_grid_size: int):
        self.trainer = trainer
        self.shape = trainer.shape
        self.max_speed = max_speed
        self.budget = StepBudget()
        self.training_ticks = 0  # calls that trained: XLA is built only for groups in use
        self.grid_size = grid_size
        self.neuron_grid_size = neuron_grid_size
        self.slots: list[LiveSession | None] = []
        self._layouts: dict[tuple[int, ...], Layout] = {}
        self._alloc(1)

    def _alloc(self, capacity: int) -> None:
        old = len(self.slots)
        sizes, f = self.shape.sizes, len(FEATURES)

        def grow(current: np.ndarray | None, shape, dtype=np.float32) -> np.ndarray:
            new = np.zeros((capacity, *shape), dtype)
            if current is not None:
                new[:old] = current
            return new

        prev = None if old == 0 else self.arrays
        i32 = np.int32
        shapes = {
            "x_train": ((N_POINTS, 2), np.float32), "y_train": ((N_POINTS,), np.float32),
            "n_train": ((), i32), "x_test": ((N_POINTS, 2), np.float32),
            "y_test": ((N_POINTS,), np.float32), "n_test": ((), i32),
            "selector": ((f, self.shape.inputs), np.float32), "activation": ((), i32), "problem": ((), i32),
            "batch_size": ((), i32),
            "learning_rate": ((), np.float32), "l1": ((), np.float32), "l2": ((), np.float32),
            "seed": ((), i32),
        }  # fmt: skip
        self.arrays = {
            name: grow(None if prev is None else prev[name], shape, dtype)
            for name, (shape, dtype) in shapes.items()
        }
        self.params = [
            grow(None if prev is None else self.params[i], shape)
            for i, shape in enumerate(_param_shapes(sizes))
        ]
        self.masks = [
            grow(None if prev is None else self.masks[i], (width,))
            for i, width in enumerate(self.shape.hidden)
        ]
        self.slots += [None] * (capacity - old)

    def has_room(self, limit: int) -> bool:
        return None in self.slots or len(self.slots) < limit

    @property
    def empty(self) -> bool:
        return all(s is None for s in self.slots)

    def add(self, session: LiveSession) -> None:
        """Places the session in a free slot (growing if full) with fresh weights and its data."""
        if None not in self.slots:
            self._alloc(len(self.slots) * 2)
        slot = self.slots.index(None)
        self.slots[slot] = session
        session.group, session.slot = self, slot
        self.load(session)

    def remove(self, session: LiveSession) -> None:
        self.slots[session.slot] = None
        session.group, session.slot = None, -1

    def load(self, session: LiveSession) -> None:
        """Writes the session's data, features, masks and initial weights into its slot."""
        s, c, a = session.slot, session.config, self.arrays
        x_tr, y_tr, x_te, y_te = session.data
        for name in ("x_train", "y_train", "x_test", "y_test"):
            a[name][s] = 0
        a["x_train"][s, : len(x_tr)], a["y_train"][s, : len(y_tr)] = x_tr, y_tr
        a["x_test"][s, : len(x_te)], a["y_test"][s, : len(y_te)] = x_te, y_te
        a["n_train"][s], a["n_test"][s] = len(x_tr), len(x_te)
        a["selector"][s] = feature_selector(c.features, self.shape.inputs)
        a["activation"][s] = ACTIVATIONS.index(c.activation)
        a["problem"][s] = PROBLEMS.index(c.problem)
        a["batch_size"][s] = c.batch_size
        a["seed"][s] = c.seed
        for m, mask in zip(self.masks, session.arch.masks(self.shape), strict=True):
            m[s] = mask
        self.set_params(session, session.initial_params())
        self.set_rates(session)

    def set_rates(self, session: LiveSession) -> None:
        """Learning rate and penalties: they change the running network without a restart."""
        s, c, a = session.slot, session.config, self.arrays
        a["learning_rate"][s] = c.learning_rate
        a["l1"][s] = c.regularization_rate if c.regularization == "l1" else 0.0
        a["l2"][s] = c.regularization_rate if c.regularization == "l2" else 0.0

    def params_of(self, session: LiveSession) -> list[np.ndarray]:
        """A copy of the session's padded weights and biases (a classroom room's fork)."""
        return [p[session.slot].copy() for p in self.params]

    def set_params(self, session: LiveSession, params: list[np.ndarray]) -> None:
        """Puts weights and biases (real, or padded to any shape: from `params_of`) into the
        session's slot; the rest of the slot's padding is zero."""
        for p, new in zip(self.params, params, strict=True):
            region = tuple(slice(0, min(a, b)) for a, b in zip(new.shape, p.shape[1:], strict=True))
            p[session.slot] = 0
            p[session.slot][region] = new[region]

    def set_weight(
        self, session: LiveSession, layer: int, source: int, target: int, value: float
    ) -> None:
        """One weight of the session's running network (indices as in its frames: unpadded)."""
        self.params[2 * layer][session.slot, source, target] = value

    def prepare(self) -> tuple[Batch, list[SlotJob]] | None:
        """Snapshots the inputs of one call, or None when no slot wants a frame."""
        jobs = []
        k = np.zeros(len(self.slots), np.int32)
        steps = np.zeros(len(self.slots), np.int32)
        max_steps = self.budget.next() if self.max_speed else 0
        for s, session in enumerate(self.slots):
            if session is None or not session.has_work:
                continue
            training = session.running or session.single_step
            k[s] = session.steps_per_frame(max_steps) if training else 0
            steps[s] = session.step
            jobs.append(
                SlotJob(s, session, session.gen, session.version, session.step, int(k[s]),
                        int(self.arrays["n_train"][s]), session.arch, session.running)
            )  # fmt: skip
            session.take_frame()
        if not jobs:
            return None
        return self._batch(steps, k), jobs

    def prepare_idle(self, capacity: int = 0) -> Batch:
        """The inputs of a call that trains nothing: what tracing or compiling a trainer needs;
        for at least `capacity` slots (empty ones added)."""
        if capacity > len(self.slots):
            self._alloc(capacity)
        return self._batch(np.zeros(len(self.slots), np.int32), np.zeros(len(self.slots), np.int32))

    def _batch(self, steps: np.ndarray, k: np.ndarray) -> Batch:
        # The big data arrays are shared, not copied: the loop only rewrites a slot's rows when its
        # session restarts, which bumps its `gen`, so that slot's result from this call is dropped.
        small = {
            name: (a if name.startswith(("x_", "y_")) else a.copy())
            for name, a in self.arrays.items()
        }
        return Batch(
            params=[p.copy() for p in self.params],
            masks=[m.copy() for m in self.masks],
            step=steps,
            k=k,
            **small,
        )

    def build_frames(self, jobs: list[SlotJob], params, metrics, grids) -> CallResult:
        """Every job's binary frame (docs/protocol.md), built for the whole group in one pass over
        the arrays the call returned; per job only a lookup and a copy. Runs off the loop."""
        slots = np.array([j.slot for j in jobs])
        n = len(jobs)
        mine = [p[slots].reshape(n, -1) for p in params]
        m = metrics[slots].astype(np.float32)
        finite = np.isfinite(m).all(1) & np.logical_and.reduce(
            [np.isfinite(p).all(1) for p in mine]
        )
        head = np.zeros(n, FRAME_HEADER)
        head["kind"] = FRAME_KIND
        head["grid_size"], head["neuron_grid_size"] = self.grid_size, self.neuron_grid_size
        head["domain"] = self.trainer.domain
        k = np.array([j.k for j in jobs], np.float64)
        step = np.array([j.step0 for j in jobs], np.float64) + k
        head["version"] = [j.version for j in jobs]
        head["steps_per_frame"] = k
        head["step"] = step
        per_epoch = np.array([max(j.n_train, 1) / j.arch.batch_size for j in jobs])
        head["epoch"] = np.round(step / per_epoch, 3)
        # A diverged net's metrics are null (NaN here), and a regressor has no accuracy.
        m[~finite] = np.nan
        regressor = np.array([j.arch.problem != "classification" for j in jobs])
        m[regressor, 2:] = np.nan
        for i, name in enumerate(("loss", "test_loss", "accuracy", "test_accuracy")):
            head[name] = m[:, i]
        running = np.array([j.running for j in jobs])
        head["flags"] = np.where(finite, 0, FRAME_FLAGS["DIVERGED"]) | np.where(
            running & finite, FRAME_FLAGS["RUNNING"], 0
        )
        layouts = [self._layout(j.arch) for j in jobs]
        head["layers"] = [lay.layers for lay in layouts]
        head["drawn"] = [lay.drawn for lay in layouts]
        # The weights and biases of the trace's drawn neurons; each arch keeps its own below.
        d = self.shape.drawn
        drawn_params = []
        for layer in range(len(d) - 1):
            w = params[2 * layer][slots, : d[layer], : d[layer + 1]]
            drawn_params += [w.reshape(n, -1), params[2 * layer + 1][slots, : d[layer + 1]]]
        weights = np.concatenate(drawn_params, axis=1).astype("<f4")
        weights[~finite] = np.nan_to_num(weights[~finite], nan=0.0, posinf=0.0, neginf=0.0)
        full = np.concatenate(
            [head.view(np.uint8).reshape(n, -1), weights.view(np.uint8), grids[slots]], axis=1
        )
        messages: list[bytes] = [b""] * n
        by_layout: dict[int, list[int]] = {}
        for i, lay in enumerate(layouts):
            by_layout.setdefault(id(lay), []).append(i)
        for rows in by_layout.values():
            keep = layouts[rows[0]].keep
            picked = full[np.array(rows)][:, keep]
            for i, row in zip(rows, picked, strict=True):
                messages[i] = row.tobytes()
        return CallResult(jobs, params, messages, finite)

    def _layout(self, arch: Architecture) -> "Layout":
        layout = self._layouts.get(arch.sizes)
        if layout is None:
            layout = self._layouts[arch.sizes] = Layout.of(arch, self.shape.drawn, self.grid_size,
                                                           self.neuron_grid_size)  # fmt: skip
        return layout

    def apply(self, result: CallResult) -> list[tuple[SlotJob, bytes, bool]]:
        """Writes back the new weights of the slots whose session is still where and what it was
        (not moved, not restarted meanwhile); their jobs, frames and finiteness."""
        current = []
        for i, job in enumerate(result.jobs):
            session = job.session
            if session.closed or session.group is not self or session.slot != job.slot:
                continue
            if session.gen != job.gen:
                continue
            session.step = job.step0 + job.k
            current.append(i)
        slots = np.array([result.jobs[i].slot for i in current], np.intp)
        for p, new in zip(self.params, result.params, strict=True):
            p[slots] = new[slots]
        return [(result.jobs[i], result.messages[i], bool(result.finite[i])) for i in current]


@dataclass(frozen=True)
class Layout:
    """Where one architecture's frame is in a row of its group's frames: header, the trace's drawn
    weights and biases (float32 bytes), then every drawn neuron's grid; `keep` picks its bytes."""

    layers: np.ndarray  # (LAYER_SLOTS,) uint8
    drawn: np.ndarray
    keep: np.ndarray

    @classmethod
    def of(cls, arch: Architecture, shown: tuple[int, ...], grid: int, neuron_grid: int):
        layers = np.zeros(LAYER_SLOTS, np.uint8)
        drawn = np.zeros(LAYER_SLOTS, np.uint8)
        layers[: len(arch.sizes)], drawn[: len(arch.drawn)] = arch.sizes, arch.drawn
        keep = [np.arange(FRAME_HEADER.itemsize)]
        at = FRAME_HEADER.itemsize
        for layer in range(len(shown) - 1):
            rows, cols = shown[layer], shown[layer + 1]
            w = np.arange(rows * cols).reshape(rows, cols)[
                : arch.drawn[layer], : arch.drawn[layer + 1]
            ]
            for block, size in ((w.ravel(), rows * cols), (np.arange(arch.drawn[layer + 1]), cols)):
                keep.append((at + 4 * block[:, None] + np.arange(4)).ravel())
                at += 4 * size
        keep.append(at + np.arange(grid * grid))
        at += grid * grid
        cell = neuron_grid * neuron_grid
        for layer, count in enumerate(arch.drawn[1:-1]):
            keep.append(at + np.arange(count * cell))
            at += shown[layer + 1] * cell
        return cls(layers, drawn, np.concatenate(keep))


def _param_shapes(sizes: tuple[int, ...]) -> list[tuple[int, ...]]:
    shapes = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        shapes += [(fan_in, fan_out), (fan_out,)]
    return shapes
