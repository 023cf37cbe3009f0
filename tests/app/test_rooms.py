"""Classroom rooms (`/api/rooms`, `/ws/rooms/{code}`, a lab socket's `?room=`) on one process."""

import json
import logging
import re
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.sync.client import connect

from app.main import create_app
from app.rooms.records import CODE_PATTERN
from app.settings import Settings
from tests.app.live_socket import Socket
from tests.conftest import serving

pytestmark = pytest.mark.timeout(60)  # a message that never comes fails the test, not the suite


# One app for the module (its start-up warms the MLP up once): rooms are independent by code. A
# room whose instructor is gone closes after 3 s here; joins are not limited but in their own test.
IDLE_SECONDS = 3.0


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = Settings(use_xla=False, room_idle_seconds=IDLE_SECONDS, room_join_burst=100_000)
    with TestClient(create_app(settings)) as c:
        yield c


def open_room(client: TestClient) -> dict:
    answer = client.post("/api/rooms", json={"lab": "mlp"})
    assert answer.status_code == 201, answer.text
    return answer.json()


def bearer(room: dict) -> dict:
    return {"Authorization": f"Bearer {room['token']}"}


def act(client: TestClient, room: dict, **action):
    return client.post(f"/api/rooms/{room['code']}/actions", json=action, headers=bearer(room))


@contextmanager
def instructor(client: TestClient, room: dict) -> Iterator[Socket]:
    """The instructor's own lab socket, hosting the room; yields once the room knows it."""
    with client.websocket_connect("/ws/mlp") as ws:
        sock = Socket(ws)
        host(sock, room)
        sock.until(lambda m: m["type"] == "frame")
        yield sock


def host(sock: Socket, room: dict) -> None:
    """Hosts the room from a lab socket (the token in a message, never in the socket's address)."""
    sock.send({"type": "host", "room": room["code"], "token": room["token"]})


@contextmanager
def student(client: TestClient, room: dict) -> Iterator[Socket]:
    with client.websocket_connect(f"/ws/rooms/{room['code']}") as ws:
        sock = Socket(ws)
        welcome = sock.next()
        assert welcome["event"] == "welcome"
        sock.seat = welcome["seat"]
        sock.until(lambda m: m.get("event") == "you")  # the instructor's process counted it
        yield sock


def event(sock: Socket, name: str) -> dict:
    return sock.until(lambda m: m["type"] == "room" and m["event"] == name)


def test_opening_a_room_gives_a_code_a_link_a_token_and_a_qr_code(client: TestClient) -> None:
    room = open_room(client)
    assert re.fullmatch(CODE_PATTERN, room["code"])
    assert room["link"].endswith(f"/labs/mlp?room={room['code']}")
    assert room["qr_svg"].startswith("<svg") and "<path" in room["qr_svg"]
    assert len(room["token"]) >= 40
    facts = client.get(f"/api/rooms/{room['code']}").json()
    assert facts["lab"] == "mlp" and facts["followers"] == 0 and facts["instructor"] is False
    assert "token" not in str(facts) and room["token"] not in str(facts)
    assert open_room(client)["code"] != room["code"]


def test_a_room_is_only_for_a_live_lab_and_an_unknown_code_is_404(client: TestClient) -> None:
    answer = client.post("/api/rooms", json={"lab": "backprop"})
    assert answer.status_code == 422
    assert "lab must be a live lab" in answer.json()["detail"][0]["msg"]
    assert client.get("/api/rooms/ABCDEF").status_code == 404
    assert client.get("/api/rooms/abc").status_code == 422  # not a code at all
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/ws/rooms/ABCDEF"),
    ):
        pass
    assert refused.value.code == 4404
    assert client.get("/join", params={"code": "abcdef"}).status_code == 404


def test_the_join_page_sends_a_code_to_its_lab(client: TestClient) -> None:
    room = open_room(client)
    answer = client.get("/join", params={"code": room["code"].lower()}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/labs/mlp?room={room['code']}"
    assert 'name="code"' in client.get("/join").text


def test_a_student_gets_the_instructors_messages_as_they_are_sent(client: TestClient) -> None:
    room = open_room(client)
    with instructor(client, room) as teacher, student(client, room) as pupil:
        assert client.get(f"/api/rooms/{room['code']}").json()["followers"] == 1
        teacher.send({"type": "config", "learning_rate": 0.3})
        teacher.send({"type": "step"})
        theirs = teacher.until(lambda m: m["type"] == "frame" and m["step"] == 25)
        state = pupil.until(lambda m: m["type"] == "state" and m["version"] == 1)
        assert state["config"]["learning_rate"] == 0.3
        mine = pupil.until(lambda m: m["type"] == "frame" and m["step"] == 25)
        assert mine == theirs  # the same header and the same bytes
        # A student who joins now starts from where the run is.
        with student(client, room) as late:
            assert late.until(lambda m: m["type"] == "frame")["step"] == 25
            assert event(pupil, "followers")["count"] == 2


def test_only_the_instructors_token_acts_on_the_room(client: TestClient) -> None:
    room = open_room(client)
    code = room["code"]
    lock = {"action": "lock", "locked": True}
    assert client.post(f"/api/rooms/{code}/actions", json=lock).status_code == 401
    wrong = {"Authorization": "Bearer " + "x" * 43}
    assert client.post(f"/api/rooms/{code}/actions", json=lock, headers=wrong).status_code == 403
    assert client.delete(f"/api/rooms/{code}", headers=wrong).status_code == 403
    # Nobody hosts it yet: the action has no session to go through.
    assert act(client, room, **lock).status_code == 409
    with client.websocket_connect("/ws/mlp") as ws:
        Socket(ws).send({"type": "host", "room": code, "token": "nope"})
        refused = Socket(ws).until(lambda m: m["type"] == "error")
        assert refused["field"] == "token"
    assert client.get(f"/api/rooms/{code}").json()["instructor"] is False


def test_joins_from_one_address_are_rate_limited() -> None:
    client = TestClient(create_app(Settings(room_join_burst=3, room_joins_per_minute=1)))
    room = open_room(client)  # an attempt too
    answers = [client.get(f"/api/rooms/{room['code']}") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert "Too many room attempts" in answers[-1].json()["detail"]
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(f"/ws/rooms/{room['code']}"):
        pass
    # Another address still gets in.
    other = TestClient(client.app, client=("10.0.0.7", 50000))
    assert other.get(f"/api/rooms/{room['code']}").status_code == 200


def test_lock_push_config_and_pause_reach_every_student(client: TestClient) -> None:
    room = open_room(client)
    with instructor(client, room) as teacher, student(client, room) as pupil:
        assert act(client, room, action="lock", locked=True).status_code == 202
        assert event(pupil, "locked")["locked"] is True
        assert act(client, room, action="push_config", config={"hidden": [3]}).status_code == 202
        assert event(pupil, "config")["config"] == {"hidden": [3]}
        bad = act(client, room, action="push_config", config={"learning_rate": 50})
        assert bad.status_code == 422 and "learning_rate" in bad.json()["detail"][0]["msg"]
        teacher.send({"type": "play"})
        assert act(client, room, action="pause").status_code == 202
        event(pupil, "paused")
        assert teacher.until(lambda m: m["type"] == "state" and not m["running"])
        facts = client.get(f"/api/rooms/{room['code']}").json()
        assert facts["locked"] and facts["paused"] and facts["config"] == {"hidden": [3]}


def test_a_fork_goes_on_from_the_instructors_weights_at_that_step(client: TestClient) -> None:
    room = open_room(client)
    with instructor(client, room) as teacher, student(client, room) as pupil:
        teacher.send({"type": "config", "hidden": [5, 3], "learning_rate": 0.1, "seed": 7})
        for step in (25, 50, 75):  # one at a time: a step asked for during one is not queued
            teacher.send({"type": "step"})
            at = teacher.until(lambda m, step=step: m["type"] == "frame" and m["step"] == step)
        pupil.send({"type": "fork"})
        forked = event(pupil, "forked")
        assert forked["seat"] == pupil.seat and forked["step"] == 75
        own = f"/ws/mlp?room={room['code']}&fork={forked['snapshot']}"
        with client.websocket_connect(own) as ws:
            mine = Socket(ws).until(lambda m: m["type"] == "frame" and m["step"] == 75)
            assert mine["weights"] == at["weights"] and mine["biases"] == at["biases"]
            assert mine["binary"] == at["binary"] and mine["layers"] == [2, 5, 3, 1]
            # It is the student's own run from here: a step trains it further.
            Socket(ws).send({"type": "step"})
            assert Socket(ws).until(lambda m: m["type"] == "frame")["step"] == 100
        with client.websocket_connect(f"/ws/mlp?room={room['code']}&fork=gone") as ws:
            assert Socket(ws).until(lambda m: m["type"] == "error")["field"] == "fork"
        with client.websocket_connect("/ws/mlp?room=room:x:latest:state") as ws:
            assert Socket(ws).until(lambda m: m["type"] == "error")["field"] == "room"


def test_an_experiment_gathers_every_students_result(client: TestClient) -> None:
    room = open_room(client)
    with instructor(client, room), student(client, room) as a, student(client, room) as b:
        experiment = {"variable": "hidden_size", "values": [2, 8], "epochs": 5}
        assert (
            act(client, room, action="start_experiment", experiment=experiment).status_code == 202
        )
        assert event(a, "experiment")["experiment"]["values"] == [2, 8]
        values = [event(a, "assigned")["value"], event(b, "assigned")["value"]]
        assert sorted(values) == [2, 8]
        a.send({"type": "result", "result": {"value": values[0], "test_loss": 0.3}})
        b.send(
            {"type": "result", "result": {"value": values[1], "test_loss": None, "diverged": True}}
        )
        assert event(a, "result")["result"]["value"] in values
        event(b, "result")
        results = client.get(f"/api/rooms/{room['code']}").json()["results"]
        assert sorted(r["value"] for r in results) == [2, 8]
        assert {r["number"] for r in results} == {1, 2}  # by number, never by seat
        b.send({"type": "result", "result": {"value": -1, "test_loss": 0.1}})
        refused = b.until(lambda m: m["type"] == "error")["message"]
        assert "result" in refused and "greater than or equal to 0" in refused


def test_predict_then_reveal(client: TestClient) -> None:
    room = open_room(client)
    with instructor(client, room), student(client, room) as pupil:
        vote = {"question": "Will 1 neuron solve XOR?", "options": ["yes", "no"]}
        assert act(client, room, action="open_vote", vote=vote).status_code == 202
        assert event(pupil, "vote")["open"] is True
        pupil.send({"type": "ballot", "option": 1})
        counted = event(pupil, "vote")
        assert counted["votes"] == 1 and counted["tally"] is None  # hidden until revealed
        assert act(client, room, action="reveal_vote").status_code == 202
        revealed = event(pupil, "vote")
        assert revealed["open"] is False and revealed["tally"] == [0, 1]


def test_a_room_closes_once_its_instructor_is_gone_for_the_timeout(client: TestClient) -> None:
    with ExitStack() as teacher:
        room = open_room(client)
        teacher.enter_context(instructor(client, room))
        with student(client, room) as pupil:
            teacher.close()  # the instructor leaves; the student stays
            assert event(pupil, "closed")["reason"] == "The instructor has left the room."
            with pytest.raises(WebSocketDisconnect) as closed:
                pupil.next()
            assert closed.value.code == 4410
        assert client.get(f"/api/rooms/{room['code']}").status_code == 404


def test_the_instructor_closes_the_room(client: TestClient) -> None:
    room = open_room(client)
    with instructor(client, room) as teacher, student(client, room) as pupil:
        assert client.delete(f"/api/rooms/{room['code']}", headers=bearer(room)).status_code == 204
        assert event(pupil, "closed")
        assert teacher.until(lambda m: m["type"] == "error")["field"] == "room"
    assert client.get(f"/api/rooms/{room['code']}").status_code == 404


def test_hosting_keeps_the_run_going_and_the_token_stays_out_of_the_address(
    client: TestClient,
) -> None:
    room = open_room(client)
    with client.websocket_connect("/ws/mlp") as ws:
        teacher = Socket(ws)
        for step in (25, 50):
            teacher.send({"type": "step"})
            teacher.until(lambda m, step=step: m["type"] == "frame" and m["step"] == step)
        host(teacher, room)  # on the socket already open: the run is not restarted
        assert teacher.until(lambda m: m["type"] == "frame")["step"] == 50
        with student(client, room) as pupil:
            assert pupil.until(lambda m: m["type"] == "frame")["step"] == 50
            teacher.send({"type": "step"})
            assert pupil.until(lambda m: m["type"] == "frame" and m["step"] > 50)["step"] == 75
    # A token in the socket's address (which access logs keep) hosts nothing.
    other = open_room(client)
    with client.websocket_connect(f"/ws/mlp?room={other['code']}&token={other['token']}") as ws:
        Socket(ws).until(lambda m: m["type"] == "frame")
        assert client.get(f"/api/rooms/{other['code']}").json()["instructor"] is False


@contextmanager
def own_run(client: TestClient, room: dict, pupil: Socket) -> Iterator[Socket]:
    """The student's own session in the room, forked from the instructor's run."""
    pupil.send({"type": "fork"})
    snapshot = event(pupil, "forked")["snapshot"]
    url = f"/ws/mlp?room={room['code']}&seat={pupil.seat}&fork={snapshot}"
    with client.websocket_connect(url) as ws:
        sock = Socket(ws)
        sock.until(lambda m: m["type"] == "frame")
        yield sock


def refusal(sock: Socket, field: str = "room") -> str:
    error = sock.until(lambda m: m["type"] == "error")
    assert error["field"] == field  # a refused config names its field: the page puts it back
    return error["message"]


def test_the_lock_and_pause_all_hold_on_the_server_for_a_students_own_run(
    client: TestClient,
) -> None:
    room = open_room(client)
    with (
        instructor(client, room) as teacher,
        student(client, room) as pupil,
        own_run(client, room, pupil) as mine,
    ):
        assert act(client, room, action="lock", locked=True).status_code == 202
        event(pupil, "locked")
        mine.send({"type": "config", "learning_rate": 0.3})
        assert "locked the room's controls" in refusal(mine, "learning_rate")
        mine.send({"type": "play"})
        assert "(play refused)" in refusal(mine)
        assert not mine.until(lambda m: m["type"] == "state")["running"]
        assert act(client, room, action="lock", locked=False).status_code == 202
        event(pupil, "locked")
        mine.send({"type": "config", "learning_rate": 0.3})
        assert mine.until(lambda m: m["type"] == "state")["config"]["learning_rate"] == 0.3
        mine.send({"type": "play"})
        mine.until(lambda m: m["type"] == "state" and m["running"])
        assert act(client, room, action="pause").status_code == 202
        event(pupil, "paused")
        mine.until(lambda m: m["type"] == "state" and not m["running"])  # paused for them
        mine.send({"type": "play"})
        assert "paused the room" in refusal(mine)
        teacher.send({"type": "play"})  # the instructor plays on: so may the class
        event(pupil, "resumed")
        mine.send({"type": "play"})
        mine.until(lambda m: m["type"] == "state" and m["running"])


def test_the_instructor_projects_one_students_run(client: TestClient) -> None:
    room = open_room(client)
    code = room["code"]
    with (
        instructor(client, room) as teacher,
        student(client, room) as pupil,
        student(client, room) as other,
        client.websocket_connect(f"/ws/rooms/{code}?watch=1") as projector,
    ):
        facts = client.get(f"/api/rooms/{code}").json()
        assert facts["projectable"] == []
        answer = act(client, room, action="project", number=1)
        assert answer.status_code == 409 and "no run of their own" in answer.json()["detail"]
        with own_run(client, room, pupil) as mine:
            mine.send({"type": "config", "learning_rate": 0.7})
            mine.until(lambda m: m["type"] == "state" and m["config"]["learning_rate"] == 0.7)
            (number,) = event(other, "projectable")["numbers"]  # the instructor's page's list
            assert act(client, room, action="project", number=number).status_code == 202
            assert event(other, "projected")["number"] == number
            theirs = other.until(lambda m: m["type"] == "state")
            assert theirs["config"]["learning_rate"] == 0.7  # the student's run, not the teacher's
            mine.send({"type": "step"})
            step = mine.until(lambda m: m["type"] == "frame" and m["step"] > 0)["step"]
            assert other.until(lambda m: m["type"] == "frame" and m["step"] == step)
            watched = Socket(projector)  # the instructor's page shows it too
            assert watched.until(lambda m: m["type"] == "frame" and m["step"] == step)
            assert act(client, room, action="project", number=None).status_code == 202
            assert event(other, "projected")["number"] is None
            back = other.until(lambda m: m["type"] == "state")
            assert back["config"]["learning_rate"] != 0.7  # the instructor's run again
        teacher.send({"type": "step"})
        teacher.until(lambda m: m["type"] == "frame" and m["step"] == 25)


def test_the_instructors_token_never_reaches_the_servers_log(caplog) -> None:
    settings = Settings(use_xla=False)
    with serving(create_app(settings), settings) as base:
        for name in ("uvicorn.access", "uvicorn.error"):  # what an access log would keep
            caplog.set_level(logging.INFO, logger=name)
        ask = urllib.request.Request(
            f"{base}/api/rooms", b'{"lab": "mlp"}', {"Content-Type": "application/json"}
        )
        room = json.load(urllib.request.urlopen(ask, timeout=30))
        with connect(f"{base.replace('http', 'ws')}/ws/mlp", open_timeout=30) as teacher:
            teacher.send(json.dumps({"type": "host", "room": room["code"], "token": room["token"]}))
            teacher.recv(timeout=30)
            facts = f"{base}/api/rooms/{room['code']}"
            while not json.load(urllib.request.urlopen(facts, timeout=30))["instructor"]:
                teacher.recv(timeout=30)  # hosted once the room says so
    assert "/ws/mlp" in caplog.text and "/api/rooms" in caplog.text  # the log is on
    assert room["token"] not in caplog.text


def test_the_rooms_qr_code_is_there_again_after_a_reload(client: TestClient) -> None:
    room = open_room(client)
    qr = client.get(f"/api/rooms/{room['code']}/qr")
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    assert b'xmlns="http://www.w3.org/2000/svg"' in qr.content and b"<path" in qr.content
    assert client.get("/api/rooms/ABCDEF/qr").status_code == 404
