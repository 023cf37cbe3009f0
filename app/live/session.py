"""One browser tab's training session: its config, status, and what waits to be sent to it."""

import math
import time

import numpy as np

from app.live.outbox import Outbox
from app.protocol import MlpConfig
from models.datasets import GENERATORS, train_test_split
from models.mlp import Architecture, init_params

N_POINTS = 500
# Multiply-adds one frame may spend on training: a [50]×6 net at 10,000 steps a frame would hold a
# TF thread for seconds and starve the class; it gets fewer steps per frame instead.
WORK_PER_FRAME = 25_000_000
# Changing these re-initialises the weights; the other fields apply to the running network.
DATA_FIELDS = frozenset({"dataset", "noise", "train_ratio", "seed"})
ARCH_FIELDS = frozenset({"features", "hidden", "activation", "batch_size"})


class Session(Outbox):
    """State of one session. Only the event loop touches it; the trainer works on snapshots."""

    def __init__(self, config: MlpConfig):
        super().__init__()
        self.config = config
        self.version = 0
        self.running = False
        self.single_step = False
        self.diverged = False
        self.needs_frame = True
        self.step = 0
        self.gen = 0  # bumped whenever the weights are re-initialised: stale results are dropped
        self.group = None
        self.slot = -1
        self.closed = False
        self.last_input = time.monotonic()  # when the client last sent a message
        self.load_data()

    @property
    def arch(self) -> Architecture:
        c = self.config
        return Architecture(len(c.features), tuple(c.hidden), c.activation, c.batch_size)

    @property
    def is_max_speed(self) -> bool:
        return self.config.speed == "max"

    def load_data(self) -> None:
        c = self.config
        x, y = GENERATORS[c.dataset](N_POINTS, c.noise, c.seed)
        self.data = train_test_split(x, y, c.train_ratio, c.seed)

    def restart(self) -> None:
        """Marks a new run from step 0: its first frame is due, older results are stale."""
        self.gen += 1
        self.step = 0
        self.diverged = False
        self.needs_frame = True

    def initial_params(self) -> list[np.ndarray]:
        return self.arch.pad(init_params(self.arch, self.config.seed))

    def steps_per_frame(self, max_speed_steps: int) -> int:
        """Steps the next frame trains: the chosen integer, one epoch, or the group's adaptive K,
        at most what `WORK_PER_FRAME` allows for this network."""
        speed = self.config.speed
        epoch = math.ceil(len(self.data[0]) / self.config.batch_size)
        if speed == "max" and not self.single_step:
            return max_speed_steps  # already adapted to the time a call takes
        wanted = epoch if speed in ("epoch", "max") else speed
        shape = self.arch.shape
        weights = sum(a * b for a, b in zip(shape.sizes[:-1], shape.sizes[1:], strict=True))
        return max(1, min(wanted, WORK_PER_FRAME // (shape.batch * weights)))
