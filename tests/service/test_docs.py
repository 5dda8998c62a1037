"""The developer tools over HTTP (tests/browser drives them in a real browser): which
are on for which settings, what their pages and files are served with, GraphiQL's npm
packages checked against their pinned digests, and introspection switched off per app."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import stat
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import api.docs
from api.docs import (
    CONTENT_SECURITY_POLICY,
    GRAPHIQL_PACKAGES,
    IMMUTABLE,
    OFFLINE_PREFIX,
    OWN_PREFIX,
    AssetsError,
    NpmPackage,
    graphiql_installed,
    install_graphiql,
)
from api.settings import SettingsError, load_settings
from db.url import DatabaseURL
from tests.live.clients import GraphQLSocket
from tests.support import HS_SECRET, LiveServer, auth, hs_token, live_server, settings_for, unique_user

PRODUCTION = {
    "APP_ENV": "production",
    "BETTER_AUTH_SECRET": HS_SECRET,
    "DATABASE_URL": "postgresql://todo@127.0.0.1:5432/todo",
}
HTML = {"Accept": "text/html"}
INTROSPECTION = "{ __schema { queryType { name } } }"
# Attributes of the tools' pages that name a URL.
_URL_ATTRIBUTES = re.compile(r'\b(?:src|href|spec-url|data-openapi-url)="([^"]*)"')
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>")


# -- Settings --------------------------------------------------------------------------


@pytest.mark.parametrize("app_env", ["development", "test"])
def test_outside_production_every_tool_is_on(app_env: str) -> None:
    settings = load_settings({"APP_ENV": app_env})
    assert (settings.graphql_ide, settings.graphql_introspection, settings.api_docs) == (True, True, True)


def test_in_production_the_tools_are_off_and_introspection_on() -> None:
    settings = load_settings(PRODUCTION)
    assert (settings.graphql_ide, settings.graphql_introspection, settings.api_docs) == (False, True, False)
    on = load_settings({**PRODUCTION, "GRAPHQL_IDE": "true", "API_DOCS": "1"})
    assert (on.graphql_ide, on.api_docs) == (True, True)
    closed = load_settings({**PRODUCTION, "GRAPHQL_INTROSPECTION": "false"})
    assert (closed.graphql_ide, closed.graphql_introspection) == (False, False)


def test_each_tool_can_be_turned_off() -> None:
    settings = load_settings({"GRAPHQL_IDE": "false", "API_DOCS": "no"})
    assert (settings.graphql_ide, settings.graphql_introspection, settings.api_docs) == (False, True, False)
    # GraphiQL needs introspection: without it, it is off unless asked for...
    closed = load_settings({"GRAPHQL_INTROSPECTION": "0"})
    assert (closed.graphql_ide, closed.graphql_introspection, closed.api_docs) == (False, False, True)


def test_contradictions_and_bad_values_are_reported_together() -> None:
    # ...and asked for, it is a mistake, reported with the others.
    with pytest.raises(SettingsError) as raised:
        load_settings({"GRAPHQL_IDE": "true", "GRAPHQL_INTROSPECTION": "false", "API_DOCS": "maybe"})
    assert raised.value.problems == [
        "GRAPHQL_IDE=true needs GRAPHQL_INTROSPECTION=true (GraphiQL reads the schema by introspection)",
        "API_DOCS must be true or false (got 'maybe')",
    ]


# -- Pages and files --------------------------------------------------------------------


def _page_urls(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["x-frame-options"] == "DENY"
    assert _INLINE_SCRIPT.findall(page.text) == []
    urls = _URL_ATTRIBUTES.findall(page.text)
    assert urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url  # this origin only
    return urls


def _check_files(client: httpx.Client, urls: list[str]) -> None:
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 200, url
        if url.startswith("/static/"):
            assert answer.headers["cache-control"] == IMMUTABLE, url
            assert answer.headers["x-content-type-options"] == "nosniff"
            kind = {".js": "javascript", ".css": "text/css", ".png": "image/png"}[Path(url).suffix]
            assert kind in answer.headers["content-type"], url


def test_the_policy_allows_scripts_from_this_origin_only() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    for name, sources in directives.items():
        assert "http" not in sources and "*" not in sources, name
        assert "unsafe-eval" not in sources, name


def test_swagger_ui_and_redoc_are_served_with_their_files(server: LiveServer) -> None:
    with server.client() as client:
        docs = client.get("/docs")
        docs_urls = _page_urls(docs)
        assert f"{OFFLINE_PREFIX}/swagger-ui-bundle.js" in docs_urls
        assert f"{OWN_PREFIX}/swagger-ui.js" in docs_urls
        assert 'data-openapi-url="/openapi.json"' in docs.text
        _check_files(client, [url for url in docs_urls if url != "/openapi.json"])

        redoc = client.get("/redoc")
        redoc_urls = _page_urls(redoc)
        assert f"{OFFLINE_PREFIX}/redoc.standalone.js" in redoc_urls
        assert '<redoc spec-url="/openapi.json">' in redoc.text
        _check_files(client, redoc_urls)

        paths = client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc", "/static", "/graphql"))]


def test_static_files_are_only_what_the_prefixes_name(server: LiveServer) -> None:
    with server.client() as client:
        for url in (
            f"{OFFLINE_PREFIX}/nothing.js",
            f"{OWN_PREFIX}/../docs.py",
            f"{OWN_PREFIX}/%2e%2e/docs.py",
            "/static/fastapi-offline-0.0.1/swagger-ui.css",
            "/static/npm/react-18.3.1/../../dev-jwt-secret",
        ):
            answer = client.get(url)
            assert answer.status_code == 404, url
            assert answer.json()["code"] == "not_found"


@pytest.fixture
def fresh_data_dir(database: DatabaseURL, tmp_path: Path) -> Iterator[tuple[LiveServer, Path]]:
    """The service as in development, with an empty DATA_DIR (GraphiQL not installed)."""
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, DATA_DIR=str(tmp_path))
    with live_server(settings) as server:
        yield server, tmp_path


def test_graphiql_page_loads_its_files_from_this_service(fresh_data_dir: tuple[LiveServer, Path]) -> None:
    server, data_dir = fresh_data_dir
    with server.client() as client:
        # Not installed: a page saying what to do (GraphQL itself still answers).
        missing = client.get("/graphql", headers=HTML)
        assert missing.status_code == 503
        assert missing.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "todo-api assets" in missing.text
        answer = client.post("/graphql", json={"query": "{ __typename }"})
        assert answer.json() == {"data": {"__typename": "Query"}}

        # Installed (here by hand: the installer is tested below).
        for package in GRAPHIQL_PACKAGES:
            for file in (*package.files, "LICENSE"):
                path = data_dir / "graphiql" / package.folder / file
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"/* {package.name} {file} */")
        assert graphiql_installed(data_dir)
        page = client.get("/graphql", headers=HTML)
        urls = _page_urls(page)
        assert urls == [
            f"{OFFLINE_PREFIX}/favicon.png",
            "/static/npm/graphiql-3.8.3/graphiql.min.css",
            f"{OWN_PREFIX}/tools.css",
            "/static/npm/react-18.3.1/umd/react.production.min.js",
            "/static/npm/react-dom-18.3.1/umd/react-dom.production.min.js",
            "/static/npm/graphiql-3.8.3/graphiql.min.js",
            f"{OWN_PREFIX}/graphiql.js",
        ]
        _check_files(client, urls)
        assert (
            client.get("/static/npm/graphiql-3.8.3/graphiql.min.js").text == "/* graphiql graphiql.min.js */"
        )
        # The token header, offered in GraphiQL's Headers pane.
        script = client.get(f"{OWN_PREFIX}/graphiql.js").text
        assert 'JSON.stringify({ Authorization: "Bearer <token>" }' in script
        assert 'defaultEditorToolsVisibility: "headers"' in script


def test_production_serves_no_tools_but_introspection(database: DatabaseURL) -> None:
    with live_server(settings_for(database, **PRODUCTION)) as server, server.client() as client:
        for path in ("/docs", "/redoc", f"{OFFLINE_PREFIX}/swagger-ui.css", f"{OWN_PREFIX}/graphiql.js"):
            answer = client.get(path)
            assert (answer.status_code, answer.json()["code"]) == (404, "not_found"), path
        ide = client.get("/graphql", headers=HTML)
        assert (ide.status_code, ide.json()["code"]) == (404, "not_found")
        answer = client.post("/graphql", json={"query": INTROSPECTION})
        assert answer.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
        assert client.get("/openapi.json").status_code == 200


def test_introspection_off_is_enforced_per_app(database: DatabaseURL, server: LiveServer) -> None:
    settings = settings_for(database, BETTER_AUTH_SECRET=HS_SECRET, GRAPHQL_INTROSPECTION="false")
    token = hs_token(unique_user("introspection"))
    with live_server(settings) as closed, closed.client(token) as client:
        for query in (
            INTROSPECTION,
            '{ __type(name: "Task") { name } }',
            "{ me { id } __schema { types { name } } }",
        ):
            body = client.post("/graphql", json={"query": query}).json()
            assert "data" not in body, body
            # One error per field that reads the schema (`__schema` and `queryType` here).
            assert {error["extensions"]["code"] for error in body["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
            assert "introspection" in body["errors"][0]["message"], body
        assert client.post("/graphql", json={"query": "{ __typename }"}).json() == {
            "data": {"__typename": "Query"}
        }
        assert client.get("/graphql", headers=HTML).status_code == 404  # no GraphiQL without it
        # Over WebSocket too (queries may be sent there).
        with GraphQLSocket(closed.url) as socket:
            socket.sign_in(token)
            socket.subscribe(query=INTROSPECTION)
            refused = socket.recv()
            assert refused["type"] == "error", refused
            assert {e["extensions"]["code"] for e in refused["payload"]} == {"GRAPHQL_VALIDATION_FAILED"}
    # The other app in this process still answers it: the setting is per app.
    with server.client(token) as client:
        answer = client.post("/graphql", json={"query": INTROSPECTION}, headers=auth(token))
        assert answer.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    with GraphQLSocket(server.url) as socket:
        socket.sign_in(token)
        socket.subscribe(query=INTROSPECTION)
        answered = socket.recv()
        assert answered["type"] == "next", answered
        assert answered["payload"] == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


# -- Installing GraphiQL's files ---------------------------------------------------------


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    # mtime=0: the same files give the same bytes (and digest) in any second; "w:gz"
    # stamped the current time, so a test straddling a second boundary failed.
    return gzip.compress(buffer.getvalue(), mtime=0)


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _fake_npm(tmp_path: Path, tarball: bytes) -> Path:
    """An `npm` whose `pack` answers as npm does, with `tarball`; each call is logged."""
    source = tmp_path / "served.tgz"
    source.write_bytes(tarball)
    script = tmp_path / "npm"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, shutil, sys\n"
        f"open({str(tmp_path / 'calls')!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "destination = sys.argv[sys.argv.index('--pack-destination') + 1]\n"
        "name = sys.argv[2].replace('@', '-') + '.tgz'\n"
        f"shutil.copy({str(source)!r}, destination + '/' + name)\n"
        "print(json.dumps([{'filename': name}]))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


FILES = {"dist/tool.js": b"tool();", "LICENSE": b"MIT", "README.md": b"not served"}


@pytest.fixture
def fake_package(monkeypatch: pytest.MonkeyPatch) -> NpmPackage:
    package = NpmPackage("tool", "1.2.3", _integrity(_tarball(FILES)), ("dist/tool.js",))
    monkeypatch.setattr(api.docs, "GRAPHIQL_PACKAGES", (package,))
    return package


def test_install_extracts_the_pinned_files(tmp_path: Path, fake_package: NpmPackage) -> None:
    npm = _fake_npm(tmp_path, _tarball(FILES))
    data_dir = tmp_path / "data"
    assert install_graphiql(data_dir, npm=str(npm)) == [fake_package]
    folder = data_dir / "graphiql" / "tool-1.2.3"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "LICENSE",
        "dist/tool.js",
    ]
    assert (folder / "dist/tool.js").read_bytes() == b"tool();"
    assert [p.name for p in (data_dir / "graphiql").iterdir()] == ["tool-1.2.3"]  # no leftovers
    # Installed: npm is not asked again.
    assert install_graphiql(data_dir, npm=str(npm)) == []
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith("pack tool@1.2.3 --pack-destination ")


def test_install_refuses_a_package_that_is_not_the_pinned_one(
    tmp_path: Path, fake_package: NpmPackage
) -> None:
    npm = _fake_npm(tmp_path, _tarball({**FILES, "dist/tool.js": b"evil();"}))
    data_dir = tmp_path / "data"
    with pytest.raises(AssetsError, match=r"tool@1\.2\.3 from npm is not the pinned one"):
        install_graphiql(data_dir, npm=str(npm))
    assert list((data_dir / "graphiql").iterdir()) == []


def test_install_without_npm_says_what_to_do(
    tmp_path: Path, fake_package: NpmPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AssetsError, match=r"install Node\.js \(with npm\), then run `todo-api assets`"):
        install_graphiql(tmp_path / "data")


def test_the_pins_are_npm_digests() -> None:
    for package in GRAPHIQL_PACKAGES:
        assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", package.integrity), package
        assert package.files
    assert json.dumps([p.folder for p in GRAPHIQL_PACKAGES]) == json.dumps(
        ["react-18.3.1", "react-dom-18.3.1", "graphiql-3.8.3"]
    )
