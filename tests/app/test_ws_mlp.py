"""The `/ws/mlp` socket through FastAPI's TestClient: the protocol, and every bad input."""

import json
import math
import time

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.main import create_app
from app.settings import Settings
from tests.app.live_socket import Socket, lab_socket, strict_json


@pytest.fixture(scope="module")
def client():
    """One app for the module, each test its own session: the shapes' XLA builds run once, not
    once per test (an app's stop waits for the build in progress)."""
    with TestClient(create_app(Settings())) as c:
        yield c


@pytest.fixture
def sock(client: TestClient):
    with lab_socket(client, "mlp") as s:
        yield s


def test_connect_sends_state_data_and_a_first_frame(sock: Socket) -> None:
    state = sock.next()
    assert state["type"] == "state" and state["config"]["hidden"] == [4, 2]
    assert state["running"] is False
    data = sock.next()
    assert data["type"] == "data" and len(data["train"]) + len(data["test"]) == 500
    frame = sock.next()
    assert frame["type"] == "frame" and frame["step"] == 0
    assert frame["layers"] == [2, 4, 2, 1] and frame["drawn"] == [2, 4, 2, 1]
    assert len(frame["binary"]) == 64 * 64 + (4 + 2) * 16 * 16  # the output's grid, each neuron's
    assert len(frame["weights"]) == 3 and len(frame["weights"][0]) == 2
    assert len(frame["weights"][0][0]) == 4


def test_play_streams_frames_with_increasing_steps(sock: Socket) -> None:
    sock.send({"type": "config", "learning_rate": 0.3, "hidden": [6]})
    sock.send({"type": "play"})
    steps = []
    while len(steps) < 6:
        m = sock.next()
        if m["type"] == "frame" and m["version"] == 1 and m["step"] > 0:
            steps.append(m["step"])
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert steps[1] - steps[0] == 25  # one epoch: 250 train points / batch 10
    sock.send({"type": "pause"})
    assert sock.until(lambda m: m["type"] == "state")["running"] is False


def test_versions_echo_config_and_learning_rate_keeps_the_network(sock: Socket) -> None:
    sock.send({"type": "play"})
    trained = sock.until(lambda m: m["type"] == "frame" and m["step"] >= 50)
    sock.send({"type": "config", "learning_rate": 0.1})
    state = sock.until(lambda m: m["type"] == "state" and m["version"] == 1)
    assert state["config"]["learning_rate"] == 0.1
    after = sock.until(lambda m: m["type"] == "frame" and m["version"] == 1)
    assert after["step"] > trained["step"]  # same run, not restarted
    sock.send({"type": "config", "hidden": [3]})
    restarted = sock.until(lambda m: m["type"] == "frame" and m["version"] == 2)
    assert restarted["layers"] == [2, 3, 1]
    assert restarted["step"] < after["step"] + 200


def test_data_change_sends_new_points(sock: Socket) -> None:
    first = sock.until(lambda m: m["type"] == "data")
    sock.send({"type": "config", "dataset": "spiral", "noise": 0.1})
    data = sock.until(lambda m: m["type"] == "data")
    assert data["version"] == 1 and data["train"] != first["train"]


def test_step_trains_one_frame_then_pauses(sock: Socket) -> None:
    sock.until(lambda m: m["type"] == "frame")
    sock.send({"type": "config", "speed": 7})
    sock.send({"type": "step"})
    frame = sock.until(lambda m: m["type"] == "frame" and m["step"] > 0)
    assert frame["step"] == 7 and frame["running"] is False
    sock.send({"type": "reset"})
    assert sock.until(lambda m: m["type"] == "frame")["step"] == 0


def test_same_seed_reproduces_the_run(client: TestClient) -> None:
    losses = []
    for _ in range(2):
        with client.websocket_connect("/ws/mlp") as ws:
            s = Socket(ws)
            s.send({"type": "config", "seed": 42, "dataset": "circle", "speed": 30})
            s.send({"type": "step"})
            losses.append(s.until(lambda m: m["type"] == "frame" and m["step"] == 30)["loss"])
    assert losses[0] == losses[1]


def _config(**fields) -> str:
    return json.dumps({"type": "config", **fields})


def _set_weight(**fields) -> str:
    return json.dumps({"type": "set_weight", "layer": 0, "from": 0, "to": 0, "value": 1, **fields})


BAD = [
    ("hello", None, "not valid JSON"),
    ("null", None, "JSON object"),
    ("[]", None, "JSON object"),
    ('"str"', None, "JSON object"),
    ("123", None, "JSON object"),
    ("{}", "type", '"type"'),
    ('{"type": "bogus"}', "type", "Unknown message type"),
    ('{"type": 5}', "type", "Unknown message type"),
    (_config(lr=0.1), "lr", "Unknown field"),
    (_config(learning_rate=math.nan), None, "NaN"),
    (_config(learning_rate=math.inf), None, "Infinity"),
    ('{"type": "config", "learning_rate": 1e309}', "learning_rate", "finite"),
    (_config(learning_rate=-1), "learning_rate", "greater than or equal to 0.0001"),
    ('{"type": "config", "learning_rate": 1e30}', "learning_rate", "less than or equal to 10"),
    (_config(learning_rate="0.1"), "learning_rate", "valid number"),
    (_config(learning_rate=True), "learning_rate", "valid number"),
    (_config(hidden=[1000000000]), "hidden", "less than or equal to 50"),
    (_config(hidden=[0]), "hidden", "greater than or equal to 1"),
    (_config(hidden=[2] * 1000), "hidden", "at most 6"),
    (_config(batch_size=0), "batch_size", "greater than or equal to 1"),
    (_config(batch_size=1000000000), "batch_size", "less than or equal to 100"),
    (_config(batch_size=99999999999999999999999), "batch_size", "less than"),
    (_config(activation="__import__('os')"), "activation", "tanh"),
    (_config(dataset="mnist"), "dataset", "xor"),
    (_config(features=[]), "features", "at least 1"),
    (_config(features=["x1", "x1"]), "features", "repeat"),
    (_config(noise=3), "noise", "less than or equal to 0.5"),
    (_config(speed=0), "speed", "greater than or equal to 1"),
    (_config(speed="fast"), "speed", "epoch"),
    (_config(seed=-1), "seed", "greater than or equal to 0"),
    ('{"type": "play", "extra": 1}', "extra", "Unknown field"),
    (_config(problem="ranking"), "problem", "classification"),
    (_config(dataset="plane"), "dataset", "xor, circle, gauss, spiral"),
    (_config(problem="regression", dataset="xor"), "dataset", "plane"),
    # set_weight: the default network [2, 4, 2, 1] has weights 2×4, 4×2 and 2×1.
    (_set_weight(layer=3), "layer", "must be in [0, 2]"),
    (_set_weight(layer=-1), "layer", "greater than or equal to 0"),
    (_set_weight(layer=0.5), "layer", "valid integer"),
    (_set_weight(**{"from": 2}), "from", "must be in [0, 1]"),
    (_set_weight(layer=1, to=2), "to", "must be in [0, 1]"),
    (_set_weight(layer=2, to=1), "to", "must be in [0, 0]"),
    (_set_weight(value=1e9), "value", "less than or equal to 100"),
    (_set_weight(value=-101), "value", "greater than or equal to -100"),
    (_set_weight(value="1"), "value", "valid number"),
    (_set_weight(value=None), "value", "valid number"),
    (_set_weight(value=True), "value", "valid number"),
    ('{"type": "set_weight", "layer": 0, "from": 0, "to": 0, "value": NaN}', None, "NaN"),
    ('{"type": "set_weight", "layer": 0, "from": 0, "to": 0}', "value", "required"),
    ('{"type": "set_weight", "layer": 0, "from": 0, "to": 0, "value": 1, "x": 1}', "x", "Unknown"),
]


@pytest.mark.parametrize(("text", "field", "says"), BAD, ids=[b[0][:40] for b in BAD])
def test_bad_input_gets_an_error_and_the_session_lives_on(
    sock: Socket, text: str, field: str | None, says: str
) -> None:
    sock.until(lambda m: m["type"] == "frame")
    sock.ws.send_text(text)
    error = sock.until(lambda m: m["type"] in ("error", "state"))
    assert error["type"] == "error", error
    assert says.lower() in error["message"].lower(), error["message"]
    if field is not None:
        assert field in error["message"]
    # Nothing changed, and the session still trains.
    sock.send({"type": "step"})
    frame = sock.until(lambda m: m["type"] == "frame")
    assert frame["version"] == 0 and frame["step"] == 25


def test_regression_streams_values_and_mean_squared_error(sock: Socket) -> None:
    sock.until(lambda m: m["type"] == "frame")
    sock.send({"type": "config", "problem": "regression", "hidden": [3], "learning_rate": 0.03})
    state = sock.until(lambda m: m["type"] == "state")
    assert state["config"]["problem"] == "regression"
    assert state["config"]["dataset"] == "plane"  # the problem's first data set
    data = sock.until(lambda m: m["type"] == "data")
    assert data["problem"] == "regression" and data["version"] == 1
    targets = [row[2] for row in data["train"] + data["test"]]
    assert min(targets) >= -1 and max(targets) <= 1 and len(set(targets)) > 100
    first = sock.until(lambda m: m["type"] == "frame" and m["version"] == 1)
    assert first["accuracy"] is None and first["test_accuracy"] is None
    # The output grid is the value mapped from [-1, 1]: all 256 levels are possible, 128 is 0.
    assert len(first["binary"]) == 64 * 64 + 3 * 16 * 16
    sock.send({"type": "config", "speed": 250})
    sock.send({"type": "step"})
    trained = sock.until(lambda m: m["type"] == "frame" and m["step"] == 250)
    assert 0 <= trained["loss"] < first["loss"] and trained["accuracy"] is None
    # Back to classification: the first classification data set, labels 0/1, accuracy again.
    sock.send({"type": "config", "problem": "classification"})
    data = sock.until(lambda m: m["type"] == "data")
    assert data["problem"] == "classification"
    assert {row[2] for row in data["train"]} == {0, 1}
    frame = sock.until(lambda m: m["type"] == "frame" and m["version"] == 3)
    assert frame["accuracy"] is not None


def test_a_set_weight_is_in_the_next_frame(sock: Socket) -> None:
    first = sock.until(lambda m: m["type"] == "frame")
    assert first["weights"][1][3][0] != 1.25
    sock.send({"type": "set_weight", "layer": 1, "from": 3, "to": 0, "value": 1.25})
    state = sock.until(lambda m: m["type"] in ("state", "error"))
    assert state["type"] == "state" and state["version"] == 1  # counted as a config change
    frame = sock.until(lambda m: m["type"] == "frame")
    assert frame["version"] == 1 and frame["step"] == 0  # the same run, not restarted
    assert frame["weights"][1][3][0] == 1.25
    others = [w for i, row in enumerate(frame["weights"][1]) for j, w in enumerate(row) if i != 3]
    before = [w for i, row in enumerate(first["weights"][1]) for j, w in enumerate(row) if i != 3]
    assert others == before
    assert frame["binary"] != first["binary"]  # the pictures follow the weight
    # It trains on from the weight set: one step at a tiny learning rate barely moves it.
    sock.send({"type": "config", "learning_rate": 0.0001, "speed": 1})
    sock.send({"type": "step"})
    stepped = sock.until(lambda m: m["type"] == "frame" and m["step"] == 1)
    assert stepped["weights"][1][3][0] == pytest.approx(1.25, abs=1e-3)


def test_a_set_weight_while_playing_is_not_undone_by_the_frame_in_flight(sock: Socket) -> None:
    sock.send({"type": "config", "learning_rate": 0.0001, "speed": 5})
    sock.send({"type": "play"})
    sock.until(lambda m: m["type"] == "frame" and m["step"] > 20)
    sock.send({"type": "set_weight", "layer": 0, "from": 1, "to": 2, "value": -7.5})
    for _ in range(5):
        frame = sock.until(lambda m: m["type"] == "frame" and m["version"] == 2)
        assert frame["weights"][0][1][2] == pytest.approx(-7.5, abs=1e-2)
    sock.send({"type": "pause"})


def test_diverging_run_is_marked_and_never_sends_nan(sock: Socket) -> None:
    sock.send(
        {
            "type": "config",
            "features": ["x1_sq", "x2_sq", "x1x2"],
            "hidden": [8, 8, 8, 8],
            "activation": "linear",
            "learning_rate": 10,
        }
    )
    sock.send({"type": "play"})
    seen = []
    frame = sock.until(lambda m: seen.append(m) or (m["type"] == "frame" and m["diverged"]))
    assert frame["running"] is False
    assert frame["loss"] is None and frame["accuracy"] is None
    # The state that says so goes out before the frame that showed it.
    states = [m for m in seen if m["type"] == "state"]
    assert states[-1]["diverged"] is True and states[-1]["running"] is False
    sock.send({"type": "config", "learning_rate": 0.0001})
    sock.send({"type": "play"})  # starts the run over, now slowly enough to converge
    # A frame of the diverged run at version 2 may still come before the new run's state.
    sock.until(lambda m: m["type"] == "state" and m["version"] == 2 and not m["diverged"])
    fresh = sock.until(lambda m: m["type"] == "frame" and m["step"] > 0)
    assert not fresh["diverged"] and fresh["loss"] is not None


def test_own_and_listed_origins_are_accepted() -> None:
    app = create_app(Settings(allowed_origins=["https://course.example"]))
    with TestClient(app) as c:
        for origin in ("http://testserver", "https://course.example"):
            with c.websocket_connect("/ws/mlp", headers={"origin": origin}) as ws:
                assert strict_json(ws.receive_text())["type"] == "state"


def test_missing_origin_policy_is_a_setting() -> None:
    with (
        TestClient(create_app(Settings(allow_missing_origin=False))) as c,
        pytest.raises(WebSocketDisconnect),
        c.websocket_connect("/ws/mlp"),
    ):
        pass


def test_disconnect_mid_training_leaves_nothing_running(client: TestClient) -> None:
    live = client.app.state.live
    with client.websocket_connect("/ws/mlp") as ws:
        s = Socket(ws)
        s.send({"type": "config", "speed": "max"})
        s.send({"type": "play"})
        s.until(lambda m: m["type"] == "frame" and m["step"] > 0)
    # The reader ends with the socket; the ticker then finds no group to train.
    for _ in range(100):
        if not live.sessions and not live.stacked.groups:
            break
        time.sleep(0.02)
    assert not live.sessions and not live.stacked.groups
