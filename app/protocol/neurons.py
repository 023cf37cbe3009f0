"""The single-neuron lab's wire contract (`/ws/neurons`, docs/protocol.md).

Its choices come from `models/neurons.py`; `static/js/protocol/neurons.js` exports `mirror()`.
"""

from typing import Annotated, Literal

from pydantic import Field

from app.protocol import shared
from app.protocol.shared import MAX_SEED, StrictMessage
from models.neurons import DATASETS, IRIS_FEATURES, KINDS

MODELS = KINDS  # the page calls a neuron's kind its model
MAX_STEPS_PER_FRAME = 1000
DATASET_NAMES = tuple(name for names in DATASETS.values() for name in names)

Model = Literal[*MODELS]
Dataset = Literal[*DATASET_NAMES]
IrisFeature = Literal[*IRIS_FEATURES]


class NeuronConfig(StrictMessage):
    """Every setting of a single-neuron session, with the defaults a new session starts from."""

    model: Model = "linear"
    dataset: Dataset = "line"
    noise: float = Field(0.1, ge=0.0, le=0.5)
    slope: float = Field(0.5, ge=-3.0, le=3.0)
    intercept: float = Field(1.0, ge=-3.0, le=3.0)
    iris_features: Annotated[list[IrisFeature], shared.Distinct] = Field(
        default_factory=lambda: ["petal_length", "petal_width"], min_length=2, max_length=2
    )
    learning_rate: float = Field(0.03, ge=1e-4, le=10.0)
    seed: int = Field(1, ge=0, le=MAX_SEED)
    speed: int = Field(5, ge=1, le=MAX_STEPS_PER_FRAME)


class NeuronDataMessage(shared.BaseDataMessage):
    """The points: `[x, y]` rows (linear) or `[x1, x2, label]` rows; sent when the data change."""

    model: Model
    dataset: Dataset
    domain: float
    axes: list[str]
    classes: list[str]
    points: list[list[float]]


class NeuronFrameMessage(shared.BaseFrameMessage):
    """One frame; the binary message of `frame_bytes` bytes right after it holds the grid."""

    loss: float | None
    accuracy: float | None
    weights: list[list[float]]
    bias: list[float]
    grid_size: int
    frame_bytes: int


CLIENT_MESSAGES, CLIENT_MESSAGE, SERVER_MESSAGES = shared.messages(
    NeuronConfig, NeuronDataMessage, NeuronFrameMessage
)
# What `static/js/protocol/neurons.js` exports besides the messages, the defaults and the ranges.
MIRRORED = ("MODELS", "DATASETS", "IRIS_FEATURES", "MAX_STEPS_PER_FRAME", "MAX_SEED")


def mirror() -> dict[str, object]:
    """The constants `static/js/protocol/neurons.js` exports, as JSON values."""
    return shared.mirror(NeuronConfig, CLIENT_MESSAGES, SERVER_MESSAGES, globals(), MIRRORED)
