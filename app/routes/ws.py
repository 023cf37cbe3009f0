"""The multi-layer network lab's WebSocket (docs/protocol.md)."""

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from app.live.channel import explain_validation_error, run_socket
from app.live.guard import BadMessage, parse_json
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
    try:
        msg = CLIENT_MESSAGE.validate_python(parse_json(text))
    except BadMessage as e:
        session.send_error(str(e))
        return
    except ValidationError as e:
        session.send_error(*explain_validation_error(e, TYPES))
        return
    if msg.type == "config":
        hub.configure(session, msg.changes())
    else:
        getattr(hub, msg.type)(session)
