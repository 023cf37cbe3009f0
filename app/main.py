"""The FastAPI application factory."""

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from app import metrics
from app.image_store import ImageStore
from app.labs import all_labs
from app.live.runtime import LiveRuntime
from app.request_limits import validation_error_handler
from app.routes import ROUTERS
from app.routes.pages import StaticAssets
from app.security_headers import SecurityHeaders
from app.settings import Settings, get_settings
from app.shutdown import OpenSockets, TrackSockets


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    live = LiveRuntime(settings)  # every live session; its lifespan owns the thread pools

    # /docs and /redoc from files the fastapi-offline package ships: no CDN, works offline.
    app = FastAPIOffline(
        title="TensorFlow Playground for the classroom",
        summary="Live TensorFlow training for the course 'Machine Learning with TensorFlow'.",
        version="0.1.0",
        lifespan=live.lifespan,
    )
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.state.settings = settings
    app.state.live = live
    app.state.image_store = ImageStore()
    app.state.templates = Jinja2Templates(directory=settings.templates_dir)
    app.state.sockets = OpenSockets()  # closed with 1001 when the server stops (app/shutdown.py)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    # Pages, scripts and JSON answers go out gzipped (plotly.js comes pre-compressed); sockets not.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(TrackSockets, sockets=app.state.sockets)
    app.add_middleware(metrics.HTTPMetrics)  # outermost: it times the whole answer
    app.mount("/static", StaticAssets(directory=settings.static_dir), name="static")
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(metrics.router)
    for lab in all_labs():
        if lab.router is not None:
            app.include_router(lab.router)
        if lab.traces is not None:
            metrics.count_traces(lab.slug, lab.traces)
    return app
