"""static/js/protocol.js must name what app/protocol.py defines: a rename on either side fails."""

import json
import re
from pathlib import Path
from typing import get_args

import pytest
from annotated_types import Ge, Le

from app import protocol
from app.protocol import CLIENT_MESSAGES, SERVER_MESSAGES, MlpConfig

PROTOCOL_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "protocol.js"
FROZEN = re.compile(r"export const (\w+) = Object\.freeze\((.*?)\);", re.DOTALL)
NUMBER = re.compile(r"export const (\w+) = (-?\d+);")
TRAILING_COMMA = re.compile(r",(\s*[\]}])")


@pytest.fixture(scope="module")
def js() -> dict[str, object]:
    text = PROTOCOL_JS.read_text()
    consts: dict[str, object] = {
        name: json.loads(TRAILING_COMMA.sub(r"\1", literal))
        for name, literal in FROZEN.findall(text)
    }
    consts.update({name: int(value) for name, value in NUMBER.findall(text)})
    return consts


def _type_literal(message: type) -> str:
    (literal,) = get_args(message.model_fields["type"].annotation)
    return literal


def _bounds(field: str) -> list[float] | None:
    metadata = MlpConfig.model_fields[field].metadata
    ge = next((m.ge for m in metadata if isinstance(m, Ge)), None)
    le = next((m.le for m in metadata if isinstance(m, Le)), None)
    return None if ge is None or le is None else [ge, le]


def test_every_export_is_checked(js: dict[str, object]) -> None:
    assert set(js) == {
        "CLIENT_MESSAGES",
        "SERVER_MESSAGES",
        "DATASETS",
        "FEATURES",
        "ACTIVATIONS",
        "REGULARIZATIONS",
        "SPEEDS",
        "MAX_LAYERS",
        "MAX_NEURONS",
        "MAX_STEPS_PER_FRAME",
        "MAX_SEED",
        "CONFIG_DEFAULTS",
        "LIMITS",
    }


def test_message_types(js: dict[str, object]) -> None:
    assert list(js["CLIENT_MESSAGES"].values()) == [_type_literal(m) for m in CLIENT_MESSAGES]
    assert list(js["SERVER_MESSAGES"].values()) == [_type_literal(m) for m in SERVER_MESSAGES]
    for names in (js["CLIENT_MESSAGES"], js["SERVER_MESSAGES"]):
        assert all(key == value.upper() for key, value in names.items())


@pytest.mark.parametrize(
    "name", ["DATASETS", "FEATURES", "ACTIVATIONS", "REGULARIZATIONS", "SPEEDS"]
)
def test_enums(js: dict[str, object], name: str) -> None:
    assert tuple(js[name]) == getattr(protocol, name)


@pytest.mark.parametrize("name", ["MAX_LAYERS", "MAX_NEURONS", "MAX_STEPS_PER_FRAME", "MAX_SEED"])
def test_limits_constants(js: dict[str, object], name: str) -> None:
    assert js[name] == getattr(protocol, name)


def test_config_fields_and_defaults(js: dict[str, object]) -> None:
    assert list(js["CONFIG_DEFAULTS"]) == list(MlpConfig.model_fields)
    assert js["CONFIG_DEFAULTS"] == MlpConfig().model_dump()


def test_numeric_ranges(js: dict[str, object]) -> None:
    ranged = {f: _bounds(f) for f in MlpConfig.model_fields if _bounds(f) is not None}
    assert js["LIMITS"] == ranged
