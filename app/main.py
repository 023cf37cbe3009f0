"""The FastAPI application factory."""

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.trustedhost import TrustedHostMiddleware

from app.image_store import ImageStore
from app.live.hub import Hub
from app.request_limits import validation_error_handler
from app.routes import ROUTERS
from app.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    hub = Hub(settings)

    app = FastAPI(
        title="TensorFlow Playground for the classroom",
        summary="Live TensorFlow training for the course 'Machine Learning with TensorFlow'.",
        version="0.1.0",
        lifespan=hub.lifespan,
    )
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.state.settings = settings
    app.state.hub = hub
    app.state.image_store = ImageStore()
    app.state.templates = Jinja2Templates(directory=settings.templates_dir)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    app.mount("/static", StaticFiles(directory=settings.static_dir), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app
