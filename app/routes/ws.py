"""The live labs' WebSocket endpoints: checks at the edge, then a reader and a writer per socket."""

import asyncio

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from pydantic import ValidationError

from app.live.guard import BadMessage, RateLimit, origin_allowed, parse_json
from app.live.hub import Hub, ServerFull
from app.live.session import Session
from app.protocol import CLIENT_MESSAGE, ErrorMessage

router = APIRouter(tags=["live"])

CLOSE_TOO_BIG = 1009
CLOSE_TRY_LATER = 1013


@router.websocket("/ws/mlp")
async def mlp_socket(websocket: WebSocket) -> None:
    """Multi-layer network lab: config / play / pause / step / reset in, frames out (docs/protocol.md)."""
    settings = websocket.app.state.settings
    hub: Hub = websocket.app.state.hub
    if not origin_allowed(websocket, settings):
        # Closing before accept answers the handshake with HTTP 403.
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
        return
    await websocket.accept()
    try:
        session = hub.open()
    except ServerFull as e:
        await websocket.send_text(ErrorMessage(message=str(e)).model_dump_json())
        await websocket.close(code=CLOSE_TRY_LATER, reason="server full")
        return
    writer = asyncio.create_task(_write(websocket, session))
    try:
        await _read(websocket, session, hub)
    except WebSocketDisconnect:
        pass
    finally:
        hub.close(session)
        writer.cancel()


async def _read(websocket: WebSocket, session: Session, hub: Hub) -> None:
    settings = websocket.app.state.settings
    limit = RateLimit(settings.message_rate, settings.message_burst)
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        size = len(text.encode()) if text is not None else len(message.get("bytes") or b"")
        if size > settings.ws_max_message_bytes:
            await websocket.close(
                CLOSE_TOO_BIG, f"message over {settings.ws_max_message_bytes} bytes"
            )
            return
        if not limit.allow():
            await websocket.close(
                status.WS_1008_POLICY_VIOLATION, f"over {settings.message_rate:g} messages a second"
            )
            return
        if text is None:
            session.send_error("Binary messages are not accepted: send JSON text.")
            continue
        dispatch(hub, session, text)


def dispatch(hub: Hub, session: Session, text: str) -> None:
    """Parses one message and applies it; anything wrong becomes an `error` to this client."""
    try:
        msg = CLIENT_MESSAGE.validate_python(parse_json(text))
    except BadMessage as e:
        session.send_error(str(e))
        return
    except ValidationError as e:
        session.send_error(*_explain(e))
        return
    if msg.type == "config":
        hub.configure(session, msg.changes())
    else:
        getattr(hub, msg.type)(session)


def _explain(error: ValidationError) -> tuple[str, str | None]:
    first = error.errors()[0]
    loc = [str(p) for p in first["loc"]]
    if first["type"] == "union_tag_not_found":
        return 'Message needs a "type": one of config, play, pause, step, reset.', "type"
    if first["type"] == "union_tag_invalid":
        return (
            f"Unknown message type {first['input'].get('type')!r}: "
            "expected one of config, play, pause, step, reset.",
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
    options = dict.fromkeys(e["msg"] for e in error.errors() if e["loc"][:2] == first["loc"][:2])
    shown = repr(first.get("input"))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return f"Invalid {where}: {', or '.join(options)}. Received: {field}={shown}", field


async def _write(websocket: WebSocket, session: Session) -> None:
    try:
        while True:
            control, frame = await session.next_outgoing()
            if control is not None:
                await websocket.send_text(control)
            else:
                await websocket.send_text(frame[0])
                await websocket.send_bytes(frame[1])
    except (WebSocketDisconnect, RuntimeError):
        # The client went away; the reader notices and closes the session.
        pass
