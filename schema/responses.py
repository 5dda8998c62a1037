"""JSON responses rendered with orjson (datetimes as ISO 8601 with offset).

Here, in the lowest layer that answers HTTP, because every layer above renders JSON
with it: the error bodies (schema/errors.py), the REST routes (rest_shim/) and the
health probes (api/health.py).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
