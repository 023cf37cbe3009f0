"""Checks at the socket's edge: who may connect, how big and how frequent messages may be."""

import json
import time

from starlette import status
from starlette.websockets import WebSocket

from app.metrics import reject
from app.settings import Settings


def origin_allowed(websocket: WebSocket, settings: Settings) -> bool:
    """Same-origin or allowlisted. CORS middleware does not cover WebSockets, so this is the check.

    `null` (a sandboxed iframe, a file:// page, a redirect) is never an allowed origin, even if
    configured: any page can make its origin `null`."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return settings.allow_missing_origin
    if origin == "null":
        return False
    if origin in settings.allowed_origins:
        return True
    host = websocket.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


async def refuse_foreign_origin(websocket: WebSocket) -> bool:
    """The check every socket route makes first: True after refusing a socket from another site
    (closed before accept, so the handshake is answered 403), False if it may go on.

    `if await refuse_foreign_origin(websocket): return`
    """
    if origin_allowed(websocket, websocket.app.state.settings):
        return False
    reject("bad_origin", origin=websocket.headers.get("origin"), path=websocket.url.path)
    await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
    return True


class RateLimit:
    """Token bucket: `rate` messages a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.last = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class BadMessage(ValueError):
    pass


def _no_constants(name: str):
    raise BadMessage(f"{name} is not a number this server accepts: send finite numbers only.")


def parse_json(text: str) -> object:
    """Strict JSON: the bare NaN / Infinity literals Python would accept are refused."""
    try:
        return json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise BadMessage("Message is nested too deeply.") from None
    except json.JSONDecodeError as e:
        raise BadMessage(f"Message is not valid JSON: {e.msg} at character {e.pos}.") from None
