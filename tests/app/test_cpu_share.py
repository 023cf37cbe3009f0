"""A costly lab yields to a busy machine: the CPU reading, and an RNN session's share of its
chosen speed (fewer steps a frame, never fewer frames)."""

import os
import time

import pytest

from app.labs.rnn import (
    FIGURES_PER_SECOND,
    LATE_FRAME,
    MIN_FIGURES_PER_SECOND,
    SHARE_CUT,
    RnnSession,
)
from app.live.cpu_load import SAMPLE_SECONDS, CpuLoad
from app.live.runtime import LiveRuntime
from app.settings import Settings

FRAME = 1 / Settings().frame_rate


class Readings:
    """Stands in for the machine's CPU: each `sample()` is a new reading of `busy`."""

    def __init__(self, busy: float):
        self.busy, self.version = busy, 0

    def sample(self) -> float:
        self.version += 1
        return self.busy


@pytest.fixture
def session() -> RnnSession:
    s = RnnSession(LiveRuntime(Settings(use_xla=False)))
    s.configure({"speed": 10})
    s.running = True
    return s


def frames(session: RnnSession, n: int, gap: float = FRAME, start: float = 100.0) -> float:
    """`n` training frames `gap` apart, as the session's calls would start them."""
    for i in range(n):
        session._pace(start + i * gap)
    return start + n * gap


def test_a_busy_machine_cuts_the_steps_a_frame_and_an_idle_one_gives_them_back(session) -> None:
    assert session.steps_per_frame() == 10
    session.cpu_load = Readings(busy=0.97)
    frames(session, 2)
    assert session.share == pytest.approx(SHARE_CUT)  # the first frame since play is not judged
    assert session.steps_per_frame() == 7
    frames(session, 20, start=200.0)
    assert session.steps_per_frame() == 1  # never none: the student still sees training
    session.cpu_load = Readings(busy=0.3)
    frames(session, 30, start=300.0)
    assert session.share == 1.0 and session.steps_per_frame() == 10


def figures_a_second(session: RnnSession, seconds: int = 10) -> float:
    """Of the frames while playing, how many carry figures a second."""
    session.last_figures = -1e9
    count = 0
    for i in range(round(seconds / FRAME)):
        figures, _ = session._figures_due(1000.0 + i * FRAME)
        if figures:
            session.last_figures = 1000.0 + i * FRAME
            count += 1
    return count / seconds


def test_figures_follow_the_share_but_never_fall_below_a_floor(session) -> None:
    # Frames come every 25 ms: an interval is met on the frame at or just after it.
    assert 0.8 * FIGURES_PER_SECOND <= figures_a_second(session) <= FIGURES_PER_SECOND
    session.share = 0.5
    assert 0.4 * FIGURES_PER_SECOND <= figures_a_second(session) <= 0.5 * FIGURES_PER_SECOND
    session.share = 0.1  # a busy machine's floor for speed 10: one step a frame
    assert 0.9 * MIN_FIGURES_PER_SECOND <= figures_a_second(session) <= MIN_FIGURES_PER_SECOND
    session.running = False
    assert session._figures_due(2000.0)[0]  # paused or stepped: every frame draws


def test_late_frames_cut_the_share_on_an_idle_machine(session) -> None:
    session.cpu_load = Readings(busy=0.1)
    frames(session, 2, gap=2 * LATE_FRAME * FRAME)
    assert session.share == pytest.approx(SHARE_CUT)


def test_frames_late_behind_a_plain_call_do_not_cut_the_share(session) -> None:
    """A new shape's first calls run plain (its XLA build still to come): slow, not busy."""
    session.cpu_load = Readings(busy=0.1)
    session.plain_call = True
    frames(session, 4, gap=2 * LATE_FRAME * FRAME)
    assert session.share == 1.0
    session.plain_call = False  # compiled now: late frames mean a busy machine again
    frames(session, 4, gap=2 * LATE_FRAME * FRAME, start=200.0)
    assert session.share < 1.0


def test_a_pause_before_play_is_not_a_late_frame(session) -> None:
    session.cpu_load = Readings(busy=0.1)
    session._pace(100.0)
    session.running = False
    session.play()
    session._pace(160.0)  # a minute later
    assert session.share == 1.0


def test_the_reading_is_the_machines_busy_share_and_is_read_at_most_every_sample() -> None:
    load = CpuLoad()
    load.sample()
    assert load.version == 0  # too soon for a reading

    def spin(until: float) -> None:
        while time.monotonic() < until:
            pass

    until = time.monotonic() + SAMPLE_SECONDS * 1.5
    spin(until)
    busy = load.sample()
    assert load.version == 1
    assert 0.5 / (os.cpu_count() or 1) < busy <= 1.0  # at least this one core was busy
