"""Hypothesis drives random and mutated messages at every socket: each live lab's `/ws/<slug>`,
the CNN job socket and a classroom room's student socket. Whatever arrives, the server answers in
words (an `error`, or the `state` of a message it accepted), raises nothing, sends no NaN or
Infinity, and the session still trains on a valid config afterwards.

One socket per endpoint takes all its examples (5 messages and a probe each), so the file stays
fast; 10,000 messages in all.
"""

import json
import logging
import math
import os
import uuid
from itertools import count

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.labs import all_labs
from app.main import create_app
from app.settings import Settings
from tests.app.live_socket import Socket, strict_json

LIVE = [lab for lab in all_labs() if lab.session is not None]
MESSAGES = 10_000
BATCH = 5  # fuzz messages per example, then one probe
# Each socket's share of the messages. The RNN rebuilds its network on each restart (a reset, a
# new seed or size), so it takes fewer; the paused job's socket, where nothing trains, more.
SHARES = {"rnn": 1, "cnn-job": 3, "room": 2}
TOTAL_SHARES = sum(SHARES.get(lab.slug, 3) for lab in LIVE) + SHARES["cnn-job"] + SHARES["room"]


def examples(socket: str) -> int:
    """Examples for `socket`, so that all of them together send `MESSAGES`."""
    scale = float(os.environ.get("FUZZ_SCALE", 1))  # e.g. 0.05 for a quick look
    share = SHARES.get(socket, 3) / TOTAL_SHARES
    return max(1, round(MESSAGES * scale * share / BATCH))


ODD_VALUES = [
    math.nan, math.inf, -math.inf, 1e308, -1e308, 1e-320, -0.0, 10**30, 2**64, -(2**63) - 1,
    0, -1, True, None, "", "0.1", "NaN", "x" * 5000, "\x00\x07\x1b[31m\u202e\ufeff", [], {},
    [1, [2, [3]]], {"type": "config"},
]  # fmt: skip
VERBS = ["config", "play", "pause", "step", "reset"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)


def mutated(valid: dict) -> st.SearchStrategy[dict]:
    """`valid` with some fields set to odd values, dropped, or joined by unknown ones."""
    fields = sorted(valid)
    edit = st.one_of(
        st.tuples(st.just("set"), st.sampled_from(fields), st.sampled_from(ODD_VALUES)),
        st.tuples(st.just("set"), st.sampled_from(fields), json_values),
        st.tuples(st.just("drop"), st.sampled_from(fields), st.none()),
        st.tuples(st.just("set"), st.text(max_size=20), json_values),
    )

    def apply(edits) -> dict:
        message = dict(valid)
        for op, field, value in edits:
            if op == "drop":
                message.pop(field, None)
            else:
                message[field] = value
        return message

    return st.lists(edit, min_size=1, max_size=4).map(apply)


def dumps(message) -> str:
    return json.dumps(message, allow_nan=True)  # NaN and Infinity as the raw literals


def messages(valid: dict) -> st.SearchStrategy[str | bytes]:
    """One fuzz message: text (JSON or not) or a binary frame."""
    base = st.sampled_from([valid, *({"type": verb} for verb in VERBS)])
    return st.one_of(
        json_values.map(dumps),
        base.flatmap(mutated).map(dumps),
        st.text(max_size=300),
        st.binary(max_size=300),
        st.integers(1, 20_000).map(lambda n: "[" * n + "]" * n),
        st.tuples(st.just(dumps(valid)), st.integers(0, 40)).map(lambda t: t[0][: t[1]]),
        st.sampled_from(['{"type": "config", "type": "play"}', "null", "[]", '"config"', "1e999"]),
    )


class Errors(logging.Handler):
    """Every error the server logs while the fuzz runs (a session's task, a runner)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def client():
    # The fuzz is not a flood; and small, slow frames keep the training's share of the time low.
    settings = Settings(
        use_xla=False,
        message_rate=1e9,
        message_burst=10**9,
        frame_rate=5,
        grid_size=8,
        neuron_grid_size=4,
    )
    errors = Errors()
    logging.getLogger().addHandler(errors)
    try:
        with TestClient(create_app(settings)) as c:
            c.logged_errors = errors.records
            yield c
    finally:
        logging.getLogger().removeHandler(errors)


def fuzz(
    send, read, valid: dict, socket: str, quiet: str | None = None, all_answered: bool = True
) -> None:
    """Runs the examples: each sends `BATCH` messages (and `quiet`, to stop the training they
    may have started), then a probe the server must answer with an error quoting it; every
    message read before that is checked by `read`. With `all_answered`, each message must have
    had an answer (an error, or the state or status it changed)."""
    probes = count()

    @settings(
        max_examples=examples(socket),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(messages(valid), min_size=BATCH, max_size=BATCH))
    def example(batch):
        for message in batch:
            send(message)
        if quiet is not None:
            send(quiet)
        nonce = f"probe-{next(probes)}"
        send(json.dumps({"type": nonce}))
        answers = 0
        while True:
            message = read()
            if message["type"] == "error" and nonce in message["message"]:
                break
            answers += message["type"] in ("error", "state", "status")
        assert answers >= len(batch) or not all_answered, "a message got no answer"

    example()


def no_server_errors(client) -> None:
    assert not client.logged_errors, client.logged_errors[0].getMessage()


@pytest.mark.parametrize("lab", LIVE, ids=lambda lab: lab.slug)
def test_a_live_lab_answers_every_message_and_trains_on(client, lab) -> None:
    valid = {"type": "config", **lab.session.config_type().model_dump(mode="json")}
    with client.websocket_connect(f"/ws/{lab.slug}") as ws:
        sock = Socket(ws)

        def send(message: str | bytes) -> None:
            if isinstance(message, bytes):
                ws.send_bytes(message)
            else:
                ws.send_text(message)

        fuzz(send, sock.next, valid, lab.slug, quiet=json.dumps({"type": "pause"}))
        # Still a working session: a valid config (the defaults, so that what the fuzz left
        # does not make the step slow) is applied and reaches a frame.
        sock.send({**valid, "seed": 4242})
        version = sock.until(lambda m: m["type"] == "state" and m["config"]["seed"] == 4242)
        sock.send({"type": "step"})
        sock.until(lambda m: m["type"] == "frame" and m["version"] >= version["version"])
    no_server_errors(client)


def test_the_cnn_job_socket_answers_every_message(client) -> None:
    owner = {"X-Client-Id": uuid.uuid4().hex}
    body = {"dataset": "colours", "model": "scratch", "image_size": 16, "epochs": 40,
            "blocks": [{"filters": 4, "kernel_size": 3}]}  # fmt: skip
    job_id = client.post("/api/cnn/jobs", json=body, headers=owner).json()["id"]
    client.post(f"/api/cnn/jobs/{job_id}/pause")  # held open while the fuzz runs
    try:
        with client.websocket_connect(f"/ws/cnn/{job_id}") as ws:

            def send(message: str | bytes) -> None:
                if isinstance(message, bytes):
                    ws.send_bytes(message)
                elif _is_control(message):
                    ws.send_text(f"[{message}]")  # a list, not a control: the job stays paused
                else:
                    ws.send_text(message)

            fuzz(send, lambda: strict_json(ws.receive_text()), {"type": "pause"}, "cnn-job")
            ws.send_text(json.dumps({"type": "stop"}))
            while (message := strict_json(ws.receive_text()))["type"] != "status" or message[
                "state"
            ] in ("queued", "running"):
                pass
            assert message["state"] == "stopped"
    finally:
        client.post(f"/api/cnn/jobs/{job_id}/stop")
    no_server_errors(client)


def _is_control(text: str) -> bool:
    """A message the job would obey (pause, resume or stop): kept out of the fuzz."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(message, dict) and message.get("type") in ("pause", "resume", "stop")


def test_a_rooms_student_socket_answers_every_bad_message(client) -> None:
    code = client.post("/api/rooms", json={"lab": "mlp"}).json()["code"]
    with client.websocket_connect(f"/ws/rooms/{code}") as ws:

        def send(message: str | bytes) -> None:
            if isinstance(message, bytes):
                ws.send_bytes(message)
            else:
                ws.send_text(message)

        def read() -> dict:
            while (message := ws.receive()).get("text") is None:
                pass  # a relayed frame's binary part
            return strict_json(message["text"])

        # A valid fork, result or ballot is acted on without a reply of its own.
        fuzz(send, read, {"type": "ballot", "option": 1}, "room", all_answered=False)
    no_server_errors(client)
