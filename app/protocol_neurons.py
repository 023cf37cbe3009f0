"""The wire contract of `/ws/neurons` (docs/protocol.md): its config and its server messages.

Play, pause, step, reset and error are the same messages as the multi-layer lab's (`app.protocol`).
"""

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, field_validator

from app.protocol import (
    MAX_SEED,
    ErrorMessage,
    PartialConfig,
    PauseMessage,
    PlayMessage,
    ResetMessage,
    StepMessage,
    StrictMessage,
)

MODELS = ("linear", "logistic", "softmax")
# The data sets each model can learn from; the first is the one a model switch picks.
DATASETS = {"linear": ("line",), "logistic": ("linear", "xor"), "softmax": ("three", "iris")}
IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
MAX_STEPS_PER_FRAME = 1000

Model = Literal["linear", "logistic", "softmax"]
Dataset = Literal["line", "linear", "xor", "three", "iris"]
IrisFeature = Literal["sepal_length", "sepal_width", "petal_length", "petal_width"]


class NeuronConfig(StrictMessage):
    """Every setting of a single-neuron session, with the defaults a new session starts from."""

    model: Model = "linear"
    dataset: Dataset = "line"
    noise: float = Field(0.1, ge=0.0, le=0.5)
    slope: float = Field(0.5, ge=-3.0, le=3.0)
    intercept: float = Field(1.0, ge=-3.0, le=3.0)
    iris_features: list[IrisFeature] = Field(
        default_factory=lambda: ["petal_length", "petal_width"], min_length=2, max_length=2
    )
    learning_rate: float = Field(0.03, ge=1e-4, le=10.0)
    seed: int = Field(1, ge=0, le=MAX_SEED)
    speed: int = Field(5, ge=1, le=MAX_STEPS_PER_FRAME)

    @field_validator("iris_features")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"iris_features must be two different features. Received: {v}")
        return v


class NeuronConfigMessage(PartialConfig):
    """A partial config: only the fields present change; ranges are checked against `NeuronConfig`."""

    type: Literal["config"]
    model: Model | None = None
    dataset: Dataset | None = None
    noise: float | None = None
    slope: float | None = None
    intercept: float | None = None
    iris_features: list[IrisFeature] | None = None
    learning_rate: float | None = None
    seed: int | None = None
    speed: int | None = None


NeuronClientMessage = Annotated[
    NeuronConfigMessage | PlayMessage | PauseMessage | StepMessage | ResetMessage,
    Field(discriminator="type"),
]
CLIENT_MESSAGE = TypeAdapter(NeuronClientMessage)


class NeuronStateMessage(StrictMessage):
    """The whole config and status: sent on connect and after every control message."""

    type: Literal["state"] = "state"
    version: int
    config: NeuronConfig
    running: bool
    diverged: bool
    limits: dict


class NeuronDataMessage(StrictMessage):
    """The points: `[x, y]` rows (linear) or `[x1, x2, label]` rows; sent when the data change."""

    type: Literal["data"] = "data"
    version: int
    model: Model
    dataset: Dataset
    domain: float
    axes: list[str]
    classes: list[str]
    points: list[list[float]]


class NeuronFrameMessage(StrictMessage):
    """One frame; the binary message of `frame_bytes` bytes right after it holds the grid."""

    type: Literal["frame"] = "frame"
    version: int
    step: int
    loss: float | None
    accuracy: float | None
    weights: list[list[float]]
    bias: list[float]
    diverged: bool
    running: bool
    grid_size: int
    frame_bytes: int


SERVER_MESSAGES = (NeuronStateMessage, NeuronDataMessage, NeuronFrameMessage, ErrorMessage)
CLIENT_MESSAGES = (NeuronConfigMessage, PlayMessage, PauseMessage, StepMessage, ResetMessage)
