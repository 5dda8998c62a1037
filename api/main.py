"""Entry point for ASGI servers: `uvicorn api.main:app_factory --factory`."""

from fastapi import FastAPI

from api.app import create_app


def app_factory() -> FastAPI:
    return create_app()
