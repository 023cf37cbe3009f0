"""One live socket's life, the same for every lab: checks at the edge, then a reader and a writer.

It also words every error a client message gets: the field, the value received, what is allowed.
"""

import asyncio
import time
from collections.abc import AsyncIterator

from fastapi import WebSocket, WebSocketDisconnect, status
from pydantic import TypeAdapter, ValidationError

from app import metrics
from app.live.guard import BadMessage, RateLimit, parse_json, refuse_foreign_origin
from app.live.outbox import Outbox
from app.protocol.shared import ErrorMessage
from app.rooms.host import RoomLink

CLOSE_TOO_BIG = 1009
CLOSE_TRY_LATER = 1013


class ServerFull(Exception):
    pass


async def run_socket(websocket: WebSocket, session_type: type) -> None:
    """Accepts (or refuses) the socket, opens a session of `session_type` in the app's live
    runtime, and feeds it the socket's text messages until the socket closes."""
    runtime = websocket.app.state.live
    if await refuse_foreign_origin(websocket):
        return
    await websocket.accept()
    lab = session_type.__module__.rpartition(".")[2]  # app.labs.mlp → mlp
    try:
        session = runtime.open(session_type)
    except ServerFull as e:
        metrics.reject("server_full", lab=lab)
        await websocket.send_text(ErrorMessage(message=str(e)).model_dump_json())
        await websocket.close(code=CLOSE_TRY_LATER, reason="server full")
        return
    metrics.session_opened(lab)
    opened = time.monotonic()
    latency = metrics.FrameLatency(lab)
    writer = asyncio.create_task(_write(websocket, session, latency))
    try:
        async with RoomLink(websocket, session) as room:  # a classroom room's host or student
            await _read(websocket, session, latency, room)
    except WebSocketDisconnect:
        pass
    finally:
        writer.cancel()
        runtime.close(session)
        metrics.session_closed(lab, time.monotonic() - opened)


async def incoming(websocket: WebSocket) -> AsyncIterator[str | None]:
    """A socket's messages after the edge checks: the text, or None for a binary message. Ends
    when the client leaves, or after closing the socket for a message over the size cap (1009) or
    over the message rate (1008)."""
    settings = websocket.app.state.settings
    limit = RateLimit(settings.message_rate, settings.message_burst)
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        size = len(text.encode()) if text is not None else len(message.get("bytes") or b"")
        if size > settings.ws_max_message_bytes:
            metrics.reject("too_big", path=websocket.url.path, size=size)
            await websocket.close(
                CLOSE_TOO_BIG, f"message over {settings.ws_max_message_bytes} bytes"
            )
            return
        if not limit.allow():
            metrics.reject("rate_limited", path=websocket.url.path)
            await websocket.close(
                status.WS_1008_POLICY_VIOLATION, f"over {settings.message_rate:g} messages a second"
            )
            return
        yield text


async def _read(
    websocket: WebSocket, session, latency: metrics.FrameLatency, room: RoomLink
) -> None:
    async for text in incoming(websocket):
        arrived = time.perf_counter()
        if text is None:
            metrics.reject("bad_message", path=websocket.url.path)
            session.send_error("Binary messages are not accepted: send JSON text.")
            continue
        if await room.took(text):  # hosting a room, or refused by its lock
            continue
        session.receive(text)
        if session.has_work:  # it calls for a frame (a pause does not)
            latency.message_arrived(arrived)


async def _write(websocket: WebSocket, session: Outbox, latency: metrics.FrameLatency) -> None:
    try:
        while True:
            control, frame = await session.next_outgoing()
            if control is not None:
                await websocket.send_text(control)
            else:
                if frame[0]:  # a lab whose frame is all binary (the MLP's) has no text part
                    await websocket.send_text(frame[0])
                await websocket.send_bytes(frame[1])
                latency.frame_sent()
    except (WebSocketDisconnect, RuntimeError):
        # The client went away; the reader notices and closes the session.
        pass


def parse_message(adapter: TypeAdapter, text: str, session: Outbox, types: str):
    """The validated client message, or None after telling the client what is wrong.

    Args:
        adapter: The socket's discriminated union of client messages.
        text: The raw message.
        session: Where an `error` goes.
        types: The message types the socket accepts, for the "unknown type" message.
    """
    try:
        return adapter.validate_python(parse_json(text))
    except BadMessage as e:
        session.send_error(str(e))
    except ValidationError as e:
        session.send_error(*explain_validation_error(e, types))
    metrics.reject("bad_message")
    return None


def explain_validation_error(error: ValidationError, types: str) -> tuple[str, str | None]:
    """A client message's first validation error in words: the field, the value and what is allowed.

    Args:
        error: From validating a message of a discriminated union.
        types: The message types the socket accepts, for the "unknown type" message.
    """
    first = error.errors()[0]
    loc = [str(p) for p in first["loc"]]
    if first["type"] == "union_tag_not_found":
        return f'Message needs a "type": one of {types}.', "type"
    if first["type"] == "union_tag_invalid":
        return (
            f"Unknown message type {first['input'].get('type')!r}: expected one of {types}.",
            "type",
        )
    if first["type"] in ("model_type", "dict_type", "model_attributes_type"):
        return 'Message must be a JSON object with a "type".', None
    # loc is (tag, field, [index or union member]...): keep the field and list indices.
    field = loc[1] if len(loc) > 1 else None
    if first["type"] == "extra_forbidden":
        return f"Unknown field {field!r} in a {loc[0]} message.", field
    where = ".".join([field or "message", *(p for p in loc[2:] if p.isdigit())])
    # A union (speed: integer or "epoch"/"max") fails once per member: say every option.
    options = dict.fromkeys(_reason(e) for e in error.errors() if e["loc"][:2] == first["loc"][:2])
    shown = repr(first.get("input"))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return f"Invalid {where}: {', or '.join(options)}. Received: {field}={shown}", field


def describe_config_error(error: ValidationError, changes: dict) -> tuple[str, str | None]:
    """A merged config's first validation error, Keras-style: the field, the value received and
    what is allowed."""
    first = error.errors()[0]
    loc = [str(p) for p in first["loc"]]
    field = loc[0] if loc else None
    value = changes.get(field, first.get("input")) if field else first.get("input")
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    where = ".".join(loc) or "config"
    return f"Invalid {where}: {_reason(first)}. Received: {field}={shown}", field


def _reason(error: dict) -> str:
    """An error's words: a validator's own message without pydantic's "Value error, " prefix."""
    reason = (error.get("ctx") or {}).get("error")
    return str(reason) if error["type"] == "value_error" and reason else error["msg"]
