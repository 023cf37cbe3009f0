"""The app's one HTTP request policy: byte caps, strict JSON, and one 422 shape a student can read.

Every JSON endpoint's router uses `StrictJSONRoute`; uploads read their body with
`read_capped_body`. Errors are `{"detail": "text"}` (HTTPException: 404, 413, 415…) or, for every
422, `{"detail": [{"loc": [...], "msg": "...", "type": "...", "input"?: ...}]}`, each `msg` naming
the field and the value received, Keras-style.
"""

import json
import math
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic_core import PydanticCustomError

NON_FINITE_HINT = "send finite numbers only: NaN and Infinity are not JSON"
# What a JSON endpoint answers besides 200, for its OpenAPI entry (`responses=JSON_ERRORS`).
JSON_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"description": "The body is over the byte cap; it is refused before it is read."},
    422: {
        "description": "A field is missing, unknown, not a finite number or out of range; `msg` "
        "names the field, the value received and the allowed range."
    },
}


async def read_capped_body(request: Request, max_bytes: int, quoted: int | None = None) -> bytes:
    """The request body, or 413 as soon as it is known to exceed `max_bytes`.

    A declared `Content-Length` over the cap is refused before a byte is read; a chunked body
    (or one whose `Content-Length` lies) is counted while it streams and refused at the limit, so
    memory never holds more than `max_bytes` plus one chunk. The message names `quoted` bytes
    when given: the limit the user knows (a photo's, where the cap adds room for a form).
    """
    limit = max_bytes if quoted is None else quoted
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(
                400, f"Content-Length must be a whole number. Received: {declared!r}"
            )
        if int(declared) > max_bytes:
            raise HTTPException(413, _too_large(int(declared), limit))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise HTTPException(413, _too_large(len(body), limit, at_least=True))
    return bytes(body)


def _too_large(size: int, max_bytes: int, at_least: bool = False) -> str:
    what = f"at least {size:,}" if at_least else f"{size:,}"
    return f"The request body is {what} bytes; at most {max_bytes:,} bytes are accepted."


class StrictJSONRoute(APIRoute):
    """The route class of every JSON endpoint: `APIRouter(route_class=StrictJSONRoute)`.

    The body is capped before it is read (`Settings.max_json_bytes`, or a router's own cap through
    `StrictJSONRoute.capped(n)`), then parsed strictly: Python's `json.loads` accepts NaN,
    Infinity and numbers that overflow to inf, which no endpoint wants. Such a body is answered
    with the errors its model gives the same values, so the message names the field and its
    range, as for any other bad number; a field that would take them is refused all the same.
    """

    # None: the app's `Settings.max_json_bytes`; a function: of the settings (an upload's cap).
    max_body_bytes: int | Callable[[Any], int] | None = None
    # The limit a 413 names, a function of the settings; None: the cap itself.
    quoted_bytes: Callable[[Any], int] | None = None

    @classmethod
    def capped(
        cls, max_bytes: int | Callable[[Any], int], quoted: Callable[[Any], int] | None = None
    ) -> type["StrictJSONRoute"]:
        """This route class with its own cap, for a router whose bodies are larger: a number of
        bytes, or a function of the app's settings (`lambda s: s.max_upload_bytes`); `quoted`,
        the limit its 413 names instead."""
        if isinstance(max_bytes, int):
            return type(f"{cls.__name__}{max_bytes}", (cls,), {"max_body_bytes": max_bytes})
        # staticmethod: not methods of the route
        fields = {"max_body_bytes": staticmethod(max_bytes), "quoted_bytes": staticmethod(quoted)}
        return type(f"{cls.__name__}_{max_bytes.__name__}", (cls,), fields)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            settings = request.app.state.settings
            cap = self.max_body_bytes or settings.max_json_bytes
            cap = cap(settings) if callable(cap) else cap
            quoted = self.quoted_bytes(settings) if self.quoted_bytes else None
            # FastAPI reuses a body already read and parsed (its GzipRequest recipe).
            request._body = await read_capped_body(request, cap, quoted)
            if request._body and _declares_json(request):
                try:
                    request._json = json.loads(
                        request._body, parse_constant=_reject_constant, parse_float=_finite_float
                    )
                except _NonFinite:
                    if errors := self._non_finite_errors(request._body):
                        raise RequestValidationError(errors) from None
                except (json.JSONDecodeError, UnicodeDecodeError):
                    pass  # FastAPI parses it again and answers its own 422 (400: not UTF-8)
            return await handler(request)

        return strict_handler

    def _non_finite_errors(self, body: bytes) -> list[dict]:
        """The errors of a body holding NaN or infinities; none if it is not JSON at all."""
        try:
            value = json.loads(body)
        except json.JSONDecodeError:
            return []  # FastAPI parses it again and answers its own 422
        errors = self.body_field.validate(value, loc=("body",))[1] if self.body_field else []
        named = [
            e
            for e in errors
            if _has_non_finite(e.get("input")) and not isinstance(e.get("input"), dict)
        ]
        for error in named:
            error["msg"] = f"{error['msg']} ({NON_FINITE_HINT})"
        if not named:  # a field that would have taken them
            errors += [
                {
                    "loc": ("body", *path),
                    "msg": f"{name} must be a finite number. Received: {name}={number} "
                    f"({NON_FINITE_HINT})",
                    "type": "finite_number",
                }
                for path, number in _non_finite(value)
                for name in [field_name(["body", *path])]
            ]
        return errors


class _NonFinite(json.JSONDecodeError):
    pass


def _reject_constant(name: str) -> float:
    raise _NonFinite(f"{name} is not a number", name, 0)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(f"{text} overflows", text, 0)
    return value


def _declares_json(request: Request) -> bool:
    """Whether FastAPI will parse this body as JSON (application/json or a +json type)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _non_finite(value: object, path: tuple = ()) -> Iterator[tuple[tuple, float]]:
    """(path, number) of every NaN or infinity in a parsed JSON value."""
    if isinstance(value, float) and not math.isfinite(value):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _non_finite(item, (*path, i))


def _has_non_finite(value: object) -> bool:
    return next(_non_finite(value), None) is not None


def checked(check: Callable[..., Any], *args: Any) -> Any:
    """Runs one of `models/`' checks in a validator, its Keras-style message kept as the `msg`."""
    try:
        return check(*args)
    except ValueError as exc:
        # A custom error type, so pydantic does not prefix the message with "Value error, ".
        raise PydanticCustomError("out_of_range", "{message}", {"message": str(exc)}) from None


def unprocessable(msg: str, loc: tuple[str | int, ...] = ("body",)) -> RequestValidationError:
    """A 422 in the app's one shape, for a problem found once the request has validated."""
    return RequestValidationError([{"loc": loc, "msg": msg, "type": "value_error"}])


def field_name(loc: list[str | int]) -> str:
    """A field as the pages and messages write it: `input.array[0][2]`, `kernels[0][1][1]`.

    The first item (body, query, path) is dropped, and so are the tags pydantic adds for the
    members of a union (`list[float]`, `function-after[...]`).
    """
    name = ""
    for part in loc[1:]:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part.isidentifier():
            name += f".{part}" if name else part
    return name


def clean_validation_error(error: dict) -> dict:
    """One validation error, its `msg` naming the field and the value received.

    The input is kept only when it is a short, finite scalar: FastAPI's own 422 echoes every input
    back, and a NaN in it would make the response fail to encode.
    """
    msg = error["msg"]
    reason = (error.get("ctx") or {}).get("error")
    if error["type"] == "json_invalid":  # why the JSON did not decode
        msg = f"{msg}: {reason}"
    elif (
        error["type"] == "value_error" and reason
    ):  # a validator's own words, without "Value error, "
        msg = str(reason)
    cleaned = {"loc": list(error["loc"]), "msg": msg, "type": error["type"]}
    value = error.get("input")
    finite = not isinstance(value, float) or math.isfinite(value)
    shown = isinstance(value, str | int | float | bool) and finite and len(repr(value)) <= 40
    if shown:
        cleaned["input"] = value
    name = "" if error["type"] == "json_invalid" else field_name(cleaned["loc"])
    if name and "Received:" not in msg:  # `models/` checks already name the field and value
        received = f" Received: {name}={value!r}" if shown else ""
        cleaned["msg"] = f"{name}: {msg.rstrip('.')}.{received}"
    return cleaned


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """The app's 422: the errors without anything that cannot be valid JSON."""
    return JSONResponse({"detail": [clean_validation_error(e) for e in exc.errors()]}, 422)
