"""The multi-layer network lab's WebSocket (docs/protocol.md)."""

import time

from fastapi import APIRouter, WebSocket

from app.live.channel import parse_message, run_socket
from app.live.hub import Hub
from app.live.session import Session
from app.protocol import CLIENT_MESSAGE

router = APIRouter(tags=["live"])
TYPES = "config, play, pause, step, reset"


@router.websocket("/ws/mlp")
async def mlp_socket(websocket: WebSocket) -> None:
    """Multi-layer network lab: config / play / pause / step / reset in, frames out."""
    hub: Hub = websocket.app.state.hub
    await run_socket(websocket, hub.open, hub.close, lambda s, text: dispatch(hub, s, text))


def dispatch(hub: Hub, session: Session, text: str) -> None:
    """Parses one message and applies it; anything wrong becomes an `error` to this client."""
    session.last_input = time.monotonic()
    msg = parse_message(CLIENT_MESSAGE, text, session, TYPES)
    if msg is None:
        return
    if msg.type == "config":
        hub.configure(session, msg.changes())
    else:
        getattr(hub, msg.type)(session)
