"""The one WebSocket route of the live labs: `/ws/{slug}` serves the session class of that lab."""

from fastapi import APIRouter, WebSocket

from app.labs import find_lab
from app.live.channel import run_socket

router = APIRouter(tags=["live"])
CLOSE_NO_SUCH_LAB = 4404  # an application close code (4000–4999), after HTTP's 404


@router.websocket("/ws/{slug}")
async def live_socket(websocket: WebSocket, slug: str) -> None:
    """A live lab's session: config / play / pause / step / reset in; state, data and frames out
    (docs/protocol.md)."""
    lab = find_lab(slug)
    if lab is None or lab.session is None:
        # Refused before accept: a browser's handshake fails (HTTP 403), a test client sees 4404.
        await websocket.close(code=CLOSE_NO_SUCH_LAB)
        return
    await run_socket(websocket, lab.session)
