"""Single neurons: linear and logistic regression, softmax, trained live over /ws/neurons.

A session is small (one neuron, at most a few hundred points), so it trains itself (the solo
runner, `app/live/solo.py`): one compiled call of `speed` full-batch steps a frame. Every data set
has a fixed size, so the XLA builds are a handful, made at start-up (`warm_up`).
"""

import asyncio
from functools import partial

import numpy as np

from app.labs import Lab
from app.live.session import LiveSession
from app.live.solo import SoloRunner
from app.protocol import neurons as protocol
from app.protocol.neurons import (
    CLIENT_MESSAGE,
    DATASET_NAMES,
    MAX_STEPS_PER_FRAME,
    NeuronConfig,
    NeuronDataMessage,
    NeuronFrameMessage,
)
from models import neurons
from models.datasets import make_xor
from models.neurons import DATASETS, IRIS_FEATURES, KINDS

N_POINTS = {"line": 60, "linear": 200, "xor": 200, "three": 240}
# Changing these draws new data and new weights; learning_rate and speed apply to the running neuron.
DATA_FIELDS = frozenset(
    {"model", "dataset", "noise", "slope", "intercept", "iris_features", "seed"}
)
_ROUND = 4


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


class NeuronSession(LiveSession):
    config_type = NeuronConfig
    client_message = CLIENT_MESSAGE
    runner_type = SoloRunner
    data_fields = DATA_FIELDS
    dataset_choice = "model"
    datasets = DATASETS

    def load_data(self) -> None:
        self.data = load_data(self.config)

    def init_weights(self) -> None:
        self.w, self.b = neurons.init_params(self.config.model, self.config.seed)
        self.grid = b""

    async def train_frame(self, pool) -> None:
        """One compiled call in `pool`: `speed` steps when training, none for a frame of the
        current weights."""
        steps = self.config.speed if self.take_frame() else 0
        gen, version, c, d = self.gen, self.version, self.config, self.data
        args = (c.model, d["x"], d["y"], self.w, self.b, c.learning_rate, steps, d["domain"])
        call = partial(neurons.train, *args, compiled=self.settings.use_xla)
        frame = await asyncio.get_running_loop().run_in_executor(pool, call)
        if gen == self.gen:  # else a restart made it stale
            self._show(frame, steps, version)

    def _show(self, frame: neurons.Frame, steps: int, version: int) -> None:
        self.step += steps
        if frame.finite:
            self.w, self.b, self.grid = frame.w, frame.b, frame.grid
        else:
            self.diverge()
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

    def limits(self) -> dict:
        return {
            "max_steps_per_frame": MAX_STEPS_PER_FRAME,
            "frame_rate": self.settings.frame_rate,
            "grid_size": neurons.GRID_SIZE,
            "datasets": DATASETS,
        }

    def data_message(self) -> NeuronDataMessage:
        d = self.data
        return NeuronDataMessage(
            version=self.version,
            model=self.config.model,
            dataset=self.config.dataset,
            domain=d["domain"],
            axes=d["axes"],
            classes=d["classes"],
            points=d["points"],
        )


def warm_up(runtime) -> None:
    """With XLA on, builds the call of every model's data sets in the background, one job each."""
    if not runtime.settings.use_xla:
        return
    shapes = {}
    for model, datasets in DATASETS.items():
        for dataset in datasets:
            d = load_data(NeuronConfig(model=model, dataset=dataset))
            shapes[model, d["x"].shape] = (model, d["x"], d["y"])
    for job in shapes.values():
        runtime.compiler.submit(neurons.compile_xla, *job)


LAB = Lab(
    "neurons",
    "Single neurons",
    "Linear and logistic regression, softmax classification.",
    10,
    short="Neurons",
    session=NeuronSession,
    protocol=protocol,
    warm_up=warm_up,
    choices={
        "model": tuple(
            zip(KINDS, ("Linear regression", "Logistic regression", "Softmax"), strict=True)
        ),
        "dataset": tuple(
            zip(
                DATASET_NAMES,
                ("noisy line", "separable", "XOR", "three blobs", "Iris flowers"),
                strict=True,
            )
        ),
        "iris_features": tuple((f, f.replace("_", " ")) for f in IRIS_FEATURES),
    },
)
