"""The `/ws/neurons` socket through FastAPI's TestClient: the protocol, and every bad input."""

import pytest

from app.settings import Settings
from models.neurons import GRID_SIZE
from tests.app.live_socket import Socket, assert_refused_and_alive, lab_socket_fixture


@pytest.fixture
def settings() -> Settings:
    # This lab never uses the stacked runner: skip its background XLA warm-up.
    return Settings(use_xla=False)


sock = lab_socket_fixture("neurons")


def test_connect_sends_state_data_and_a_first_frame(sock: Socket) -> None:
    state = sock.next()
    assert state["type"] == "state" and state["config"]["model"] == "linear"
    data = sock.next()
    assert data["type"] == "data" and data["dataset"] == "line"
    assert all(len(p) == 2 for p in data["points"])
    frame = sock.next()
    assert frame["type"] == "frame" and frame["step"] == 0
    assert len(frame["weights"]) == 1 and len(frame["bias"]) == 1
    assert frame["frame_bytes"] == len(frame["binary"]) == 0  # a line needs no grid


def test_play_streams_increasing_steps_and_pause_stops(sock: Socket) -> None:
    sock.send({"type": "config", "speed": 10})
    sock.send({"type": "play"})
    frames = [sock.until(lambda m: m["type"] == "frame" and m["step"] > 0) for _ in range(5)]
    steps = [f["step"] for f in frames]
    assert steps == sorted(steps) and len(set(steps)) == 5
    assert all(s % 10 == 0 for s in steps)
    assert frames[-1]["loss"] < frames[0]["loss"]
    sock.send({"type": "pause"})
    assert sock.until(lambda m: m["type"] == "state")["running"] is False


def test_softmax_grid_is_three_planes_summing_to_one(sock: Socket) -> None:
    sock.send({"type": "config", "model": "softmax"})
    state = sock.until(lambda m: m["type"] == "state" and m["version"] == 1)
    assert state["config"]["dataset"] == "three"  # a model switch alone picks a fitting data set
    data = sock.until(lambda m: m["type"] == "data")
    assert data["classes"] == ["class 0", "class 1", "class 2"]
    frame = sock.until(lambda m: m["type"] == "frame" and m["version"] == 1)
    assert frame["frame_bytes"] == 3 * GRID_SIZE**2 == len(frame["binary"])
    planes = [frame["binary"][i * GRID_SIZE**2 : (i + 1) * GRID_SIZE**2] for i in range(3)]
    sums = [sum(cell) for cell in zip(*planes, strict=True)]
    assert all(abs(s - 255) <= 2 for s in sums)


def test_iris_features_are_chosen_by_name(sock: Socket) -> None:
    sock.send({"type": "config", "model": "softmax", "dataset": "iris"})
    sock.send({"type": "config", "iris_features": ["sepal_length", "sepal_width"]})
    data = sock.until(lambda m: m["type"] == "data" and m["version"] == 2)
    assert len(data["points"]) == 150 and data["axes"][0].startswith("sepal length")


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "config", "learning_rate": 0}, "learning_rate"),
        ({"type": "config", "learning_rate": 11}, "learning_rate"),
        ({"type": "config", "speed": 1001}, "speed"),
        ({"type": "config", "speed": 2.5}, "speed"),
        ({"type": "config", "noise": True}, "noise"),
        ({"type": "config", "model": "mlp"}, "model"),
        ({"type": "config", "model": "linear", "dataset": "xor"}, "dataset"),
        ({"type": "config", "dataset": "iris"}, "dataset"),
        ({"type": "config", "iris_features": ["petal_length"]}, "iris_features"),
        ({"type": "config", "iris_features": ["petal_width", "petal_width"]}, "iris_features"),
        ({"type": "config", "slope": 4}, "slope"),
        ({"type": "config", "bogus": 1}, "bogus"),
        ({"type": "jump"}, "type"),
        ({}, "type"),
    ],
)
def test_bad_input_is_an_error_naming_the_field_and_the_session_lives(
    sock: Socket, message: dict, field: str
) -> None:
    assert_refused_and_alive(sock, message, field)


@pytest.mark.parametrize("text", ["not json", '{"type": "config", "noise": NaN}', "[1, 2]"])
def test_malformed_text_is_an_error(sock: Socket, text: str) -> None:
    sock.ws.send_text(text)
    assert sock.until(lambda m: m["type"] == "error")["message"]


def test_diverging_run_sends_null_not_nan(sock: Socket) -> None:
    sock.send({"type": "config", "learning_rate": 10, "speed": 50})
    sock.send({"type": "play"})
    seen = []
    frame = sock.until(lambda m: seen.append(m) or (m["type"] == "frame" and m["diverged"]))
    assert frame["loss"] is None and frame["running"] is False
    assert all(isinstance(v, float) for v in frame["weights"][0] + frame["bias"])
    # The state that says so goes out before the frame that showed it.
    states = [m for m in seen if m["type"] == "state"]
    assert states[-1]["diverged"] is True and states[-1]["running"] is False
