"""Request bodies with limits: a byte cap enforced while the body arrives, and strict JSON."""

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute


async def read_capped_body(request: Request, max_bytes: int) -> bytes:
    """The request body, or 413 as soon as it is known to exceed `max_bytes`.

    A declared `Content-Length` over the cap is refused before a byte is read; a chunked body
    (or one whose `Content-Length` lies) is counted while it streams and refused at the limit, so
    memory never holds more than `max_bytes` plus one chunk.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(
                400, f"Content-Length must be a whole number. Received: {declared!r}"
            )
        if int(declared) > max_bytes:
            raise HTTPException(413, _too_large(int(declared), max_bytes))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise HTTPException(413, _too_large(len(body), max_bytes, at_least=True))
    return bytes(body)


def _too_large(size: int, max_bytes: int, at_least: bool = False) -> str:
    what = f"at least {size:,}" if at_least else f"{size:,}"
    return f"The upload is {what} bytes; at most {max_bytes:,} bytes are accepted."


def clean_validation_error(error: dict) -> dict:
    """One validation error, its input kept only when it is a short, finite scalar.

    FastAPI's own 422 echoes every input back; a NaN in it would make the response fail to encode.
    """
    reason = (error.get("ctx") or {}).get("error")  # e.g. why the JSON did not decode
    msg = f"{error['msg']}: {reason}" if reason else error["msg"]
    cleaned = {"loc": list(error["loc"]), "msg": msg, "type": error["type"]}
    value = error.get("input")
    finite = not isinstance(value, float) or math.isfinite(value)
    if isinstance(value, str | int | float | bool) and finite and len(repr(value)) <= 40:
        cleaned["input"] = value
    return cleaned


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """The app's 422: the errors without anything that cannot be valid JSON."""
    return JSONResponse({"detail": [clean_validation_error(e) for e in exc.errors()]}, 422)


class StrictJSONRequest(Request):
    """A request whose JSON body may not hold NaN, Infinity or numbers that overflow to inf.

    Python's `json.loads` accepts them; FastAPI's 422 then echoes the bad value back and
    Starlette's strict encoder fails on it, turning a typo into a 500.
    """

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(
                await self.body(), parse_constant=_reject_constant, parse_float=_finite_float
            )
        return self._json


class StrictJSONRoute(APIRoute):
    """Route class (`APIRouter(route_class=StrictJSONRoute)`) that parses bodies strictly."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler


def _reject_constant(name: str) -> float:
    raise json.JSONDecodeError(f"{name} is not a number; send finite numbers only", name, 0)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise json.JSONDecodeError(f"{text} overflows; send finite numbers only", text, 0)
    return value
