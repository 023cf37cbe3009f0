"""Registry of live sessions: the cap, and the trainer that steps them all."""

from contextlib import asynccontextmanager

from app.settings import Settings


class Hub:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.sessions: set = set()

    @asynccontextmanager
    async def lifespan(self, app):
        yield
