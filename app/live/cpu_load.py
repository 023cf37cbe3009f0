"""How busy the machine's CPUs are: what a lab whose frames cost much (an RNN's) yields to.

Read system-wide from `/proc/stat` (psutil), so other server processes (`serve --workers`) and
anything else on the machine count too: a class's cheap sessions keep their frames on time only
if the costly ones leave the cores some room.
"""

import time

import psutil

SAMPLE_SECONDS = 0.5


class CpuLoad:
    """The share of the CPUs' time spent busy over the last `SAMPLE_SECONDS` or so.

    `sample()` is cheap and may be called every frame: it reads the counters again only when
    `SAMPLE_SECONDS` have passed, and `version` counts the readings, so a caller can act once
    per reading rather than once per frame.
    """

    def __init__(self):
        self._times = psutil.cpu_times()
        self._read_at = time.monotonic()
        self.busy = 0.0
        self.version = 0

    def sample(self) -> float:
        now = time.monotonic()
        if now - self._read_at >= SAMPLE_SECONDS:
            times = psutil.cpu_times()
            total = sum(times) - sum(self._times)
            idle = _idle(times) - _idle(self._times)
            self.busy = min(1.0, max(0.0, 1.0 - idle / total)) if total > 0 else self.busy
            self._times, self._read_at = times, now
            self.version += 1
        return self.busy


def _idle(times) -> float:
    return times.idle + getattr(times, "iowait", 0.0)
