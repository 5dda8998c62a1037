"""Entry point for ASGI servers: `uvicorn api.main:app_factory --factory`."""

from fastapi import FastAPI

from api.app import create_app
from api.settings import Settings


def app_factory(settings: Settings | None = None) -> FastAPI:
    return create_app(settings)
