"""Security headers on every HTTP response: one middleware, one policy for the pages.

The pages load only the server's own scripts (ES modules under /static, plotly.js from
/vendor): no inline script, no eval. Styles allow 'unsafe-inline' because plotly.js writes
its own <style> element and style attributes as it draws. Pictures may be data: or blob: URLs
(the CNN lab's pictures, canvases' downloads); sockets go to the page's own host only.
"""

import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from app.http_middleware import HTTPMiddleware

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# /docs (Swagger UI) starts itself with an inline script that fastapi-offline writes, and ReDoc
# runs its search in a blob: worker; these pages show only the app's own OpenAPI schema.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
FIXED_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Cross-Origin-Opener-Policy": "same-origin",
}
# A Host header as a browser sends it (name or address, optional port): anything else gets no
# socket source, rather than text spliced into the policy.
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def content_security_policy(path: str, host: str | None) -> str:
    """The policy of a response to `path` asked for as `host`."""
    if path in DOCS_PATHS or path.startswith("/docs/"):
        return DOCS_POLICY
    # CSP3's 'self' covers ws:/wss: to the same host; older browsers need them spelled out.
    sockets = f" ws://{host} wss://{host}" if host and _HOST.fullmatch(host) else ""
    return f"{PAGE_POLICY}; connect-src 'self'{sockets}"


class SecurityHeaders(HTTPMiddleware):
    """ASGI middleware adding the security headers to every HTTP response (not to sockets)."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = content_security_policy(scope["path"], Headers(scope=scope).get("host"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", policy)
                for name, value in FIXED_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
