"""The one wire contract of the live labs: every socket message, both directions, discriminated by `type`.

`static/js/protocol.js` mirrors the names defined here; `tests/app/test_protocol_mirror.py` keeps them equal.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

DATASETS = ("xor", "circle", "gauss", "spiral")
FEATURES = ("x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
REGULARIZATIONS = ("none", "l1", "l2")
SPEEDS = ("epoch", "max")

MAX_LAYERS = 6
MAX_NEURONS = 50
MAX_STEPS_PER_FRAME = 10_000
MAX_SEED = 2**31 - 1

Dataset = Literal["xor", "circle", "gauss", "spiral"]
Feature = Literal["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"]
Activation = Literal["tanh", "relu", "sigmoid", "linear"]
Regularization = Literal["none", "l1", "l2"]
Speed = Annotated[int, Field(ge=1, le=MAX_STEPS_PER_FRAME)] | Literal["epoch", "max"]


class StrictMessage(BaseModel):
    # Unknown fields are errors (a typo must not be silently ignored); NaN/inf never pass.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class MlpConfig(StrictMessage):
    """Every setting of a multi-layer network session, with the defaults a new session starts from."""

    dataset: Dataset = "xor"
    noise: float = Field(0.0, ge=0.0, le=0.5)
    train_ratio: float = Field(0.5, ge=0.1, le=0.9)
    features: list[Feature] = Field(
        default_factory=lambda: ["x1", "x2"], min_length=1, max_length=7
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


class PartialConfig(StrictMessage):
    """Base of `config` messages: only the fields present change, checked later against the
    lab's full config model. Integers are fine where floats go (JSON has one number type); bools
    are not numbers."""

    @model_validator(mode="before")
    @classmethod
    def _ints_are_floats(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        floats = {n for n, f in cls.model_fields.items() if f.annotation == (float | None)}
        return {k: float(v) if k in floats and type(v) is int else v for k, v in data.items()}

    def changes(self) -> dict:
        """The fields this message sets."""
        return self.model_dump(exclude={"type"}, exclude_unset=True)


class ConfigMessage(PartialConfig):
    """A partial config: only the fields present change; ranges are checked against `MlpConfig`."""

    type: Literal["config"]
    dataset: Dataset | None = None
    noise: float | None = None
    train_ratio: float | None = None
    features: list[Feature] | None = None
    hidden: list[int] | None = None
    activation: Activation | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    regularization: Regularization | None = None
    regularization_rate: float | None = None
    seed: int | None = None
    speed: int | Literal["epoch", "max"] | None = None


class PlayMessage(StrictMessage):
    type: Literal["play"]


class PauseMessage(StrictMessage):
    type: Literal["pause"]


class StepMessage(StrictMessage):
    """Train one frame's worth of steps at the chosen speed (one epoch at "max"), then pause."""

    type: Literal["step"]


class ResetMessage(StrictMessage):
    """Back to step 0 with the initial weights the seed gives."""

    type: Literal["reset"]


ClientMessage = Annotated[
    ConfigMessage | PlayMessage | PauseMessage | StepMessage | ResetMessage,
    Field(discriminator="type"),
]
CLIENT_MESSAGE = TypeAdapter(ClientMessage)


class StateMessage(StrictMessage):
    """The session's whole config and status: sent on connect and after every control message."""

    type: Literal["state"] = "state"
    version: int
    config: MlpConfig
    running: bool
    diverged: bool
    limits: dict


class DataMessage(StrictMessage):
    """The data set's points as [x1, x2, label] rows; sent on connect and whenever the data change."""

    type: Literal["data"] = "data"
    version: int
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


class ErrorMessage(StrictMessage):
    type: Literal["error"] = "error"
    message: str
    field: str | None = None


SERVER_MESSAGES = (StateMessage, DataMessage, FrameMessage, ErrorMessage)
CLIENT_MESSAGES = (ConfigMessage, PlayMessage, PauseMessage, StepMessage, ResetMessage)
