"""How many XLA builds this process may still make.

TensorFlow keeps every executable it builds until the process ends: dropping the function that
built it frees its graph, not the executable. Measured for an MLP trainer: 21-102 MiB for its
first build, 5-20 MiB for each further group size, 4-11 MiB back when the trainer is dropped. So the
per-shape caches whose shapes students choose (the MLP's trainers, the RNN's builds) take their
builds from one count for the process; past it, a new shape runs its plain trace. A new process
starts the count again (`serve --workers N` with `recycle_rss_mib` replaces a worker).
"""

import logging
import threading

log = logging.getLogger(__name__)
_lock = threading.Lock()
_made = 0
_spent_said = False  # the budget's end is logged once


def made() -> int:
    """XLA builds made in this process through `take`."""
    return _made


def left(limit: int | None) -> bool:
    """Whether a build may still be made under `limit` (None: no limit). The first time it may
    not is logged: from then on new shapes train slower."""
    if _allows(limit):
        return True
    _say_spent()
    return False


def take(limit: int | None) -> bool:
    """Counts a build about to be made, if `limit` allows another (None: no limit); whether it
    may be made."""
    global _made
    with _lock:
        if _allows(limit):
            _made += 1
            return True
    _say_spent()
    return False


def _allows(limit: int | None) -> bool:
    return limit is None or _made < limit


def _say_spent() -> None:
    global _spent_said
    with _lock:
        if _spent_said:
            return
        _spent_said = True
    log.warning(
        "%d XLA builds made, the most this process makes (max_xla_builds): new shapes run "
        "their plain traces from now on",
        _made,
    )
