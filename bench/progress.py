"""A tiny progress bar on stderr (no dependency). Redraws at most ~10 times a second."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, width: int = 30) -> None:
        self.total = max(total, 1)
        self.label = label
        self.width = width
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0
        self._drawn = -1
        self._tty = sys.stderr.isatty()
        self._draw(force=True)

    def advance(self, n: int) -> None:
        self.done += n
        self._draw()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        # Without a terminal, print a line every few seconds instead of redrawing.
        interval = 0.1 if self._tty else 5.0
        if not force and now - self._last < interval and self.done < self.total:
            return
        self._last = now
        self._drawn = self.done
        frac = min(self.done / self.total, 1.0)
        filled = int(frac * self.width)
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        line = (
            f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"{self.done:,}/{self.total:,} {frac:6.1%} {rate:,.0f}/s "
            f"elapsed {elapsed:5.1f}s eta {eta:5.1f}s"
        )
        if self._tty:
            sys.stderr.write("\r" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> float:
        if self._drawn != self.done:
            self._draw(force=True)
        if self._tty:
            sys.stderr.write("\n")
        sys.stderr.flush()
        return time.monotonic() - self.start
