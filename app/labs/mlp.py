"""Multi-layer networks: TF Playground's data sets and networks, trained live over /ws/mlp.

A session's network trains in a slot of a group of networks that pad to the same trace shape
(the stacked runner, `app/live/stacked.py`); this module says what the session's config means.
"""

import math

import numpy as np

from app.bench.mlp import bench
from app.labs import Lab
from app.live.session import ConfigError, LiveSession
from app.live.stacked import StackedRunner, traces_held
from app.protocol import mlp as protocol
from app.protocol.mlp import (
    CLIENT_MESSAGE,
    CLIENT_TYPES,
    MAX_LAYERS,
    MAX_NEURONS,
    MAX_STEPS_PER_FRAME,
    N_POINTS,
    DataMessage,
    MlpConfig,
    SetWeightMessage,
)
from models.datasets import DATASETS, DOMAIN, GENERATORS, PROBLEMS, train_test_split
from models.mlp import ACTIVATIONS, REGULARIZATIONS, Architecture, init_params

# Multiply-adds one frame may spend on training: a [50]×6 net at 10,000 steps a frame would hold a
# TF thread for seconds and starve the class; it gets fewer steps per frame instead.
WORK_PER_FRAME = 25_000_000
# Changing these re-initialises the weights; the other fields apply to the running network.
DATA_FIELDS = frozenset({"problem", "dataset", "noise", "train_ratio", "seed"})
ARCH_FIELDS = frozenset({"features", "hidden", "activation", "batch_size"})
# After the default [4, 2]: one fewer and one more hidden layer, and two wider layers; then the
# widest shape of every depth, the stand-in any new shape trains in while its own is traced.
WARM_UP = ([4], [4, 2, 2], [], [8, 8])
WIDEST = tuple([MAX_NEURONS] * depth for depth in range(1, MAX_LAYERS + 1))


class MlpSession(LiveSession):
    config_type = MlpConfig
    client_message = CLIENT_MESSAGE
    client_types = CLIENT_TYPES
    runner_type = StackedRunner
    data_fields = DATA_FIELDS
    restart_fields = ARCH_FIELDS
    dataset_choice = "problem"
    datasets = DATASETS

    def __init__(self, runtime, config: MlpConfig | None = None):
        self.group = None  # where its network trains, in slot `slot`
        self.slot = -1
        self._arch: tuple[MlpConfig, Architecture] | None = None  # read every frame: kept
        super().__init__(runtime, config)

    @classmethod
    def warm_up(cls, runtime) -> None:
        """Traces the shapes a class reaches first (the default network, XLA-compiled too, and its
        exact max-speed trace) and every depth's widest shape in the background at start-up, so
        nobody waits for them."""
        first = (cls(runtime), runtime.settings.use_xla)
        others = [(cls(runtime, MlpConfig(hidden=hidden)), False) for hidden in WARM_UP]
        widest = [(cls(runtime, MlpConfig(hidden=h, batch_size=100)), False) for h in WIDEST]
        runtime.stacked.warm_up([first, *others, *widest])

    @property
    def arch(self) -> Architecture:
        c = self.config
        if self._arch is None or self._arch[0] is not c:
            hidden = tuple(c.hidden)
            self._arch = (
                c,
                Architecture(len(c.features), hidden, c.activation, c.batch_size, c.problem),
            )
        return self._arch[1]

    @property
    def is_max_speed(self) -> bool:
        return self.config.speed == "max"

    def load_data(self) -> None:
        c = self.config
        x, y = GENERATORS[c.dataset](N_POINTS, c.noise, c.seed)
        self.data = train_test_split(x, y, c.train_ratio, c.seed)

    def handle(self, message: SetWeightMessage) -> None:
        """`set_weight`: one weight of the running network changes, as a config change that keeps
        the network does (a new version, a `state`, then frames from the new weight)."""
        try:
            self.check_weight(message)
        except ConfigError as e:
            self.send_error(str(e), e.field)
            return
        self.version += 1
        self.gen += 1  # a call in flight started from the old weight: its result must not land
        self.group.set_weight(self, message.layer, message.source, message.target, message.value)
        self.want_frame()
        self.send_state()

    def check_weight(self, m: SetWeightMessage) -> None:
        """Raises a `ConfigError` naming the first index outside this network's weights."""
        sizes = self.arch.sizes
        if m.layer > len(sizes) - 2:
            raise ConfigError(
                f"Invalid layer: this network has {len(sizes) - 1} layers of weights, so layer "
                f"must be in [0, {len(sizes) - 2}]. Received: layer={m.layer}",
                "layer",
            )
        for field, index, n, side in (
            ("from", m.source, sizes[m.layer], "leave"),
            ("to", m.target, sizes[m.layer + 1], "reach"),
        ):
            if index >= n:
                raise ConfigError(
                    f"Invalid {field}: the weights of layer {m.layer} {side} {n} neuron"
                    f"{'s' if n > 1 else ''}, so {field} must be in [0, {n - 1}]. "
                    f"Received: {field}={index}",
                    field,
                )

    def fork(self) -> dict:
        """Where this run is, for a classroom room's student to go on from: config, step, weights
        (a plain SGD step has no other optimizer state)."""
        params = self.arch.unpad(self.group.params_of(self))
        return {
            "config": self.config.model_dump(),
            "step": self.step,
            "params": [p.tolist() for p in params],
        }

    def adopt(self, fork: dict) -> None:
        """Goes on from another session's `fork()`: its config (and so its data), step and weights."""
        self.configure(fork["config"])
        self.group.set_params(
            self, self.arch.pad([np.asarray(p, np.float32) for p in fork["params"]])
        )
        self.step = fork["step"]
        self.gen += 1  # a call in flight started from the weights before
        self.diverged = False
        self.want_frame()

    def init_weights(self) -> None:
        if self.group is not None:  # else the group it joins loads them
            self.group.load(self)

    def initial_params(self) -> list[np.ndarray]:
        return self.arch.pad(init_params(self.arch, self.config.seed))

    def reconfigure(self, old: MlpConfig, changed: set[str]) -> None:
        if self.restarts(changed):
            # Its new network may pad to another shape: it joins that shape's group afresh.
            self.runner.remove(self)
            self.restart()
            self.runner.add(self)
        elif (old.speed == "max") != self.is_max_speed:
            self.runner.move(self)  # the same network, trained in the other speed class's group
        else:
            self.group.set_rates(self)
            if not self.running:
                self.want_frame()

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

    def limits(self) -> dict:
        return {
            "max_layers": MAX_LAYERS,
            "max_neurons": MAX_NEURONS,
            "max_steps_per_frame": MAX_STEPS_PER_FRAME,
            "frame_rate": self.settings.frame_rate,
            "max_message_bytes": self.settings.ws_max_message_bytes,
        }

    def data_message(self) -> DataMessage:
        x_tr, y_tr, x_te, y_te = self.data
        label = int if self.config.problem == "classification" else lambda v: round(float(v), 4)

        def rows(x, y):
            return [
                [round(float(a), 4), round(float(b), 4), label(c)]
                for (a, b), c in zip(x, y, strict=True)
            ]

        return DataMessage(
            version=self.version,
            problem=self.config.problem,
            domain=DOMAIN,
            train=rows(x_tr, y_tr),
            test=rows(x_te, y_te),
        )


LAB = Lab(
    "mlp",
    "Multi-layer networks",
    "XOR and friends: hidden layers, activations and decision boundaries, trained live.",
    30,
    short="Networks",
    session=MlpSession,
    protocol=protocol,
    bench=bench,
    warm_up=MlpSession.warm_up,
    traces=traces_held,
    choices={
        "problem": tuple(zip(PROBLEMS, ("Classification", "Regression"), strict=True)),
        "dataset": tuple(
            zip(
                (name for names in DATASETS.values() for name in names),
                ("XOR", "circle", "two gaussians", "spiral", "plane", "multi-gaussian"),
                strict=True,
            )
        ),
        "activation": tuple(zip(ACTIVATIONS, ("tanh", "ReLU", "sigmoid", "linear"), strict=True)),
        "regularization": tuple(zip(REGULARIZATIONS, ("none", "L1", "L2"), strict=True)),
    },
)
