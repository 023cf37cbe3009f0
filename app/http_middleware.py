"""The base of the server's pure-ASGI middlewares, which act on HTTP requests only."""

from starlette.types import ASGIApp, Receive, Scope, Send


class HTTPMiddleware:
    """ASGI middleware that hands each HTTP request to `http()`; sockets pass straight through
    (they answer no HTTP response to time or to add headers to)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serves one HTTP request through `self.app`."""
        raise NotImplementedError
