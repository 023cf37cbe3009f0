"""The solo runner: each session trains itself, one call a frame in the shared pool.

For sessions too small to be worth stacking (a single neuron on at most a few hundred points): one
task per session waits while there is nothing to do, then makes at most `frame_rate` frames a
second, each one call of the session's `train_frame(pool)`.
"""

import asyncio
import contextlib
import logging

from app.live.session import LiveSession, paced

log = logging.getLogger(__name__)


class SoloRunner:
    def __init__(self, runtime):
        self.runtime = runtime
        self.tasks: dict[LiveSession, asyncio.Task] = {}

    def add(self, session: LiveSession) -> None:
        self.tasks[session] = asyncio.create_task(self._run(session))

    def remove(self, session: LiveSession) -> None:
        task = self.tasks.pop(session, None)
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, session: LiveSession) -> None:
        runtime = self.runtime
        pool = runtime.costly_pool if session.costly else runtime.pool
        async for _ in paced(runtime.settings.frame_rate, session.hurry):
            await session.wake.wait()
            if session.has_work:  # a pause may have come since the wake-up
                try:
                    await session.train_frame(pool)
                except Exception:  # one failed call must not end the session's loop unseen
                    log.exception("training call failed for a %s", type(session).__name__)
                    session.running = session.single_step = session.frame_due = False
                    session.send_state()
                    session.send_error("Training failed on the server; press Reset to start over.")
            if not session.has_work:
                session.wake.clear()
