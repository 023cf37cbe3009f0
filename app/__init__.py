"""The web layer: FastAPI routes, the live WebSocket sessions and the `playground` command."""
