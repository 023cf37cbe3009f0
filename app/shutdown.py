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
on one shared queue.
"""

import asyncio
import contextlib
import signal
import socket
import sys

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.supervisors.multiprocess import Process

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
            await asyncio.wait_for(self._ended.wait(), timeout)


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
    none are given (an app uvicorn builds from its factory), the loaded app's `state.sockets`."""

    def __init__(self, config: uvicorn.Config, sockets: OpenSockets | None = None):
        super().__init__(config)
        self._sockets = sockets

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
        super().run(sockets)

    async def shutdown(self, sockets=None) -> None:
        await self.sockets.close_all()
        await super().shutdown(sockets)


class GracefulWorker(Process):
    """One process of uvicorn's `Multiprocess` supervisor: a `GracefulServer` on its own
    SO_REUSEPORT socket (the supervisor's `sockets` go unused: give it none)."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = GracefulServer(self.config)
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
