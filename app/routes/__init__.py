"""HTTP and WebSocket routes: thin glue between the browser and `models/`."""

from app.routes import backprop, convolution, pages, uploads, ws

ROUTERS = (pages.router, ws.router, backprop.router, convolution.router, uploads.router)
