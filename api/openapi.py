"""The OpenAPI document, corrected where FastAPI's defaults describe something this
service never does."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

# FastAPI documents a 422 with its own error shape on every route with parameters;
# this service answers invalid input with 400 and ErrorOut instead.
_UNUSED_SCHEMAS = ("HTTPValidationError", "ValidationError")


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _without_422(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _without_422(document: dict[str, Any]) -> dict[str, Any]:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    for name in _UNUSED_SCHEMAS:
        schemas.pop(name, None)
    return document
