"""Node.js and npm for the suites that drive npm packages (Better Auth interop, the
GraphQL-over-HTTP audit, typed clients): one check that node is usable, and one
`npm install` (never a lockfile) serialised across threads and processes."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

NPM_INSTALL = ["npm", "install", "--no-audit", "--no-fund", "--no-package-lock"]
_thread_lock = threading.Lock()


def node_missing(min_major: int, purpose: str) -> str | None:
    """Why node/npm cannot be used for `purpose`, or None."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH (needed for {purpose})"
    try:
        version = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=15, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`node --version` failed: {exc}"
    try:
        major = int(version.lstrip("v").split(".", 1)[0])
    except ValueError:
        return f"could not parse node version {version!r}"
    if major < min_major:
        return f"node {version} is too old for {purpose} (need >= {min_major})"
    return None


@contextlib.contextmanager
def _install_lock(directory: Path) -> Iterator[None]:
    """One install at a time, in this process and across processes (two pytest runs)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        with _thread_lock:
            yield
        return
    path = Path(tempfile.gettempdir()) / f"todo-api-npm-{directory.name}.lock"
    with _thread_lock, path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def npm_install(
    directory: Path,
    installed: Callable[[], bool],
    *,
    timeout: float = 600,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """`npm install` in `directory` unless `installed()` already holds; why it failed, or
    None once `installed()` holds."""
    command = " ".join(NPM_INSTALL)
    # Checked under the lock only: while another process's install runs, the packages are
    # already unpacked (installed() holds) before their node_modules/.bin links exist.
    with _install_lock(directory):
        if installed():
            return None
        try:
            proc = subprocess.run(
                NPM_INSTALL,
                cwd=directory,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env=None if env is None else dict(env),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{command}` in {directory} failed: {exc}"
        if proc.returncode != 0 or not installed():
            return (
                f"`{command}` in {directory} failed (exit {proc.returncode}).\n--- stdout ---\n"
                f"{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
            )
    return None
