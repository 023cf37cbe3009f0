"""The `/ws/mlp` socket through FastAPI's TestClient: the protocol, and every bad input."""

import json
import time

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.main import create_app
from app.settings import Settings
from tests.app.live_socket import Socket, strict_json


@pytest.fixture
def sock(client: TestClient):
    with client.websocket_connect("/ws/mlp") as ws:
        yield Socket(ws)


def test_connect_sends_state_data_and_a_first_frame(sock: Socket) -> None:
    state = sock.next()
    assert state["type"] == "state" and state["config"]["hidden"] == [4, 2]
    assert state["running"] is False
    data = sock.next()
    assert data["type"] == "data" and len(data["train"]) + len(data["test"]) == 500
    frame = sock.next()
    assert frame["type"] == "frame" and frame["step"] == 0
    assert frame["layers"] == [2, 4, 2, 1] and frame["drawn"] == [2, 4, 2, 1]
    assert len(frame["binary"]) == frame["frame_bytes"] == 64 * 64 + (4 + 2) * 16 * 16
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


BAD = [
    ("hello", None, "not valid JSON"),
    ("null", None, "JSON object"),
    ("[]", None, "JSON object"),
    ('"str"', None, "JSON object"),
    ("123", None, "JSON object"),
    ("{}", "type", '"type"'),
    ('{"type": "bogus"}', "type", "Unknown message type"),
    ('{"type": 5}', "type", "Unknown message type"),
    ('{"type": "config", "lr": 0.1}', "lr", "Unknown field"),
    ('{"type": "config", "learning_rate": NaN}', None, "NaN"),
    ('{"type": "config", "learning_rate": Infinity}', None, "Infinity"),
    ('{"type": "config", "learning_rate": 1e309}', "learning_rate", "finite"),
    ('{"type": "config", "learning_rate": -1}', "learning_rate", "greater than or equal to 0.0001"),
    ('{"type": "config", "learning_rate": 1e30}', "learning_rate", "less than or equal to 10"),
    ('{"type": "config", "learning_rate": "0.1"}', "learning_rate", "valid number"),
    ('{"type": "config", "learning_rate": true}', "learning_rate", "valid number"),
    ('{"type": "config", "hidden": [1000000000]}', "hidden", "less than or equal to 50"),
    ('{"type": "config", "hidden": [0]}', "hidden", "greater than or equal to 1"),
    ('{"type": "config", "hidden": ' + json.dumps([2] * 1000) + "}", "hidden", "at most 6"),
    ('{"type": "config", "batch_size": 0}', "batch_size", "greater than or equal to 1"),
    ('{"type": "config", "batch_size": 1000000000}', "batch_size", "less than or equal to 100"),
    ('{"type": "config", "batch_size": 99999999999999999999999}', "batch_size", "less than"),
    ('{"type": "config", "activation": "__import__(\'os\')"}', "activation", "tanh"),
    ('{"type": "config", "dataset": "mnist"}', "dataset", "xor"),
    ('{"type": "config", "features": []}', "features", "at least 1"),
    ('{"type": "config", "features": ["x1", "x1"]}', "features", "repeat"),
    ('{"type": "config", "noise": 3}', "noise", "less than or equal to 0.5"),
    ('{"type": "config", "speed": 0}', "speed", "greater than or equal to 1"),
    ('{"type": "config", "speed": "fast"}', "speed", "epoch"),
    ('{"type": "config", "seed": -1}', "seed", "greater than or equal to 0"),
    ('{"type": "play", "extra": 1}', "extra", "Unknown field"),
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
    fresh = sock.until(lambda m: m["type"] == "frame" and m["version"] == 2 and m["step"] > 0)
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
