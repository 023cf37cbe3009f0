"""The multi-layer network lab's wire contract (`/ws/mlp`, docs/protocol.md).

Its choices come from `models/`; `static/js/protocol/mlp.js` exports `mirror()`.
"""

from typing import Annotated, Literal

from pydantic import Field, field_validator

from app.protocol import shared
from app.protocol.shared import MAX_SEED, StrictMessage
from models.datasets import DATASETS, PROBLEMS
from models.mlp import ACTIVATIONS, FEATURES, REGULARIZATIONS

SPEEDS = ("epoch", "max")  # named speeds; an integer 1 … MAX_STEPS_PER_FRAME is one too
MAX_LAYERS = 6
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
    features: list[Feature] = Field(
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

    @field_validator("features")
    @classmethod
    def _unique_features(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"features must not repeat. Received: features={v}")
        return v


ConfigMessage = shared.config_message(MlpConfig)


class SetWeightMessage(StrictMessage):
    """Sets one weight of the running network: `weights[layer][from][to]`, numbered as in frames
    (rows of layer 0 in the config's feature order). The indices are checked against the session's
    network (`app.labs.mlp`)."""

    type: Literal["set_weight"]
    layer: int = Field(ge=0)
    source: int = Field(ge=0, alias="from")
    target: int = Field(ge=0, alias="to")
    value: float = Field(ge=-MAX_WEIGHT, le=MAX_WEIGHT)


class DataMessage(StrictMessage):
    """The data set's points as [x1, x2, label] rows (a label 0/1, or a regression target in
    [-1, 1]); sent on connect and whenever the data change."""

    type: Literal["data"] = "data"
    version: int
    problem: Problem
    domain: float
    train: list[list[float]]
    test: list[list[float]]


class FrameMessage(StrictMessage):
    """One frame of training; the binary message of `frame_bytes` bytes right after it holds its grids."""

    type: Literal["frame"] = "frame"
    version: int
    step: int
    epoch: float
    loss: float | None
    test_loss: float | None
    accuracy: float | None
    test_accuracy: float | None
    diverged: bool
    running: bool
    steps_per_frame: int
    grid_size: int
    neuron_grid_size: int
    domain: float
    layers: list[int]
    drawn: list[int]
    weights: list[list[list[float]]]
    biases: list[list[float]]
    frame_bytes: int


CLIENT_MESSAGES = (*shared.client_messages(ConfigMessage), SetWeightMessage)
CLIENT_MESSAGE = shared.client_adapter(CLIENT_MESSAGES)
CLIENT_TYPES = ", ".join(map(shared.type_name, CLIENT_MESSAGES))  # for "unknown type" errors
SERVER_MESSAGES = shared.server_messages(MlpConfig, DataMessage, FrameMessage)


def mirror() -> dict[str, object]:
    """The constants `static/js/protocol/mlp.js` exports, as JSON values."""
    return shared.mirror(
        MlpConfig,
        CLIENT_MESSAGES,
        SERVER_MESSAGES,
        PROBLEMS=list(PROBLEMS),
        DATASETS={problem: list(names) for problem, names in DATASETS.items()},
        FEATURES=list(FEATURES),
        ACTIVATIONS=list(ACTIVATIONS),
        REGULARIZATIONS=list(REGULARIZATIONS),
        SPEEDS=list(SPEEDS),
        MAX_LAYERS=MAX_LAYERS,
        MAX_NEURONS=MAX_NEURONS,
        MAX_STEPS_PER_FRAME=MAX_STEPS_PER_FRAME,
        MAX_SEED=MAX_SEED,
        MAX_WEIGHT=MAX_WEIGHT,
    )
