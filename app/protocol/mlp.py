"""The multi-layer network lab's wire contract (`/ws/mlp`, docs/protocol.md).

Its choices come from `models/`; `static/js/protocol/mlp.js` exports `mirror()`.
"""

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from app.protocol import shared
from app.protocol.mlp_frame import (  # noqa: F401 (some only by name, in MIRRORED)
    FRAME_FLAGS,
    FRAME_HEADER,
    FRAME_HEADER_BYTES,
    FRAME_KIND,
    FRAME_LAYOUT,
    MAX_LAYERS,
    METRICS,
)
from app.protocol.shared import MAX_SEED, StrictMessage
from models.datasets import DATASETS, PROBLEMS
from models.mlp import ACTIVATIONS, FEATURES, REGULARIZATIONS

SPEEDS = ("epoch", "max")  # named speeds; an integer 1 … MAX_STEPS_PER_FRAME is one too
MAX_NEURONS = 50
MAX_STEPS_PER_FRAME = 10_000
N_POINTS = 500  # points of every data set, training and test together
MAX_WEIGHT = 100  # a weight set by hand: |w| at most this (a link is widest from |w| = 4)
DATASET_NAMES = tuple(name for names in DATASETS.values() for name in names)

Problem = Literal[*PROBLEMS]
Dataset = Literal[*DATASET_NAMES]
Feature = Literal[*FEATURES]
Activation = Literal[*ACTIVATIONS]
Regularization = Literal[*REGULARIZATIONS]
Speed = Annotated[int, Field(ge=1, le=MAX_STEPS_PER_FRAME)] | Literal[*SPEEDS]


class MlpConfig(StrictMessage):
    """Every setting of a multi-layer network session, with the defaults a new session starts from."""

    problem: Problem = "classification"
    dataset: Dataset = "xor"
    noise: float = Field(0.0, ge=0.0, le=0.5)
    train_ratio: float = Field(0.5, ge=0.1, le=0.9)
    features: Annotated[list[Feature], shared.Distinct] = Field(
        default_factory=lambda: ["x1", "x2"], min_length=1, max_length=len(FEATURES)
    )
    hidden: list[Annotated[int, Field(ge=1, le=MAX_NEURONS)]] = Field(
        default_factory=lambda: [4, 2], max_length=MAX_LAYERS
    )
    activation: Activation = "tanh"
    learning_rate: float = Field(0.03, ge=1e-4, le=10.0)
    batch_size: int = Field(10, ge=1, le=100)
    regularization: Regularization = "none"
    regularization_rate: float = Field(0.0, ge=0.0, le=10.0)
    seed: int = Field(1, ge=0, le=MAX_SEED)
    speed: Speed = "epoch"


class SetWeightMessage(StrictMessage):
    """Sets one weight of the running network: `weights[layer][from][to]`, numbered as in frames
    (rows of layer 0 in the config's feature order). The indices are checked against the session's
    network (`app.labs.mlp`)."""

    type: Literal["set_weight"]
    layer: int = Field(ge=0)
    source: int = Field(ge=0, alias="from")
    target: int = Field(ge=0, alias="to")
    value: float = Field(ge=-MAX_WEIGHT, le=MAX_WEIGHT)


class DataMessage(shared.BaseDataMessage):
    """The data set's points as [x1, x2, label] rows (a label 0/1, or a regression target in
    [-1, 1]); sent on connect and whenever the data change."""

    problem: Problem
    domain: float
    train: list[list[float]]
    test: list[list[float]]


class FrameMessage(shared.BaseFrameMessage):
    """One frame of training, as `decode_frame` reads it from its binary message (the page's
    `decodeFrame` reads the same fields)."""

    epoch: float
    loss: float | None
    test_loss: float | None
    accuracy: float | None
    test_accuracy: float | None
    steps_per_frame: int
    grid_size: int
    neuron_grid_size: int
    domain: float
    layers: list[int]
    drawn: list[int]
    weights: list[list[list[float]]]
    biases: list[list[float]]


def decode_frame(data: bytes) -> tuple[FrameMessage, bytes]:
    """A frame's binary message: the frame, and its grids (docs/protocol.md)."""
    h = np.frombuffer(data, FRAME_HEADER, count=1)[0]
    if h["kind"] != FRAME_KIND:
        raise ValueError(f"not a frame: kind {h['kind']}")
    layers = [int(n) for n in h["layers"] if n]
    drawn = [int(n) for n in h["drawn"][: len(layers)]]
    offset, weights, biases = FRAME_HEADER.itemsize, [], []
    for n_in, n_out in zip(drawn[:-1], drawn[1:], strict=True):
        w = np.frombuffer(data, "<f4", n_in * n_out, offset).reshape(n_in, n_out)
        offset += w.nbytes
        b = np.frombuffer(data, "<f4", n_out, offset)
        offset += b.nbytes
        weights.append(w.tolist())
        biases.append(b.tolist())
    frame = FrameMessage(
        version=int(h["version"]),
        step=int(h["step"]),
        epoch=float(h["epoch"]),
        **{m: None if np.isnan(h[m]) else float(h[m]) for m in METRICS},
        diverged=bool(h["flags"] & FRAME_FLAGS["DIVERGED"]),
        running=bool(h["flags"] & FRAME_FLAGS["RUNNING"]),
        steps_per_frame=int(h["steps_per_frame"]),
        grid_size=int(h["grid_size"]),
        neuron_grid_size=int(h["neuron_grid_size"]),
        domain=float(h["domain"]),
        layers=layers,
        drawn=drawn,
        weights=weights,
        biases=biases,
    )
    return frame, data[offset:]


CLIENT_MESSAGES, CLIENT_MESSAGE, SERVER_MESSAGES = shared.messages(
    MlpConfig, DataMessage, FrameMessage, SetWeightMessage
)
CLIENT_TYPES = ", ".join(map(shared.type_name, CLIENT_MESSAGES))  # for "unknown type" errors
# What `static/js/protocol/mlp.js` exports besides the messages, the defaults and the ranges.
MIRRORED = (
    "PROBLEMS", "DATASETS", "FEATURES", "ACTIVATIONS", "REGULARIZATIONS", "SPEEDS", "MAX_LAYERS",
    "MAX_NEURONS", "MAX_STEPS_PER_FRAME", "MAX_SEED", "MAX_WEIGHT", "FRAME_KIND", "FRAME_FLAGS",
    "FRAME_LAYOUT", "FRAME_HEADER_BYTES",
)  # fmt: skip


def mirror() -> dict[str, object]:
    """The constants `static/js/protocol/mlp.js` exports, as JSON values."""
    return shared.mirror(MlpConfig, CLIENT_MESSAGES, SERVER_MESSAGES, globals(), MIRRORED)
