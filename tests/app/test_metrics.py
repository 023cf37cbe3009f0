"""/metrics: Prometheus' text format, each metric moved by the event it counts, read back over HTTP;
and the log line each event writes, as JSON or text."""

import json
import logging
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from starlette.websockets import WebSocketDisconnect

from app.labs import all_labs
from app.logging_setup import configure_logging
from app.main import create_app
from app.settings import Settings
from tests.app.live_socket import Socket, close_code
from tests.app.test_jobs import add, run_until_stopped

LAB = next(lab.slug for lab in all_labs() if lab.session is not None)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(use_xla=False, max_sessions=2))) as c:
        yield c


def value(client: TestClient, sample: str, **labels: str) -> float:
    """One sample of /metrics (0 if it is not there yet)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def rejects(client: TestClient, reason: str) -> float:
    return value(client, "playground_rejects_total", reason=reason)


def until(condition, what: str, seconds: float = 5) -> None:
    """Polls `condition` (a job on a worker thread) for a while; fails naming `what`."""
    for _ in range(int(seconds * 100)):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"{what} never happened")


def test_a_session_is_counted_open_then_its_frames_and_latency(client: TestClient) -> None:
    open_before = value(client, "playground_sessions_open", lab=LAB)
    frames_before = value(client, "playground_frames_sent_total", lab=LAB)
    latency = "playground_control_latency_seconds_count"
    latency_before = value(client, latency, lab=LAB)
    with client.websocket_connect(f"/ws/{LAB}") as ws:
        sock = Socket(ws)
        sock.until(lambda m: m["type"] == "frame")
        assert value(client, "playground_sessions_open", lab=LAB) == open_before + 1
        sock.send({"type": "step"})
        sock.until(lambda m: m["type"] == "frame" and m["step"] > 0)
        frames = value(client, "playground_frames_sent_total", lab=LAB)
        assert frames >= frames_before + 2
        assert value(client, latency, lab=LAB) >= latency_before + 1
        # A pause asks for no frame, so it starts no latency timing.
        timed = value(client, latency, lab=LAB)
        sock.send({"type": "pause"})
        sock.until(lambda m: m["type"] == "state" and not m["running"])
        sock.send({"type": "pause"})
        sock.until(lambda m: m["type"] == "state" and not m["running"])
        assert value(client, latency, lab=LAB) == timed
    until(lambda: value(client, "playground_sessions_open", lab=LAB) == open_before, "close")


def test_socket_rejects_are_counted_by_reason(client: TestClient) -> None:
    before = {r: rejects(client, r) for r in ("bad_origin", "bad_message", "too_big")}
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect(f"/ws/{LAB}", headers={"origin": "https://evil.example"}),
    ):
        pass
    assert rejects(client, "bad_origin") == before["bad_origin"] + 1
    with client.websocket_connect(f"/ws/{LAB}") as ws:
        sock = Socket(ws)
        sock.ws.send_text("hello")
        sock.until(lambda m: m["type"] == "error")
        assert rejects(client, "bad_message") == before["bad_message"] + 1
        sock.ws.send_text(json.dumps({"type": "config", "x": "a" * 100_000}))
        assert close_code(sock) == 1009
    assert rejects(client, "too_big") == before["too_big"] + 1


def test_a_flood_and_a_full_server_are_counted(client: TestClient) -> None:
    limited, full = rejects(client, "rate_limited"), rejects(client, "server_full")
    with client.websocket_connect(f"/ws/{LAB}") as ws:
        sock = Socket(ws)
        with pytest.raises(WebSocketDisconnect):
            for _ in range(400):
                sock.send({"type": "pause"})
            sock.until(lambda m: False, limit=1000)
    assert rejects(client, "rate_limited") == limited + 1
    own_page = {"origin": "http://testserver"}
    with (
        client.websocket_connect(f"/ws/{LAB}", headers=own_page),
        client.websocket_connect(f"/ws/{LAB}", headers=own_page),
    ):
        with client.websocket_connect(f"/ws/{LAB}", headers=own_page) as third:  # max_sessions=2
            assert "full" in third.receive_text()
        assert rejects(client, "server_full") == full + 1
        # The Origin check comes first: a foreign page is refused as such, even when full.
        foreign = rejects(client, "bad_origin")
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect(f"/ws/{LAB}", headers={"origin": "https://evil.example"}),
        ):
            pass
        assert refused.value.code == 1008
        assert rejects(client, "bad_origin") == foreign + 1


def test_http_latency_by_route_template_and_413_422_rejects(client: TestClient) -> None:
    count = "playground_http_request_duration_seconds_count"
    by_template = {"method": "GET", "route": "/labs/{slug}"}
    before = value(client, count, **by_template)
    client.get(f"/labs/{LAB}")
    client.get("/labs/nope")
    assert value(client, count, **by_template) == before + 2
    too_big, invalid = rejects(client, "http_413"), rejects(client, "http_422")
    assert client.post("/api/images", content=b"x" * (9 * 1024 * 1024)).status_code == 413
    assert rejects(client, "http_413") == too_big + 1
    assert client.post("/api/images", content=b"").status_code == 422
    assert rejects(client, "http_422") == invalid + 1


def test_jobs_by_state(client: TestClient) -> None:
    jobs = client.app.state.live.jobs
    done = value(client, "playground_jobs_finished_total", state="done")
    stopped = value(client, "playground_jobs_finished_total", state="stopped")
    running = value(client, "playground_jobs", state="running")
    job_id = jobs.submit(add, (1, 2), owner="metrics")
    until(lambda: jobs.status(job_id).state == "done", "the job's end")
    assert value(client, "playground_jobs_finished_total", state="done") == done + 1
    job_id = jobs.submit(run_until_stopped, None, owner="metrics")
    until(lambda: jobs.status(job_id).state == "running", "the job's start")
    assert value(client, "playground_jobs", state="running") == running + 1
    jobs.stop(job_id)
    until(lambda: jobs.status(job_id).state == "stopped", "the job's stop")
    assert value(client, "playground_jobs", state="running") == running
    assert value(client, "playground_jobs_finished_total", state="stopped") == stopped + 1


def test_traces_held_are_counted_by_lab(client: TestClient) -> None:
    with client.websocket_connect("/ws/mlp") as ws:
        sock = Socket(ws)
        sock.send({"type": "config", "hidden": [3, 3, 3, 3, 3]})
        sock.send({"type": "step"})
        sock.until(lambda m: m["type"] == "frame" and m["version"] >= 1 and m["step"] > 0)
    until(lambda: not client.app.state.live.compiling, "the background traces", 120)
    held = {lab.slug: lab.traces() for lab in all_labs() if lab.traces is not None}
    assert held["mlp"] >= 1  # at least the trace that session trained in
    for slug, count in held.items():
        assert value(client, "playground_traces", lab=slug) == count


def test_process_figures_are_there(client: TestClient) -> None:
    assert value(client, "process_resident_memory_bytes") > 0


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.mark.usefixtures("root_logging")
@pytest.mark.parametrize("log_format", ["json", "text"])
def test_an_event_is_one_log_line(client: TestClient, capsys, log_format: str) -> None:
    configure_logging(log_format, "info")
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect(f"/ws/{LAB}", headers={"origin": "null"}),
    ):
        pass
    lines = capsys.readouterr().err.splitlines()
    if log_format == "text":  # for a terminal
        assert any("INFO playground: reject reason=bad_origin origin=null" in x for x in lines)
        return
    event = next(e for e in map(json.loads, lines) if e.get("event") == "reject")
    assert event["reason"] == "bad_origin" and event["origin"] == "null"
    assert event["level"] == "INFO" and event["logger"] == "playground" and event["time"]
