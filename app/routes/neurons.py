"""The single-neuron lab's WebSocket: the same checks at the edge as `/ws/mlp`, its own sessions."""

from fastapi import APIRouter, WebSocket

from app.live.channel import parse_message, run_socket
from app.live.neurons import NeuronSession, NeuronSessions
from app.protocol_neurons import CLIENT_MESSAGE

router = APIRouter(tags=["live"])
TYPES = "config, play, pause, step, reset"


def _sessions(websocket: WebSocket) -> NeuronSessions:
    # Kept on the app (created on first use), so each app — and each test app — counts its own.
    state = websocket.app.state
    if getattr(state, "neuron_sessions", None) is None:
        state.neuron_sessions = NeuronSessions(state.settings)
    return state.neuron_sessions


@router.websocket("/ws/neurons")
async def neurons_socket(websocket: WebSocket) -> None:
    """Single-neuron lab: config / play / pause / step / reset in, frames out (docs/protocol.md)."""
    registry = _sessions(websocket)
    await run_socket(websocket, registry.open, registry.close, dispatch)


def dispatch(session: NeuronSession, text: str) -> None:
    """Parses one message and applies it; anything wrong becomes an `error` to this client."""
    msg = parse_message(CLIENT_MESSAGE, text, session, TYPES)
    if msg is None:
        return
    if msg.type == "config":
        session.configure(msg.changes())
    elif msg.type == "step":
        session.step_once()
    else:
        getattr(session, msg.type)()
