"""Sessions that share a compiled trainer, stacked on a leading axis and trained in one call."""

import math
from dataclasses import dataclass

import numpy as np

from app.live.session import LiveSession
from app.protocol.mlp import N_POINTS, FrameMessage
from models.datasets import PROBLEMS
from models.mlp import ACTIVATIONS, FEATURES, Architecture, Batch, Trainer, feature_selector

START_MAX_STEPS = 64
MAX_STEPS_CAP = 20_000
MAX_SPEED_CALL_SECONDS = 1 / 60  # at "max", K grows until one call takes about this long


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
class FrameResult:
    job: SlotJob
    params: list[np.ndarray]
    text: str
    data: bytes
    finite: bool


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
        self.max_steps = START_MAX_STEPS
        self.training_ticks = 0  # calls that trained: XLA is built only for groups in use
        self.grid_size = grid_size
        self.neuron_grid_size = neuron_grid_size
        self.slots: list[LiveSession | None] = []
        self._alloc(1)

    def _alloc(self, capacity: int) -> None:
        old = len(self.slots)
        sizes, width, f = self.shape.sizes, self.shape.width, len(FEATURES)

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
            "selector": ((f, f), np.float32), "activation": ((), i32), "problem": ((), i32),
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
            grow(None if prev is None else self.masks[i], (width,)) for i in range(self.shape.depth)
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
        a["selector"][s] = feature_selector(c.features, len(FEATURES))
        a["activation"][s] = ACTIVATIONS.index(c.activation)
        a["problem"][s] = PROBLEMS.index(c.problem)
        a["batch_size"][s] = c.batch_size
        a["seed"][s] = c.seed
        for m, mask in zip(self.masks, session.arch.masks(), strict=True):
            m[s] = mask
        for p, init in zip(self.params, session.initial_params(), strict=True):
            p[s] = init
        self.set_rates(session)

    def set_rates(self, session: LiveSession) -> None:
        """Learning rate and penalties: they change the running network without a restart."""
        s, c, a = session.slot, session.config, self.arrays
        a["learning_rate"][s] = c.learning_rate
        a["l1"][s] = c.regularization_rate if c.regularization == "l1" else 0.0
        a["l2"][s] = c.regularization_rate if c.regularization == "l2" else 0.0

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
        for s, session in enumerate(self.slots):
            if session is None:
                continue
            if not session.has_work:
                continue
            training = session.running or session.single_step
            k[s] = session.steps_per_frame(self.max_steps) if training else 0
            steps[s] = session.step
            jobs.append(
                SlotJob(s, session, session.gen, session.version, session.step, int(k[s]),
                        int(self.arrays["n_train"][s]), session.arch, session.running)
            )  # fmt: skip
            session.take_frame()
        if not jobs:
            return None
        # The big data arrays are shared, not copied: the loop only rewrites a slot's rows when its
        # session restarts, which bumps its `gen`, so that slot's result from this call is dropped.
        small = {
            name: (a if name.startswith(("x_", "y_")) else a.copy())
            for name, a in self.arrays.items()
        }
        batch = Batch(
            params=[p.copy() for p in self.params],
            masks=[m.copy() for m in self.masks],
            step=steps,
            k=k,
            **small,
        )
        return batch, jobs

    def adapt_max_steps(self, seconds: float, k_used: int) -> None:
        """At max speed, scales K so that one call takes about `MAX_SPEED_CALL_SECONDS`."""
        if not self.max_speed or k_used <= 0 or seconds <= 0:
            return
        ideal = k_used * MAX_SPEED_CALL_SECONDS / seconds
        # Geometric smoothing: a single slow call (a GC pause, a compile) does not collapse K.
        self.max_steps = int(np.clip(math.sqrt(self.max_steps * ideal), 1, MAX_STEPS_CAP))

    def build_frames(self, jobs: list[SlotJob], params, metrics, frames) -> list[FrameResult]:
        """Per slot: its real weights, the frame's JSON and its binary grids. Runs off the loop."""
        g2, n2 = self.grid_size**2, self.neuron_grid_size**2
        shown = self.shape.drawn
        results = []
        for job in jobs:
            s, arch = job.slot, job.arch
            mine = [p[s] for p in params]
            real = arch.unpad(mine)
            m = metrics[s]
            classifier = arch.problem == "classification"  # a regressor has no accuracy
            finite = bool(np.all(np.isfinite(m))) and all(np.all(np.isfinite(p)) for p in real)
            row = frames[s]
            blocks = [row[:g2]]
            for layer, drawn in enumerate(arch.drawn[1:-1]):
                start = g2 + layer * shown * n2
                blocks.append(row[start : start + drawn * n2])
            data = b"".join(b.tobytes() for b in blocks)
            step = job.step0 + job.k
            text = FrameMessage(
                version=job.version,
                step=step,
                epoch=round(step * arch.batch_size / max(job.n_train, 1), 3),
                # A diverged net's accuracy is meaningless: null like its loss.
                loss=_finite(m[0]) if finite else None,
                test_loss=_finite(m[1]) if finite else None,
                accuracy=_finite(m[2]) if finite and classifier else None,
                test_accuracy=_finite(m[3]) if finite and classifier else None,
                diverged=not finite,
                running=job.running and finite,
                steps_per_frame=job.k,
                grid_size=self.grid_size,
                neuron_grid_size=self.neuron_grid_size,
                domain=self.trainer.domain,
                layers=list(arch.sizes),
                drawn=list(arch.drawn),
                weights=[_rounded(w[: arch.drawn[i], : arch.drawn[i + 1]]) for i, w in enumerate(real[0::2])],
                biases=[_rounded(b[: arch.drawn[i + 1]]) for i, b in enumerate(real[1::2])],
                frame_bytes=len(data),
            ).model_dump_json()  # fmt: skip
            results.append(FrameResult(job, mine, text, data, finite))
        return results

    def apply(self, result: FrameResult) -> bool:
        """Writes a slot's new weights back unless the session moved or restarted meanwhile."""
        job = result.job
        session = job.session
        if session.closed or session.group is not self or session.slot != job.slot:
            return False
        if session.gen != job.gen:
            return False
        for p, new in zip(self.params, result.params, strict=True):
            p[job.slot] = new
        session.step = job.step0 + job.k
        return True


def _param_shapes(sizes: tuple[int, ...]) -> list[tuple[int, ...]]:
    shapes = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        shapes += [(fan_in, fan_out), (fan_out,)]
    return shapes


def _finite(v: float) -> float | None:
    return round(float(v), 6) if math.isfinite(v) else None


def _rounded(a: np.ndarray) -> list:
    if not np.isfinite(a).all():  # only a diverged net: its weights travel as 0, JSON stays valid
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    return np.round(a, 4).tolist()
