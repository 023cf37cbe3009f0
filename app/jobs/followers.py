"""A job stream's queue of items for one follower, bounded in both job queues alike.

A follower that falls behind is not allowed to grow without bound: its backlog is dropped and
`RESYNC` is queued instead, which the stream answers with a fresh status (it holds everything
needed to redraw).
"""

import asyncio

from app.jobs import JobStatus

FOLLOWER_BACKLOG = 256  # items a slow follower may have waiting before it is resynced
RESYNC = object()  # in a follower's queue: its backlog was dropped, send a fresh status


def deliver(items: asyncio.Queue, item: object) -> None:
    """Queues `item` for a follower (on the follower's event loop); past `FOLLOWER_BACKLOG`
    waiting, the backlog goes and `item` stays only if it is itself a fresh status."""
    if items.qsize() >= FOLLOWER_BACKLOG:
        while not items.empty():
            items.get_nowait()
        if not isinstance(item, JobStatus):
            item = RESYNC
    items.put_nowait(item)
