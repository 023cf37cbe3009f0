"""Graceful shutdown: on SIGTERM (or Ctrl-C) every open socket is closed with 1001, "going away".

uvicorn, left alone, would cut each socket with 1012 as it stops; a page that sees 1001 knows
the server is going down rather than misbehaving. `OpenSockets` knows every accepted socket of
the app, whichever route serves it (the `TrackSockets` middleware records them), and
`GracefulServer` asks it to close them before uvicorn's own shutdown, which then lets requests in
flight finish and runs the lifespan's end (jobs in flight stopped and marked stopped:
`LocalJobs.shutdown`).

`serve --workers N` runs uvicorn's supervisor with `GracefulWorker` processes: each serves with
`GracefulServer` on a listening socket of its own, bound with SO_REUSEPORT, so the kernel spreads
new connections over the workers by their address hash rather than whichever process wakes first
on one shared queue. With `PLAYGROUND_RECYCLE_RSS_MIB`, `RecyclingSupervisor` replaces a worker
whose memory grew past it: the new one first, then the old one drains.
"""

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time

import psutil
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from app.settings import Settings

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
# How long the sockets' handlers get to notice the close and end before uvicorn goes on.
DRAIN_SECONDS = 2.0


class OpenSockets:
    """The `send` of every accepted socket of the app, until its handler ends."""

    def __init__(self):
        self._open: dict[int, Send] = {}
        self._ended = asyncio.Event()

    def add(self, key: int, send: Send) -> None:
        self._open[key] = send

    def discard(self, key: int) -> None:
        if self._open.pop(key, None) is not None and not self._open:
            self._ended.set()

    def __len__(self) -> int:
        return len(self._open)

    async def close_all(self, timeout: float = DRAIN_SECONDS) -> None:
        """Closes every open socket with 1001 and waits (at most `timeout`) for their handlers."""
        sends = list(self._open.values())
        if not sends:
            return
        self._ended.clear()
        for send in sends:
            # The socket may be closing already; then there is nothing to say.
            with contextlib.suppress(OSError, RuntimeError):
                await send(
                    {
                        "type": "websocket.close",
                        "code": CLOSE_GOING_AWAY,
                        "reason": "server stopping",
                    }
                )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):  # not `wait_for`: see `paced`
                await self._ended.wait()


class TrackSockets:
    """ASGI middleware recording every socket it passes in `sockets`."""

    def __init__(self, app: ASGIApp, sockets: OpenSockets):
        self.app = app
        self.sockets = sockets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        key = id(scope)

        async def tracking_send(message: Message) -> None:
            if message["type"] == "websocket.accept":
                self.sockets.add(key, send)
            elif message["type"] == "websocket.close":
                self.sockets.discard(key)
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            self.sockets.discard(key)


class GracefulServer(uvicorn.Server):
    """uvicorn's server, closing the app's sockets with 1001 before it stops: `sockets`, or when
    none are given (an app uvicorn builds from its factory), the loaded app's `state.sockets`.

    SIGUSR1 (from `RecyclingSupervisor`) drains it: it stops accepting (its SO_REUSEPORT siblings
    take the new connections) and stops once its open sockets have closed, or `drain_seconds` on.
    """

    def __init__(
        self, config: uvicorn.Config, sockets: OpenSockets | None = None, drain_seconds: float = 0
    ):
        super().__init__(config)
        self._sockets = sockets
        self.drain_seconds = drain_seconds
        self.draining_since: float | None = None

    @property
    def sockets(self) -> OpenSockets:
        if self._sockets is None:
            app = self.config.loaded_app
            while not hasattr(getattr(app, "state", None), "sockets"):
                app = app.app  # uvicorn's wrappers (proxy headers, logging) hold the app
            self._sockets = app.state.sockets
        return self._sockets

    def run(self, sockets=None) -> None:
        # uvicorn re-raises the signal it stopped on once it is done: a SIGTERM it has handled is
        # a clean stop, so the exit status says 0 rather than "killed".
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        signal.signal(signal.SIGUSR1, lambda signum, frame: self._drain())
        # Ctrl-C likewise: uvicorn re-raises it as KeyboardInterrupt once it has stopped cleanly,
        # which would end a clean stop with a traceback.
        with contextlib.suppress(KeyboardInterrupt):
            super().run(sockets)

    def _drain(self) -> None:
        if self.draining_since is None:
            self.draining_since = time.monotonic()
            log.info(
                "draining for a new worker: no new connections; stopping once its %d open "
                "sockets have closed (at most %.0f s)",
                len(self.sockets),
                self.drain_seconds,
            )

    async def on_tick(self, counter: int) -> bool:
        if await super().on_tick(counter):
            return True
        if self.draining_since is None:
            return False
        for listener in self.servers:
            listener.close()
        drained = time.monotonic() - self.draining_since >= self.drain_seconds
        return drained or len(self.sockets) == 0

    async def shutdown(self, sockets=None) -> None:
        await self.sockets.close_all()
        await super().shutdown(sockets)


class GracefulWorker(Process):
    """One process of uvicorn's `Multiprocess` supervisor: a `GracefulServer` on its own
    SO_REUSEPORT socket (the supervisor's `sockets` go unused: give it none)."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:  # in the worker: its settings come from the environment
            drain = Settings().recycle_drain_seconds
            self._server = GracefulServer(self.config, drain_seconds=drain)
        return self._server

    def target(self, sockets=None) -> None:  # runs in the worker process
        super().target([reuse_port_socket(self.config.host, self.config.port)])


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port that other processes may bind too (SO_REUSEPORT)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


# How long a replacement worker may take to start (TensorFlow's import, the app's start-up).
WORKER_START_SECONDS = 300


class RecyclingSupervisor(Multiprocess):
    """uvicorn's supervisor, also replacing a worker whose resident memory passed `max_rss_mib`,
    oldest first, one at a time: its replacement starts and is ready first, then the old one
    drains (SIGUSR1, `GracefulServer`), so the class is never without a listening worker. The
    supervisor's loop never waits on a start: signals (SIGTERM) are handled meanwhile."""

    def __init__(self, config: uvicorn.Config, max_rss_mib: int):
        super().__init__(config, sockets=[])  # each `GracefulWorker` binds its own
        self.max_rss_mib = max_rss_mib
        self.starting: tuple[int, GracefulWorker, float] | None = None  # slot, worker, deadline
        self.draining: list[GracefulWorker] = []

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        for old in [p for p in self.draining if not p.process.is_alive()]:
            old.join()
            self.draining.remove(old)
        if self.should_exit.is_set():
            return
        if self.starting is not None:
            self._promote()
        elif self.max_rss_mib and not self.draining:
            over = [(_memory(w.pid), i) for i, w in enumerate(self.processes)]
            over = [(started, rss, i) for (started, rss), i in over if rss > self.max_rss_mib]
            if over:
                _, rss, index = min(over)  # the oldest: a new worker never goes before it
                log.info("worker [%s] holds %.0f MiB: replacing it", self.processes[index].pid, rss)
                new = GracefulWorker(self.config, self.sockets)
                new.start()
                self.starting = (index, new, time.monotonic() + WORKER_START_SECONDS)

    def _promote(self) -> None:
        """Puts the starting worker in its slot once it serves; the old one then drains."""
        index, new, deadline = self.starting
        if new.is_ready(timeout=0.1):
            old, self.processes[index] = self.processes[index], new
            os.kill(old.pid, signal.SIGUSR1)
            self.draining.append(old)
            self.starting = None
        elif not new.process.is_alive() or time.monotonic() > deadline:
            new.kill()
            new.join()
            log.error("the new worker [%s] did not start: keeping the old one", new.pid)
            self.starting = None

    def terminate_all(self) -> None:
        super().terminate_all()
        for worker in self._extra():
            worker.terminate()

    def join_all(self) -> None:
        super().join_all()
        for worker in self._extra():
            worker.join()

    def _extra(self) -> list[GracefulWorker]:
        """Workers outside the slots: the one starting and those draining."""
        return self.draining + ([self.starting[1]] if self.starting else [])


def _memory(pid: int | None) -> tuple[float, float]:
    """A process's start time and resident MiB; (0, 0) once it is gone."""
    try:
        process = psutil.Process(pid)
        return process.create_time(), process.memory_info().rss / 2**20
    except (psutil.NoSuchProcess, psutil.ZombieProcess, TypeError):
        return 0.0, 0.0
