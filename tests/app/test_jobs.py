"""app/jobs: the in-process queue behind the job interface, without the app: lifecycle, queue
positions, one running job per user, stop, pause, failures, limits, expiry, the progress stream
and its slow followers, and a clean shutdown."""

import asyncio
import threading
import time

import pytest

from app.jobs import JobRefused, JobStatus, JobStopped, QueueFull, TooManyJobs
from app.jobs.followers import FOLLOWER_BACKLOG
from app.jobs.local import LocalJobs
from app.settings import Settings

# --- job functions: module-level, as the interface asks ---------------------------------------


def add(inputs, reporter):
    reporter.update(note="adding")
    return inputs[0] + inputs[1]


def run_until_stopped(inputs, reporter):
    while True:
        reporter.checkpoint()
        time.sleep(0.005)


def count(inputs, reporter):
    for step in range(1, inputs["steps"] + 1):
        reporter.checkpoint()
        reporter.update(step=step)
        reporter.emit({"type": "step", "step": step})
        time.sleep(inputs.get("delay", 0))
    return step


def keep_what_was_done(inputs, reporter):
    done = 0
    try:
        while True:
            reporter.checkpoint()
            done += 1
            time.sleep(0.005)
    except JobStopped:
        return f"{done} steps"


def refuse(inputs, reporter):
    raise ValueError("x must be positive. Received: x=-1")


def crash(inputs, reporter):
    raise RuntimeError("boom")


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def jobs():
    queue = LocalJobs(Settings(job_workers=2, jobs_per_user=3, job_queue=4, jobs_kept=8))
    queue.start()
    yield queue
    queue.shutdown()


def wait_for(jobs: LocalJobs, job_id: str, *states: str, timeout: float = 10) -> JobStatus:
    deadline = time.monotonic() + timeout
    while (found := jobs.status(job_id)).state not in states:
        assert time.monotonic() < deadline, f"still {found.state}, not {states}"
        time.sleep(0.005)
    return found


def collect(jobs: LocalJobs, job_id: str, act=None, pause: float = 0.0) -> list:
    """Everything the job's stream yields; `act()` runs once the first item arrived, then the
    reader waits `pause` seconds before reading on."""

    async def read():
        items = []
        async for item in jobs.stream(job_id):
            items.append(item)
            if len(items) == 1 and act is not None:
                act()
                await asyncio.sleep(pause)
        return items

    return asyncio.run(asyncio.wait_for(read(), 20))


# --- tests -------------------------------------------------------------------------------------


def test_a_job_runs_and_keeps_its_result_and_progress(jobs) -> None:
    began = time.time()
    job_id = jobs.submit(add, (2, 3), owner="ada", progress={"what": "a sum"})

    done = wait_for(jobs, job_id, "done")

    assert jobs.result(job_id) == 5
    later = jobs.submit(add, (1, 1), owner="ada")
    assert [s.id for s in jobs.owned("ada")] == [later, job_id] and jobs.owned("bob") == []
    assert done.progress == {"what": "a sum", "note": "adding"}
    assert done.error is None and done.queue_position is None and not done.paused
    assert began <= done.created_at <= done.started_at <= done.finished_at <= time.time()
    assert done.expires_at == done.finished_at + jobs.settings.job_expire_seconds
    assert jobs.status("0" * 32) is None


def test_a_users_second_job_waits_behind_the_first_while_others_go_ahead(jobs) -> None:
    first = jobs.submit(run_until_stopped, None, owner="ada")
    wait_for(jobs, first, "running")
    second = jobs.submit(add, (1, 1), owner="ada")
    other = jobs.submit(add, (2, 2), owner="bob")

    wait_for(jobs, other, "done")  # the second worker took bob's job
    waiting = jobs.status(second)
    assert (waiting.state, waiting.queue_position) == ("queued", 1)

    jobs.stop(first)
    assert wait_for(jobs, first, "stopped").error is None
    wait_for(jobs, second, "done")
    assert jobs.result(second) == 2


def test_queue_positions_count_from_one(jobs) -> None:
    blockers = [jobs.submit(run_until_stopped, None, owner=f"u{i}") for i in range(2)]
    for job_id in blockers:
        wait_for(jobs, job_id, "running")
    queued = [jobs.submit(add, (i, i), owner=f"v{i}") for i in range(3)]

    assert [jobs.status(j).queue_position for j in queued] == [1, 2, 3]
    jobs.stop(queued[0])
    assert jobs.status(queued[0]).state == "stopped"
    assert [jobs.status(j).queue_position for j in queued[1:]] == [1, 2]
    for job_id in blockers:
        jobs.stop(job_id)


def test_a_stopped_job_may_keep_what_it_did(jobs) -> None:
    job_id = jobs.submit(keep_what_was_done, None, owner="ada")
    wait_for(jobs, job_id, "running")
    time.sleep(0.05)

    assert jobs.stop(job_id).stopping
    stopped = wait_for(jobs, job_id, "stopped")

    assert jobs.result(job_id).endswith(" steps")
    assert stopped.finished_at is not None


def test_pause_holds_a_job_at_its_next_checkpoint_and_resume_lets_it_go(jobs) -> None:
    job_id = jobs.submit(count, {"steps": 200, "delay": 0.002}, owner="ada")
    wait_for(jobs, job_id, "running")

    assert jobs.pause(job_id).paused
    time.sleep(0.05)
    held = jobs.status(job_id).progress.get("step", 0)
    time.sleep(0.1)
    assert jobs.status(job_id).progress.get("step", 0) == held
    assert jobs.status(job_id).state == "running"

    assert not jobs.resume(job_id).paused
    wait_for(jobs, job_id, "done")
    assert jobs.result(job_id) == 200


def test_a_paused_job_can_still_be_stopped(jobs) -> None:
    job_id = jobs.submit(run_until_stopped, None, owner="ada")
    wait_for(jobs, job_id, "running")
    jobs.pause(job_id)
    time.sleep(0.02)

    jobs.stop(job_id)

    assert wait_for(jobs, job_id, "stopped").paused


def test_a_failure_is_reported_in_words_not_hidden(jobs) -> None:
    refused = jobs.submit(refuse, None, owner="ada")
    crashed = jobs.submit(crash, None, owner="bob")

    assert wait_for(jobs, refused, "failed").error == "x must be positive. Received: x=-1"
    assert wait_for(jobs, crashed, "failed").error == "RuntimeError: boom"
    assert jobs.result(crashed) is None


def test_limits_refuse_jobs_with_a_reason(jobs) -> None:
    for _ in range(3):
        jobs.submit(run_until_stopped, None, owner="ada")
    with pytest.raises(TooManyJobs, match="3 jobs queued or running") as too_many:
        jobs.submit(add, (1, 2), owner="ada")
    assert too_many.value.status == 429

    wait_for(jobs, jobs.submit(run_until_stopped, None, owner="bob"), "running")
    jobs.submit(add, (0, 0), owner="eve")
    jobs.submit(add, (0, 0), owner="zoe")  # both workers busy: 4 wait, ada's 2 among them
    with pytest.raises(QueueFull, match="4 jobs are waiting") as full:
        jobs.submit(add, (0, 0), owner="max")
    assert full.value.status == 503


def test_finished_jobs_expire_and_the_oldest_go_first_past_the_cap() -> None:
    jobs = LocalJobs(Settings(job_expire_seconds=0.2, jobs_kept=2))
    jobs.start()
    try:
        first = jobs.submit(add, (1, 1), owner="ada")
        wait_for(jobs, first, "done")
        second = jobs.submit(add, (1, 2), owner="ada")
        wait_for(jobs, second, "done")
        third = jobs.submit(add, (1, 3), owner="ada")  # the cap of 2 forgets the first
        assert jobs.status(first) is None and jobs.status(second) is not None
        wait_for(jobs, third, "done")
        time.sleep(0.25)
        assert jobs.status(second) is None and jobs.status(third) is None
    finally:
        jobs.shutdown()


@pytest.mark.parametrize("fn", [lambda inputs, reporter: None, LocalJobs.status])
def test_a_job_function_must_be_importable_by_name(jobs, fn) -> None:
    with pytest.raises(TypeError, match="module-level function"):
        jobs.submit(fn, None, owner="ada")


def test_the_stream_follows_a_job_from_queued_to_done(jobs) -> None:
    blocker = jobs.submit(run_until_stopped, None, owner="ada")
    wait_for(jobs, blocker, "running")
    job_id = jobs.submit(count, {"steps": 3}, owner="ada")

    items = collect(jobs, job_id, act=lambda: jobs.stop(blocker))

    statuses = [i for i in items if isinstance(i, JobStatus)]
    messages = [i for i in items if not isinstance(i, JobStatus)]
    assert [s.state for s in statuses] == ["queued", "running", "done"]
    assert statuses[0].queue_position == 1
    assert messages == [{"type": "step", "step": s} for s in (1, 2, 3)]
    assert statuses[-1].progress == {"step": 3}
    assert collect(jobs, job_id) == [jobs.status(job_id)]  # an ended job: its status only
    assert collect(jobs, "f" * 32) == []


def test_a_slow_follower_gets_a_fresh_status_instead_of_an_endless_backlog(jobs) -> None:
    blocker = jobs.submit(run_until_stopped, None, owner="ada")
    wait_for(jobs, blocker, "running")
    job_id = jobs.submit(count, {"steps": 3 * FOLLOWER_BACKLOG}, owner="ada")

    def release():
        jobs.stop(blocker)
        wait_for(jobs, job_id, "done")

    items = collect(jobs, job_id, act=release)

    steps = [i for i in items if isinstance(i, dict)]
    assert len(steps) < FOLLOWER_BACKLOG
    assert isinstance(items[-1], JobStatus) and items[-1].state == "done"
    assert items[-1].progress == {"step": 3 * FOLLOWER_BACKLOG}


def test_shutdown_stops_running_and_queued_jobs_and_joins_the_workers() -> None:
    others = set(threading.enumerate())  # another app's workers (a live server's) are not these
    jobs = LocalJobs(Settings(job_workers=1))
    jobs.start()
    running = jobs.submit(run_until_stopped, None, owner="ada")
    wait_for(jobs, running, "running")
    queued = jobs.submit(add, (1, 1), owner="bob")

    jobs.shutdown()  # returns (pytest-timeout would catch a hang): the running job saw its stop

    assert jobs.status(running).state == "stopped"
    assert jobs.status(queued).state == "stopped"
    assert not any(t.name.startswith("job-") for t in set(threading.enumerate()) - others)
    with pytest.raises(JobRefused, match="not taking jobs"):
        jobs.submit(add, (1, 1), owner="ada")
