"""Each live lab's static/js/protocol/<slug>.js must export what its app.protocol.<slug> defines:
a rename or a new value on either side fails."""

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from annotated_types import Ge, Le

from app.labs import Lab, all_labs

ROOT = Path(__file__).resolve().parents[2]
STATIC_JS = ROOT / "static" / "js" / "protocol"
FROZEN = re.compile(r"export const (\w+) = Object\.freeze\((.*?)\);", re.DOTALL)
NUMBER = re.compile(r"export const (\w+) = (-?\d+);")
TRAILING_COMMA = re.compile(r",(\s*[\]}])")
DERIVED = {"CLIENT_MESSAGES", "SERVER_MESSAGES", "CONFIG_DEFAULTS", "LIMITS"}
LABS = [lab for lab in all_labs() if lab.protocol is not None]


@pytest.fixture(params=LABS, ids=lambda lab: lab.slug)
def lab(request) -> Lab:
    return request.param


@pytest.fixture
def js(lab: Lab) -> dict[str, object]:
    text = (STATIC_JS / f"{lab.slug}.js").read_text()
    consts: dict[str, object] = {
        name: json.loads(TRAILING_COMMA.sub(r"\1", literal))
        for name, literal in FROZEN.findall(text)
    }
    consts.update({name: int(value) for name, value in NUMBER.findall(text)})
    return consts


def _type_literal(message: type) -> str:
    (literal,) = get_args(message.model_fields["type"].annotation)
    return literal


def _bounds(config: type, field: str) -> list[float] | None:
    metadata = config.model_fields[field].metadata
    ge = next((m.ge for m in metadata if isinstance(m, Ge)), None)
    le = next((m.le for m in metadata if isinstance(m, Le)), None)
    return None if ge is None or le is None else [ge, le]


def test_every_live_lab_has_a_protocol() -> None:
    assert {lab.slug for lab in all_labs() if lab.session} <= {lab.slug for lab in LABS}


def test_every_export_is_checked(lab: Lab, js: dict[str, object]) -> None:
    assert set(js) == set(lab.protocol.mirror())


def test_the_mirror_equals_mirror(lab: Lab, js: dict[str, object]) -> None:
    assert js == lab.protocol.mirror()


def test_message_types(lab: Lab, js: dict[str, object]) -> None:
    p = lab.protocol
    assert list(js["CLIENT_MESSAGES"].values()) == [_type_literal(m) for m in p.CLIENT_MESSAGES]
    assert list(js["SERVER_MESSAGES"].values()) == [_type_literal(m) for m in p.SERVER_MESSAGES]
    for names in (js["CLIENT_MESSAGES"], js["SERVER_MESSAGES"]):
        assert all(key == value.upper() for key, value in names.items())


def test_choices_and_limit_constants(lab: Lab, js: dict[str, object]) -> None:
    # Everything else the mirror exports is a constant of the protocol module, under its name.
    for name in set(js) - DERIVED:
        assert js[name] == json.loads(json.dumps(getattr(lab.protocol, name))), name


def test_config_fields_and_defaults(lab: Lab, js: dict[str, object]) -> None:
    config = lab.session.config_type
    assert list(js["CONFIG_DEFAULTS"]) == list(config.model_fields)
    assert js["CONFIG_DEFAULTS"] == config().model_dump()


def test_numeric_ranges(lab: Lab, js: dict[str, object]) -> None:
    config = lab.session.config_type
    ranged = {f: _bounds(config, f) for f in config.model_fields if _bounds(config, f) is not None}
    assert js["LIMITS"] == ranged


def test_the_load_bench_reads_the_protocols_frame_header_without_tensorflow() -> None:
    # The bench's client processes read the MLP frame's header without importing TensorFlow.
    from app.bench.load import Frames
    from app.protocol.mlp import FRAME_HEADER, FRAME_KIND

    header = np.zeros(1, FRAME_HEADER)
    header[["kind", "version", "step"]] = (FRAME_KIND, 7, 12345.0)
    assert Frames().of(header.tobytes()) == (7, 12345)
    header["kind"] = FRAME_KIND + 1
    assert Frames().of(header.tobytes()) is None
    check = "import sys, app.bench.load; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", check], check=True, cwd=ROOT)
