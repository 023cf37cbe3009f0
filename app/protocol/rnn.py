"""The recurrent-network lab's wire contract (`/ws/rnn`, docs/protocol.md).

Its choices come from `models/rnn.py`; `static/js/protocol/rnn.js` exports `mirror()`.
"""

import unicodedata
from typing import Literal

from pydantic import Field, field_validator

from app.protocol import shared
from app.protocol.shared import MAX_SEED, StrictMessage
from models.rnn import (  # noqa: F401 (some only by name, in MIRRORED)
    BATCH_SIZE,
    CELLS,
    FORECASTS,
    GATES,
    KINDS,
    MAX_LENGTH,
    MAX_UNITS,
    MAX_VOCABULARY,
    MEMORY_DELAYS,
    MEMORY_TASKS,
    OPTIMIZERS,
    SAMPLE_LENGTH,
    TASKS,
)

MIN_LENGTH = 5
MAX_STEPS_PER_FRAME = 200
# A pasted text is capped well under the socket's message cap, so a too-long paste is an `error`
# naming `text`, not a closed socket; a page checks `new TextEncoder().encode(text).length`.
MAX_TEXT_BYTES = 8192
MIN_TEXT_CHARS = 10  # besides white space
# Jane Taylor, "The Star" (1806): public domain, repetitive enough to learn in a minute.
DEFAULT_TEXT = (
    "Twinkle, twinkle, little star,\nHow I wonder what you are!\nUp above the world so high,\n"
    "Like a diamond in the sky.\n\nWhen the blazing sun is gone,\nWhen he nothing shines upon,\n"
    "Then you show your little light,\nTwinkle, twinkle, all the night.\n\n"
    "Then the traveller in the dark\nThanks you for your tiny spark;\n"
    "He could not see which way to go,\nIf you did not twinkle so.\n"
)
DTYPES = ("float32", "uint8")  # of the binary frame's arrays

Task = Literal[*TASKS]
Kind = Literal[*KINDS]
Cell = Literal[*CELLS]
Optimizer = Literal[*OPTIMIZERS]
MemoryTask = Literal[*MEMORY_TASKS]


class RnnConfig(StrictMessage):
    """Every setting of a recurrent-network session, with the defaults a new session starts from."""

    task: Task = "sine"
    cell: Cell = "lstm"
    units: int = Field(32, ge=1, le=MAX_UNITS)
    length: int = Field(50, ge=MIN_LENGTH, le=MAX_LENGTH)
    period: float = Field(20.0, ge=2.0, le=100.0)
    noise: float = Field(0.1, ge=0.0, le=1.0)
    delay: int = Field(5, ge=1, le=MAX_LENGTH - 1)
    text: str = DEFAULT_TEXT
    temperature: float = Field(0.8, ge=0.1, le=2.0)
    learning_rate: float = Field(0.01, ge=1e-4, le=10.0)
    optimizer: Optimizer = "adam"
    clip_norm: float = Field(1.0, ge=0.0, le=100.0)
    recurrent_scale: float = Field(1.0, ge=0.0, le=3.0)
    seed: int = Field(1, ge=0, le=MAX_SEED)
    speed: int = Field(10, ge=1, le=MAX_STEPS_PER_FRAME)
    memory_curve: bool = False

    @field_validator("text")
    @classmethod
    def _plain_text(cls, v: str) -> str:
        v = v.replace("\r\n", "\n").replace("\r", "\n")
        bad = next(
            (c for c in v if unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t"), None
        )
        if bad is not None:
            raise ValueError(
                f"text may hold no control characters but newline and tab; found U+{ord(bad):04X}"
            )
        size = len(v.encode())
        if size > MAX_TEXT_BYTES:
            raise ValueError(f"text must be at most {MAX_TEXT_BYTES} bytes (UTF-8); got {size}")
        if sum(not c.isspace() for c in v) < MIN_TEXT_CHARS:
            raise ValueError(f"text needs at least {MIN_TEXT_CHARS} characters besides spaces")
        if len(set(v)) > MAX_VOCABULARY:
            raise ValueError(
                f"text may use at most {MAX_VOCABULARY} different characters; got {len(set(v))}"
            )
        return v


class RnnDataMessage(shared.BaseDataMessage):
    """What the task is; sent on connect and whenever the task's data change."""

    task: Task
    kind: Kind
    length: int
    n_inputs: int
    n_outputs: int
    vocabulary: list[str]  # class names: symbols, bits or the text's characters
    chance: float | None  # memory tasks: accuracy of guessing
    delay: int | None  # memory tasks: steps between an input and the target needing it
    warmup: int | None  # forecasts: steps the free-running forecast is fed the true series
    batch_size: int


class ArraySpec(StrictMessage):
    """Where one array lies in a frame's binary message (row-major, little-endian)."""

    name: str
    dtype: Literal[*DTYPES]
    shape: list[int]
    offset: int  # bytes from the start of the binary message
    lo: float | None = None  # uint8 arrays: value = lo + q / 255 · (hi − lo)
    hi: float | None = None


class MemoryCurve(StrictMessage):
    """Validation accuracy against the delay for every cell, measured while the session plays."""

    task: MemoryTask
    units: int
    delays: list[int]
    cells: list[Cell]
    accuracy: list[list[float | None]]  # [cell][delay]; null until measured or if diverged
    chance: float
    step: int
    steps: int
    done: bool


class RnnFrameMessage(shared.BaseFrameMessage):
    """One frame; the binary message right after it holds `arrays` (`frame_bytes` bytes)."""

    steps_per_frame: int
    loss: float | None
    val_loss: float | None
    val_accuracy: float | None
    figures: bool  # whether this frame carries the figures: val_*, arrays, spectral_radius
    compiled: bool  # whether its XLA build ran it (else the slower plain trace, while it builds)
    cell: Cell
    units: int
    length: int
    gates: list[str]  # the gate arrays of `cell`, in order
    spectral_radius: float | None
    sample: str | None  # text: freshly generated text, every few seconds
    memory_curve: MemoryCurve | None
    arrays: list[ArraySpec]
    frame_bytes: int


CLIENT_MESSAGES, CLIENT_MESSAGE, SERVER_MESSAGES = shared.messages(
    RnnConfig, RnnDataMessage, RnnFrameMessage
)
# What `static/js/protocol/rnn.js` exports besides the messages, the defaults and the ranges.
MIRRORED = (
    "TASKS", "FORECASTS", "MEMORY_TASKS", "CELLS", "GATES", "OPTIMIZERS", "DTYPES", "MEMORY_DELAYS",
    "BATCH_SIZE", "SAMPLE_LENGTH", "MAX_STEPS_PER_FRAME", "MAX_TEXT_BYTES", "MIN_TEXT_CHARS",
    "MAX_VOCABULARY", "MAX_SEED",
)  # fmt: skip


def mirror() -> dict[str, object]:
    """The constants `static/js/protocol/rnn.js` exports, as JSON values."""
    return shared.mirror(RnnConfig, CLIENT_MESSAGES, SERVER_MESSAGES, globals(), MIRRORED)
