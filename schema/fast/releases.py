"""The library releases the fast paths were written and tested against.

Each shortcut (schema/fast/__init__.py lists them) reads or replaces something its
library does not promise to keep. pyproject.toml admits newer releases, so that an
upgrade can be installed and tried; with a release outside these ranges installed, the
app factory serves the stock paths and logs which release is untested, instead of
running a shortcut that may no longer match its library. To adopt a new release: run
the suite (it runs the behaviour tests on both paths), fix what breaks, widen the range.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

# distribution -> (lowest tested, first untested)
TESTED: dict[str, tuple[str, str]] = {
    "strawberry-graphql": ("0.341", "0.342"),
    "graphql-core": ("3.3.2", "3.4"),
    "fastapi": ("0.137", "0.166"),
    "starlette": ("1.0", "1.11"),
}


def _release(text: str) -> tuple[int, ...]:
    """'0.341.2' -> (0, 341, 2); a pre-release counts as its release ('3.4.0a1' -> 3.4.0)."""
    return tuple(int(m.group()) if (m := re.match(r"\d+", part)) else 0 for part in text.split("."))


def untested_releases() -> list[str]:
    """The installed libraries outside their tested range, e.g. 'graphql-core 3.4.0
    (tested >=3.3.2,<3.4)'; empty when every shortcut may run."""
    found = []
    for name, (lowest, first_untested) in TESTED.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            found.append(f"{name} not installed")
            continue
        if not _release(lowest) <= _release(installed) < _release(first_untested):
            found.append(f"{name} {installed} (tested >={lowest},<{first_untested})")
    return found
