"""The live labs' WebSocket endpoints."""

from fastapi import APIRouter

router = APIRouter(tags=["live"])
