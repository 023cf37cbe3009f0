"""The `/ws/rnn` socket through FastAPI's TestClient: the protocol, the binary frame, bad input."""

import itertools
import json
import math

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.labs import rnn as lab
from app.labs.rnn import COMPILE_AFTER_FRAMES
from app.main import create_app
from app.protocol.rnn import MAX_TEXT_BYTES, RnnFrameMessage
from app.settings import Settings
from models import rnn
from tests.app.live_socket import Socket, assert_refused_and_alive, close_code, lab_socket_fixture


@pytest.fixture
def settings() -> Settings:
    # No background XLA builds: every call runs the plain trace.
    return Settings(use_xla=False)


sock = lab_socket_fixture("rnn")


def arrays(frame: dict) -> dict[str, np.ndarray]:
    """The frame's binary message decoded as its `arrays` describe."""
    out = {}
    for a in frame["arrays"]:
        dtype = np.dtype("<f4") if a["dtype"] == "float32" else np.dtype(np.uint8)
        count = math.prod(a["shape"])
        v = np.frombuffer(frame["binary"], dtype, count, a["offset"]).reshape(a["shape"])
        out[a["name"]] = v if a["dtype"] == "float32" else a["lo"] + v / 255 * (a["hi"] - a["lo"])
    return out


def test_connect_sends_state_data_and_a_first_frame_with_figures(sock: Socket) -> None:
    state = sock.next()
    assert state["type"] == "state" and state["config"]["cell"] == "lstm"
    assert state["limits"]["batch_size"] == 32
    data = sock.next()
    assert data["type"] == "data" and data["kind"] == "forecast" and data["warmup"] == 25
    frame = sock.next()
    RnnFrameMessage.model_validate({k: v for k, v in frame.items() if k != "binary"})
    assert frame["step"] == 0 and frame["figures"] and frame["version"] == 0
    assert frame["compiled"] is False  # XLA is off in these tests
    assert frame["gates"] == ["input_gate", "forget_gate", "candidate", "output_gate"]
    assert frame["frame_bytes"] == len(frame["binary"]) > 0
    a = arrays(frame)
    t, u = frame["length"], frame["units"]
    assert a["h"].shape == a["c"].shape == a["forget_gate"].shape == (t, u)
    assert a["eigenvalues"].shape == (u, 2)
    assert a["x"].shape == a["target"].shape == a["free_running"].shape == (t,)
    np.testing.assert_allclose(a["x"][1:], a["target"][:-1])  # forecasting the next value
    assert (a["grad_norm"] > 0).all() and np.isfinite(a["grad_norm"]).all()
    assert abs(frame["spectral_radius"] - 1.0) < 1e-3  # orthogonal blocks, scale 1
    assert ((a["forget_gate"] >= 0) & (a["forget_gate"] <= 1)).all()
    # The binary message is laid out without gaps, float32 arrays first.
    ends = [x["offset"] for x in frame["arrays"]] + [frame["frame_bytes"]]
    sizes = [math.prod(x["shape"]) * (4 if x["dtype"] == "float32" else 1) for x in frame["arrays"]]
    assert [b - a for a, b in itertools.pairwise(ends)] == sizes


def test_play_streams_steps_and_figures_and_pause_stops(sock: Socket) -> None:
    sock.send({"type": "config", "units": 8, "length": 20})
    sock.send({"type": "play"})
    frames = [sock.until(lambda m: m["type"] == "frame" and m["step"] > 0) for _ in range(12)]
    steps = [f["step"] for f in frames]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    # The chosen 10 a frame; fewer when the machine is busy (`test_cpu_share.py`), never none.
    assert frames[0]["steps_per_frame"] == 10
    assert all(1 <= f["steps_per_frame"] <= 10 for f in frames)
    assert any(f["figures"] for f in frames)
    assert all(f["frame_bytes"] == 0 and f["val_loss"] is None for f in frames if not f["figures"])
    sock.send({"type": "pause"})
    assert sock.until(lambda m: m["type"] == "state")["running"] is False


def test_step_trains_one_frame_then_pauses_and_reset_starts_over(sock: Socket) -> None:
    sock.send({"type": "step"})
    frame = sock.until(lambda m: m["type"] == "frame" and m["step"] > 0)
    assert frame["step"] == 10 and frame["figures"] and frame["running"] is False
    sock.send({"type": "reset"})
    assert sock.until(lambda m: m["type"] == "frame" and m["step"] == 0)["figures"]


def test_learning_rate_keeps_the_run_and_cell_restarts_it(sock: Socket) -> None:
    sock.send({"type": "step"})
    sock.until(lambda m: m["type"] == "frame" and m["step"] == 10)
    sock.send({"type": "config", "learning_rate": 0.003, "optimizer": "rmsprop"})
    sock.send({"type": "step"})
    kept = sock.until(lambda m: m["type"] == "frame" and m["version"] == 1 and m["step"] > 10)
    assert kept["step"] == 20
    sock.send({"type": "config", "cell": "gru"})
    restarted = sock.until(lambda m: m["type"] == "frame" and m["version"] == 2)
    assert restarted["step"] == 0 and restarted["gates"] == [
        "update_gate",
        "reset_gate",
        "candidate",
    ]
    assert "c" not in {a["name"] for a in restarted["arrays"]}


def test_a_memory_task_sends_its_symbols_and_accuracy(sock: Socket) -> None:
    sock.send({"type": "config", "task": "recall", "delay": 3, "cell": "simple_rnn", "length": 12})
    data = sock.until(lambda m: m["type"] == "data" and m["version"] == 1)
    assert data["vocabulary"] == ["A", "B", "C", "D"] and data["chance"] == 0.25
    assert data["delay"] == 3
    frame = sock.until(lambda m: m["type"] == "frame" and m["version"] == 1)
    assert 0 <= frame["val_accuracy"] <= 1 and frame["gates"] == []
    a = arrays(frame)
    np.testing.assert_array_equal(a["target"][3:], a["x"][:-3])
    np.testing.assert_array_equal(a["scored"], [0] * 3 + [1] * 9)
    assert ((a["probability"] >= 0) & (a["probability"] <= 1)).all()


def test_a_shorter_length_pulls_the_delay_along_but_an_explicit_one_is_refused(
    sock: Socket,
) -> None:
    sock.send({"type": "config", "task": "recall", "delay": 30, "length": 40})
    sock.send({"type": "config", "length": 20})
    state = sock.until(lambda m: m["type"] == "state" and m["version"] == 2)
    assert state["config"]["delay"] == 19
    sock.send({"type": "config", "delay": 25})
    error = sock.until(lambda m: m["type"] == "error")
    assert error["field"] == "delay" and "less than length (20)" in error["message"]


def test_the_text_task_learns_the_pasted_text_and_writes_samples(sock: Socket) -> None:
    sock.send({"type": "config", "task": "text", "text": "abc abd abe " * 10, "length": 10})
    data = sock.until(lambda m: m["type"] == "data" and m["version"] == 1)
    assert data["kind"] == "text" and data["vocabulary"] == [" ", "a", "b", "c", "d", "e"]
    frame = sock.until(lambda m: m["type"] == "frame" and m["version"] == 1)
    assert len(frame["sample"]) == 161 and set(frame["sample"]) <= set(" abcde")
    # Editing the text of another task changes nothing: no new data, no restart.
    sock.send({"type": "config", "task": "sine"})
    sock.send({"type": "step"})
    sock.until(lambda m: m["type"] == "frame" and m["version"] == 2 and m["step"] == 10)
    sock.send({"type": "config", "text": "something else entirely"})
    later = sock.until(lambda m: m["type"] in ("data", "frame") and m["version"] == 3)
    assert later["type"] == "frame" and later["step"] == 10


def test_memory_curve_advances_while_training(sock: Socket) -> None:
    sock.send({"type": "config", "memory_curve": True, "units": 4})
    frame = sock.until(lambda m: m["type"] == "frame" and m["version"] == 1)
    curve = frame["memory_curve"]
    assert curve["task"] == "first_bit" and curve["cells"] == ["simple_rnn", "gru", "lstm"]
    assert curve["step"] == 0 and curve["accuracy"] == [[None] * len(curve["delays"])] * 3
    sock.send({"type": "step"})
    sock.until(lambda m: m["type"] == "frame" and m["step"] > 0)
    # The curve advances after a training frame has gone out: the next frame shows it.
    sock.send({"type": "config", "learning_rate": 0.02})
    curve = sock.until(lambda m: m["type"] == "frame" and m["version"] == 2)["memory_curve"]
    assert curve["step"] >= 1 and all(0 <= a <= 1 for row in curve["accuracy"] for a in row)
    sock.send({"type": "config", "memory_curve": False})
    assert sock.until(lambda m: m["type"] == "frame" and m["version"] == 3)["memory_curve"] is None


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "config", "length": 10**6}, "length"),
        ({"type": "config", "length": 4}, "length"),
        ({"type": "config", "units": 10**6}, "units"),
        ({"type": "config", "units": 0}, "units"),
        ({"type": "config", "learning_rate": 0}, "learning_rate"),
        ({"type": "config", "learning_rate": "NaN"}, "learning_rate"),
        ({"type": "config", "clip_norm": -1}, "clip_norm"),
        ({"type": "config", "recurrent_scale": 4}, "recurrent_scale"),
        ({"type": "config", "temperature": 0}, "temperature"),
        ({"type": "config", "speed": 201}, "speed"),
        ({"type": "config", "cell": "transformer"}, "cell"),
        ({"type": "config", "optimizer": "adamw"}, "optimizer"),
        ({"type": "config", "task": "bogus"}, "task"),
        ({"type": "config", "memory_curve": 1}, "memory_curve"),
        ({"type": "config", "text": ""}, "text"),
        ({"type": "config", "text": "      \n\n  "}, "text"),
        ({"type": "config", "text": "ring the bell\x07 twice"}, "text"),
        ({"type": "config", "text": "lone \ud800 surrogate here"}, "text"),
        ({"type": "config", "text": "x" * (MAX_TEXT_BYTES + 1)}, "text"),
        ({"type": "config", "text": "".join(map(chr, range(0x4E00, 0x4E00 + 200)))}, "text"),
        ({"type": "config", "text": ["a list"]}, "text"),
        ({"type": "config", "task": "recall", "delay": 50}, "delay"),
        ({"type": "config", "bogus": 1}, "bogus"),
        ({"type": "jump"}, "type"),
    ],
)
def test_bad_input_is_an_error_naming_the_field_and_the_session_lives(
    sock: Socket, message: dict, field: str
) -> None:
    assert_refused_and_alive(sock, message, field)


def test_a_text_over_its_cap_names_the_cap(sock: Socket) -> None:
    sock.send({"type": "config", "text": "é" * 5000})  # 10,000 bytes, under the socket's cap
    message = sock.until(lambda m: m["type"] == "error")["message"]
    assert f"at most {MAX_TEXT_BYTES} bytes" in message and "10000" in message


def test_a_paste_over_the_socket_cap_closes_it_with_1009(sock: Socket) -> None:
    sock.ws.send_text(json.dumps({"type": "config", "text": "a" * 100_000}))
    assert close_code(sock) == 1009


def test_nan_in_json_is_an_error(sock: Socket) -> None:
    sock.ws.send_text('{"type": "config", "learning_rate": NaN}')
    assert "NaN" in sock.until(lambda m: m["type"] == "error")["message"]


def test_a_huge_learning_rate_diverges_without_nan_on_the_wire(sock: Socket) -> None:
    sock.send(
        {
            "type": "config",
            "cell": "simple_rnn",
            "units": 8,
            "optimizer": "sgd",
            "learning_rate": 10,
            "clip_norm": 0,
            "recurrent_scale": 3,
        }
    )
    sock.send({"type": "play"})
    seen = []
    frame = sock.until(lambda m: seen.append(m) or (m["type"] == "frame" and m["diverged"]))
    assert frame["loss"] is None and frame["val_loss"] is None and frame["running"] is False
    assert frame["frame_bytes"] == 0 and frame["arrays"] == []
    states = [m for m in seen if m["type"] == "state"]
    assert states[-1]["diverged"] is True and states[-1]["running"] is False
    sock.send({"type": "config", "learning_rate": 0.01})
    sock.send({"type": "step"})  # starts over
    # A frame of the diverged run at version 2 may still come before the new run's state.
    sock.until(lambda m: m["type"] == "state" and m["version"] == 2 and not m["diverged"])
    frame = sock.until(lambda m: m["type"] == "frame" and m["step"] > 0)
    assert not frame["diverged"] and frame["loss"] is not None and frame["step"] == 10


def test_a_session_queues_its_shapes_xla_build_then_runs_on_it() -> None:
    shape = rnn.TraceShape(
        "lstm", "forecast", models=1, units=4, length=10, n_inputs=1, n_outputs=1
    )
    with TestClient(create_app(Settings(use_xla=True))) as c, c.websocket_connect("/ws/rnn") as ws:
        s = Socket(ws)
        s.send({"type": "config", "units": 3, "length": 7, "speed": 2})  # a shape of its own
        s.send({"type": "play"})
        for _ in range(COMPILE_AFTER_FRAMES):
            frame = s.until(lambda m: m["type"] == "frame" and m["step"] > 0)
            assert frame["compiled"] is False  # the plain trace serves a new shape at once
        s.until(lambda m: m["type"] == "frame" and m["step"] > 0)
        assert shape in lab._compiling or rnn.is_compiled(shape)  # its build is queued
        s.send({"type": "pause"})
        rnn.compile_xla(shape)  # what the queued build does (at once, if it has not yet)
        s.send({"type": "step"})
        assert s.until(lambda m: m["type"] == "frame" and m["version"] == 1 and m["compiled"])


def test_a_failing_call_is_an_error_and_the_session_still_answers(
    sock: Socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock.until(lambda m: m["type"] == "frame")

    def fail(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(rnn, "train", fail)
    sock.send({"type": "play"})
    seen = []
    error = sock.until(lambda m: seen.append(m) or m["type"] == "error")
    assert "failed on the server" in error["message"]
    assert [m["running"] for m in seen if m["type"] == "state"][-1] is False  # said before
    monkeypatch.undo()
    sock.send({"type": "step"})
    assert sock.until(lambda m: m["type"] == "frame" and m["step"] > 0)["loss"] is not None
