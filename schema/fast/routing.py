"""Route matching without the regex where the path cannot match (shortcut 10 in
schema/fast/__init__.py).

Starlette's router tries the routes in order, and each try (FastAPI's APIRoute.matches)
runs the route's regex and FastAPI's scope bookkeeping: ~15k instructions a try, and
GET /api/tasks/{id} is the sixth route, PATCH .../complete the ninth, /graphql the
tenth. Every path a route's regex can match starts with the text before its first
parameter, ends with the text after its last and has as many slashes as its template,
when no parameter can hold a slash (Starlette's str, int, float and uuid convertors;
`path` can). PathPrefilter checks those three things first and answers Match.NONE
when one fails, which is what the regex would answer; otherwise the route matches as
it always does. Nothing else changes: the order of the routes, partial matches (405),
`scope["route"]`, redirects.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from fastapi.routing import APIRoute
from starlette.convertors import FloatConvertor, IntegerConvertor, StringConvertor, UUIDConvertor
from starlette.routing import Match
from starlette.types import Scope

# Starlette's parameter syntax (starlette.routing.PARAM_REGEX).
_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(:[a-zA-Z_][a-zA-Z0-9_]*)?}")
_SLASH_FREE = (StringConvertor, IntegerConvertor, FloatConvertor, UUIDConvertor)

Shape = tuple[str, str, int]  # literal prefix, literal suffix, slashes


def path_shape(path: str, convertors: dict[str, Any]) -> Shape | None:
    """What every path matching the template `path` has in common, or None when a
    parameter may hold a slash (a `path` or unknown convertor)."""
    if any(type(convertor) not in _SLASH_FREE for convertor in convertors.values()):
        return None
    params = list(_PARAM.finditer(path))
    if not params:
        return path, path, path.count("/")
    literal = _PARAM.sub("", path)
    return path[: params[0].start()], path[params[-1].end() :], literal.count("/")


def may_match(shape: Shape, path: str) -> bool:
    prefix, suffix, slashes = shape
    # The regex ends in `$`, which also matches before a final newline.
    return (
        path.startswith(prefix)
        and (path.endswith(suffix) or path.endswith(suffix + "\n"))
        and path.count("/") == slashes
    )


class PathPrefilter(APIRoute):
    """An APIRoute that skips its regex when the path cannot match. Only for routes on
    the app's own router (api.mount.include_flat puts them there), whose template is the
    whole path: under FastAPI's include_router a route is matched against its prefixed
    path, which this does not know. A request under a root_path is matched as usual."""

    def __init__(self, path: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(path, *args, **kwargs)
        self._shape = path_shape(self.path, self.param_convertors)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        shape = self._shape
        if shape is not None and not scope.get("root_path") and not may_match(shape, scope["path"]):
            return Match.NONE, {}
        return super().matches(scope)


@functools.cache
def prefiltered(route_class: type[APIRoute]) -> type[APIRoute]:
    """`route_class` with PathPrefilter's matching (one class per route class)."""
    if issubclass(route_class, PathPrefilter):
        return route_class
    return type(f"Prefiltered{route_class.__name__}", (PathPrefilter, route_class), {})
