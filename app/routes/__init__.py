"""HTTP and WebSocket routes: thin glue between the browser and `models/`."""

from app.routes import backprop, convolution, descent, neurons, pages, uploads, ws

ROUTERS = (
    pages.router,
    ws.router,
    backprop.router,
    convolution.router,
    descent.router,
    neurons.router,
    uploads.router,
)
