"""The developer tools, served by the service itself: GraphiQL at /graphql (in a browser),
Swagger UI at /docs and ReDoc at /redoc. Nothing is loaded from anywhere else, and
each page says so to the browser with a Content-Security-Policy that allows scripts,
styles, fonts and connections from this origin only.

Where the files come from:

- Swagger UI and ReDoc: the `fastapi-offline` package (a normal, pinned dependency),
  from its static folder.
- GraphiQL: no maintained Python package ships it, so its npm packages (`graphiql`,
  `react`, `react-dom`, at the versions and sha512 digests pinned in GRAPHIQL_PACKAGES)
  are fetched by `npm pack` into `{DATA_DIR}/graphiql/` by `todo-api assets`, or by
  `todo-api serve` when GRAPHQL_IDE is on and they are missing. Each tarball is checked
  against its pinned digest before anything is extracted from it.
- The few lines that start each tool: api/static/, this project's own code.

Every asset URL names a version (or, for api/static, a digest of its files), so all of
them are served with a one-year `immutable` Cache-Control.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import version
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import fastapi_offline
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from api.mount import ScopedMount, ScopedRoute

if TYPE_CHECKING:
    from fastapi import FastAPI

    from api.settings import Settings

log = logging.getLogger("api")

STATIC_PREFIX = "/static"
# One year; the URLs change whenever the files do.
IMMUTABLE = "public, max-age=31536000, immutable"

# Scripts only from this origin, and no inline script anywhere (the tools are started
# by api/static/*.js). Inline styles are allowed: ReDoc (styled-components) and Swagger
# UI insert <style> elements at run time; styles cannot run code.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        # 'self' covers ws:/wss: to this host (subscriptions in GraphiQL).
        "connect-src 'self'",
        # ReDoc's search index runs in a worker it makes from a blob.
        "worker-src 'self' blob:",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


# -- Static files ----------------------------------------------------------------------


class ImmutableStaticFiles(StaticFiles):
    """Starlette's StaticFiles, for URLs that change whenever their files do."""

    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = IMMUTABLE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


OWN_STATIC_DIR = Path(__file__).parent / "static"
OFFLINE_STATIC_DIR = Path(fastapi_offline.__file__).parent / "static"


def _digest(directory: Path) -> str:
    hasher = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        if path.is_file():
            hasher.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return hasher.hexdigest()[:12]


# URL prefixes, each naming what it serves: /static/<name>-<version or digest>/...
OWN_PREFIX = f"{STATIC_PREFIX}/todo-api-{_digest(OWN_STATIC_DIR)}"
OFFLINE_PREFIX = f"{STATIC_PREFIX}/fastapi-offline-{version('fastapi-offline')}"
NPM_PREFIX = f"{STATIC_PREFIX}/npm"  # its folders are <package>-<version>


# -- GraphiQL's npm packages ------------------------------------------------------------


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    # The registry's digest of the tarball (`npm view NAME@VERSION dist.integrity`).
    integrity: str
    # The files served, as paths inside the package (its LICENSE is kept too).
    files: tuple[str, ...]

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.version}"

    def url(self, file: str) -> str:
        return f"{NPM_PREFIX}/{self.folder}/{file}"


# graphiql 3.8.3 is the version Strawberry 0.341's own page loads from a CDN; the 3.x
# line is the last with a browser (UMD) bundle that needs no build step, and it works
# with React 18, the last React with UMD builds. To move to another version, change
# the version and the integrity (from `npm view graphiql@X dist.integrity`) here.
REACT = NpmPackage(
    "react",
    "18.3.1",
    "sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ==",
    ("umd/react.production.min.js",),
)
REACT_DOM = NpmPackage(
    "react-dom",
    "18.3.1",
    "sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw==",
    ("umd/react-dom.production.min.js",),
)
GRAPHIQL = NpmPackage(
    "graphiql",
    "3.8.3",
    "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
    ("graphiql.min.js", "graphiql.min.css"),
)
GRAPHIQL_PACKAGES = (REACT, REACT_DOM, GRAPHIQL)
_LICENSE = "LICENSE"
_NPM_TIMEOUT_SECONDS = 180
_NPM_ENV = {
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
    "NO_COLOR": "1",
}


class AssetsError(Exception):
    """GraphiQL's files could not be installed: one line saying why and what to do."""


def graphiql_dir(data_dir: Path) -> Path:
    return data_dir / "graphiql"


def graphiql_installed(data_dir: Path) -> bool:
    root = graphiql_dir(data_dir)
    return all(_complete(root / package.folder, package) for package in GRAPHIQL_PACKAGES)


def _complete(folder: Path, package: NpmPackage) -> bool:
    return all((folder / file).is_file() for file in (*package.files, _LICENSE))


def install_graphiql(data_dir: Path, *, npm: str | None = None) -> list[NpmPackage]:
    """Fetch the pinned npm packages that are missing with `npm pack` (from npm's cache
    when it has them), check each against its pinned digest and extract the files
    served. Returns the packages installed (none when all were there already)."""
    root = graphiql_dir(data_dir).absolute()
    missing = [package for package in GRAPHIQL_PACKAGES if not _complete(root / package.folder, package)]
    if not missing:
        return []
    npm = npm or shutil.which("npm")
    if npm is None:
        raise AssetsError(
            "GraphiQL's files are fetched with npm, which is not installed: install Node.js"
            " (with npm), then run `todo-api assets`."
        )
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=root) as download:
        for package in missing:
            tarball = _npm_pack(npm, package, Path(download))
            _extract(tarball, package, root)
    return missing


def _npm_pack(npm: str, package: NpmPackage, destination: Path) -> Path:
    spec = f"{package.name}@{package.version}"
    command = [npm, "pack", spec, "--pack-destination", str(destination), "--json", "--prefer-offline"]
    try:
        done = subprocess.run(
            command,
            cwd=destination,
            env={**os.environ, **_NPM_ENV},
            capture_output=True,
            text=True,
            timeout=_NPM_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise AssetsError(f"`npm pack {spec}` failed: {error}") from None
    if done.returncode != 0:
        # npm's first error line says what went wrong; its last, where its log is.
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        reason = next(iter(lines), f"exit status {done.returncode}")
        raise AssetsError(f"`npm pack {spec}` failed ({reason}); is the npm registry reachable?")
    try:
        filename = json.loads(done.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError):
        raise AssetsError(f"`npm pack {spec}` said something unexpected: {done.stdout[:200]!r}") from None
    tarball = destination / Path(filename).name
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != package.integrity:
        raise AssetsError(
            f"{spec} from npm is not the pinned one: its digest is {digest}, expected"
            f" {package.integrity}. Nothing was installed from it."
        )
    return tarball


def _extract(tarball: Path, package: NpmPackage, root: Path) -> None:
    """The package's served files and LICENSE, into root/<name>-<version> at once (a
    folder being written is never seen by the service)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{package.folder}-", dir=root))
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for file in (*package.files, _LICENSE):
                member = archive.getmember(f"package/{file}")  # an exact name: nothing else is read
                source = archive.extractfile(member) if member.isfile() else None
                if source is None:
                    raise AssetsError(f"{package.folder}: {file} is not a file in the npm package")
                target = staging / file
                target.parent.mkdir(parents=True, exist_ok=True)
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
        final = root / package.folder
        if final.exists():  # left incomplete by an interrupted run
            shutil.rmtree(final)
        try:
            staging.rename(final)
        except OSError:
            if not _complete(final, package):  # unless another process just installed it
                raise
    except KeyError as error:
        raise AssetsError(f"{package.folder}: the npm package has no {error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ensure_graphiql(data_dir: Path) -> bool:
    """At `todo-api serve` with GRAPHQL_IDE on: install GraphiQL's files if missing.
    A failure is a warning (the rest of the service does not need them)."""
    if graphiql_installed(data_dir):
        return True
    log.debug("Installing GraphiQL's files into %s (npm pack, once)", graphiql_dir(data_dir))
    try:
        install_graphiql(data_dir)
    except (AssetsError, OSError) as error:
        log.warning("GraphiQL is not available: %s", error)
        return False
    return True


def assets_command(data_dir: Path) -> int:
    """`todo-api assets`: install GraphiQL's files; the exit status."""
    try:
        installed = install_graphiql(data_dir)
    except (AssetsError, OSError) as error:
        print(error, file=sys.stderr)
        return 1
    names = ", ".join(f"{package.name} {package.version}" for package in GRAPHIQL_PACKAGES)
    verb = "Installed" if installed else "Already installed:"
    print(f"{verb} {names} in {graphiql_dir(data_dir)}")
    return 0


# -- Pages -----------------------------------------------------------------------------


def tool_page(body: str, *, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers=_PAGE_HEADERS)


def _page(title: str, head: Iterable[str], body: Iterable[str]) -> str:
    return "\n".join(
        (
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="robots" content="noindex">',
            f"<title>{html.escape(title)}</title>",
            *head,
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        )
    )


def _stylesheet(url: str) -> str:
    return f'<link rel="stylesheet" href="{html.escape(url)}">'


def _script(url: str) -> str:
    return f'<script src="{html.escape(url)}"></script>'


def _root(request: Request) -> str:
    root_path: str = request.scope.get("root_path", "")
    return root_path.rstrip("/")


def graphiql_page(request: Request) -> HTMLResponse:
    """GraphiQL, or (503) what to do when its files are not installed."""
    settings: Settings = request.app.state.settings
    root = _root(request)
    favicon = f'<link rel="icon" href="{html.escape(root + OFFLINE_PREFIX)}/favicon.png">'
    own_css = _stylesheet(f"{root}{OWN_PREFIX}/tools.css")
    if not graphiql_installed(settings.data_dir):
        return tool_page(
            _page(
                "GraphiQL is not installed",
                (favicon, own_css),
                (
                    '<main class="assets-missing">',
                    "<h1>GraphiQL is not installed here</h1>",
                    "<p>Its files are fetched once, with npm, into"
                    f" <code>{html.escape(str(graphiql_dir(settings.data_dir)))}</code>:"
                    " run <code>todo-api assets</code> on this machine, then reload.</p>",
                    "<p>GraphQL itself works without it: POST to this URL.</p>",
                    "</main>",
                ),
            ),
            status_code=503,
        )
    return tool_page(
        _page(
            f"{request.app.title} - GraphiQL",
            (favicon, _stylesheet(root + GRAPHIQL.url("graphiql.min.css")), own_css),
            (
                '<div id="graphiql">Loading…</div>',
                _script(root + REACT.url("umd/react.production.min.js")),
                _script(root + REACT_DOM.url("umd/react-dom.production.min.js")),
                _script(root + GRAPHIQL.url("graphiql.min.js")),
                _script(f"{root}{OWN_PREFIX}/graphiql.js"),
            ),
        )
    )


async def swagger_ui_page(request: Request) -> HTMLResponse:
    app = request.app
    root = _root(request)
    return tool_page(
        _page(
            f"{app.title} - Swagger UI",
            (
                f'<link rel="icon" href="{html.escape(root + OFFLINE_PREFIX)}/favicon.png">',
                _stylesheet(f"{root}{OFFLINE_PREFIX}/swagger-ui.css"),
                _stylesheet(f"{root}{OWN_PREFIX}/tools.css"),
            ),
            (
                f'<div id="swagger-ui" data-openapi-url="{html.escape(root + app.openapi_url)}"></div>',
                _script(f"{root}{OFFLINE_PREFIX}/swagger-ui-bundle.js"),
                _script(f"{root}{OWN_PREFIX}/swagger-ui.js"),
            ),
        )
    )


async def redoc_page(request: Request) -> HTMLResponse:
    app = request.app
    root = _root(request)
    return tool_page(
        _page(
            f"{app.title} - ReDoc",
            (
                f'<link rel="icon" href="{html.escape(root + OFFLINE_PREFIX)}/favicon.png">',
                _stylesheet(f"{root}{OWN_PREFIX}/tools.css"),
            ),
            (
                f'<redoc spec-url="{html.escape(root + app.openapi_url)}"></redoc>',
                _script(f"{root}{OFFLINE_PREFIX}/redoc.standalone.js"),
            ),
        )
    )


def install_docs(app: FastAPI, settings: Settings) -> None:
    """The /docs and /redoc pages (API_DOCS) and the static files of the tools that are
    on. GraphiQL's page itself is answered by the GraphQL view (api/graphql.py). Create
    the app with docs_url=None and redoc_url=None: these replace FastAPI's CDN pages."""
    routes = app.router.routes
    if settings.api_docs:
        routes.append(ScopedRoute("/docs", swagger_ui_page, methods=["GET"], include_in_schema=False))
        routes.append(ScopedRoute("/redoc", redoc_page, methods=["GET"], include_in_schema=False))
    if settings.api_docs or settings.graphql_ide:
        # The favicon is fastapi-offline's, on GraphiQL's page too.
        routes.append(ScopedMount(OFFLINE_PREFIX, ImmutableStaticFiles(directory=OFFLINE_STATIC_DIR)))
        routes.append(ScopedMount(OWN_PREFIX, ImmutableStaticFiles(directory=OWN_STATIC_DIR)))
    if settings.graphql_ide:
        npm_files = ImmutableStaticFiles(directory=graphiql_dir(settings.data_dir), check_dir=False)
        routes.append(ScopedMount(NPM_PREFIX, npm_files))
