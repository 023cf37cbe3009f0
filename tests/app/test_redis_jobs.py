"""CNN jobs on the shared queue (RQ on Redis) as a server sees them, against a real redis-server:
its jobs in `/metrics`, and Redis going away while a job waits — the server stays up, a new job
runs in the server's own process, and a job it cannot see is a clean 503 that says why."""

import logging
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.jobs import redis_queue
from app.main import create_app
from app.settings import Settings
from tests.app.cnn_jobs import tiny_job
from tests.app.json_api import error_text

WAIT = 30.0


def submit(client, user: str) -> str:
    answer = client.post("/api/cnn/jobs", json=tiny_job(), headers={"X-Client-Id": user})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def metric(client, name: str, state: str) -> float:
    line = f'{name}{{state="{state}"}} '
    found = [x for x in client.get("/metrics").text.splitlines() if x.startswith(line)]
    assert found, f"no {line.strip()} in /metrics"
    return float(found[0].split()[-1])


def warnings(caplog, says: str) -> list[str]:
    """The job queue's warnings that say `says` (the rooms' broker logs its own)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == redis_queue.__name__ and says in r.getMessage()
    ]


def test_redis_away_new_jobs_run_here_and_its_jobs_answer_503_with_the_reason(
    redis, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(redis_queue, "RETRY_SECONDS", 0.2)
    settings = Settings(redis_url=redis.url, job_workers=1, jobs_per_user=3)
    with (
        caplog.at_level(logging.WARNING, logger="app.jobs.redis_queue"),
        TestClient(create_app(settings)) as client,
    ):
        user = uuid.uuid4().hex
        # No worker runs: the job waits on Redis, and the shared queue's figures say so.
        stopped = submit(client, user)
        assert metric(client, "playground_shared_jobs", "queued") == 1
        assert client.post(f"/api/cnn/jobs/{stopped}/stop").json()["state"] == "stopped"
        assert metric(client, "playground_shared_jobs", "queued") == 0
        assert metric(client, "playground_shared_jobs_finished_total", "stopped") == 1
        waiting = submit(client, user)
        with client.websocket_connect(f"/ws/cnn/{waiting}") as followed:
            assert followed.receive_json()["state"] == "queued"

            redis.kill()
            # Its follower is told to come back later, not left hanging.
            with pytest.raises(WebSocketDisconnect) as lost:
                while True:
                    followed.receive_json()
            assert lost.value.code == 1013 and "cannot be reached" in lost.value.reason

        answer = client.get(f"/api/cnn/jobs/{waiting}")
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
        assert "cannot be reached" in error_text(answer) and redis.url in error_text(answer)
        assert client.post(f"/api/cnn/jobs/{waiting}/stop").status_code == 503
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect(f"/ws/cnn/{waiting}"),
        ):
            pass
        assert refused.value.code == 1013

        # A new job trains in this process, start to end, with all it offers.
        here = submit(client, user)
        deadline = time.monotonic() + WAIT
        while (found := client.get(f"/api/cnn/jobs/{here}").json())["state"] != "done":
            assert found["state"] in ("queued", "running"), found
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert found["has_model"] and found["history"]
        assert client.get(f"/api/cnn/jobs/{here}/train.py").status_code == 200
        listed = client.get("/api/cnn/jobs", headers={"X-Client-Id": user}).json()
        assert [j["id"] for j in listed] == [here]  # Redis's jobs cannot be listed meanwhile
        assert client.get("/healthz").status_code == 200
        assert len(warnings(caplog, "cannot be reached")) == 1

        # Redis back (empty: it kept nothing): it is found again, and new jobs go to it.
        redis.start()
        deadline = time.monotonic() + WAIT
        while client.get(f"/api/cnn/jobs/{waiting}").status_code == 503:
            assert time.monotonic() < deadline, "Redis was not found again"
            time.sleep(0.1)
        assert client.get(f"/api/cnn/jobs/{waiting}").status_code == 404
        assert warnings(caplog, "answers again")
        back = submit(client, user)
        assert client.get(f"/api/cnn/jobs/{back}").json()["state"] == "queued"
        assert metric(client, "playground_shared_jobs", "queued") == 1
        client.post(f"/api/cnn/jobs/{back}/stop")
