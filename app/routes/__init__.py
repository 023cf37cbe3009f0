"""HTTP and WebSocket routes: thin glue between the browser and `models/`."""

from app.routes import pages, ws

ROUTERS = (pages.router, ws.router)
