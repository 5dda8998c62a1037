"""A TypeScript frontend gets types from /openapi.json and schema.graphql (README: "Typed clients").

The real tools run here, from npm: openapi-typescript reads the live service's /openapi.json,
graphql-codegen (typescript + typescript-operations) reads schema.graphql and the operations
in operations.graphql, then ``tsc --noEmit`` checks src/client.ts, which uses both. Any error
in generation, or a change to the API that breaks the sample client, fails the test.

The npm packages (exact pins in package.json, no lockfile) are installed into the gitignored
tests/typed_clients/node_modules and reused while the installed versions match the pins.
Without node/npm, or when ``npm install`` fails, the tests are skipped locally; with ``CI``
set (to anything but 0/false/no) or ``REQUIRE_INTEROP=1`` that is a failure, as for the
Better Auth interop suite.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import node
from tests.interop.conftest import interop_required
from tests.support import LiveServer

PROJECT = Path(__file__).resolve().parent
NODE_MODULES = PROJECT / "node_modules"
BIN = NODE_MODULES / ".bin"
ROOT = PROJECT.parent.parent
SCHEMA = ROOT / "schema.graphql"
# What the test copies into its own directory (the generated files are written there).
SKELETON = ("package.json", "tsconfig.json", "codegen.ts", "operations.graphql", "src/client.ts")

_TOOL_ENV = {"NO_COLOR": "1", "FORCE_COLOR": "0", "npm_config_update_notifier": "false"}


class SetupError(RuntimeError):
    """node/npm are missing, or the npm packages could not be installed."""


def node_missing() -> str | None:
    """Why node/npm cannot be used here, or ``None``."""
    return node.node_missing(20, "generating the TypeScript types")


def pinned_versions() -> dict[str, str]:
    manifest = json.loads((PROJECT / "package.json").read_text())
    return dict(manifest["devDependencies"])


def installed_version(package: str) -> str | None:
    path = NODE_MODULES / package / "package.json"
    if not path.is_file():
        return None
    version = json.loads(path.read_text()).get("version")
    return version if isinstance(version, str) else None


def modules_installed() -> bool:
    """Every package of package.json is installed at its pinned version (a node_modules
    left from earlier pins is reinstalled, not silently reused)."""
    return all(installed_version(name) == pin for name, pin in pinned_versions().items())


def ensure_node_modules() -> None:
    """``npm install`` (no lockfile) unless the pinned versions are already installed."""
    reason = node.npm_install(PROJECT, modules_installed, timeout=240, env={**os.environ, **_TOOL_ENV})
    if reason is not None:
        found = {name: installed_version(name) for name in pinned_versions()}
        raise SetupError(f"{reason}\ninstalled: {found}")


@pytest.fixture(scope="session")
def typescript_tools() -> Path:
    """node_modules/.bin with openapi-typescript, graphql-codegen and tsc, installed if needed.

    Session-scoped so that it runs (and skips) before the session-scoped ``server``."""
    reason = node_missing()
    if reason is None:
        try:
            ensure_node_modules()
        except SetupError as error:
            reason = f"installing the TypeScript tooling failed: {error}"
    if reason is not None:
        if interop_required():
            pytest.fail(
                f"typed-client tests are required here (CI / REQUIRE_INTEROP=1) but cannot run: {reason}",
                pytrace=False,
            )
        pytest.skip(f"typed-client tests skipped: {reason} (set REQUIRE_INTEROP=1 to fail instead)")
    return BIN


def copy_skeleton(directory: Path) -> Path:
    """The skeleton in ``directory``, sharing the installed node_modules."""
    for name in SKELETON:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROJECT / name, target)
    (directory / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    return directory


def run_tool(bin_dir: Path, tool: str, *args: str, cwd: Path, **env: str) -> None:
    """Run a tool from node_modules/.bin; any non-zero exit fails the test with its output."""
    command = [str(bin_dir / tool), *args]
    shown = " ".join([tool, *args])
    try:
        proc = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, **_TOOL_ENV, **env},
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`{shown}` timed out after {exc.timeout} s", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(
            f"`{shown}` failed (exit {proc.returncode})\n"
            f"--- stdout ---\n{proc.stdout[-8000:]}\n--- stderr ---\n{proc.stderr[-8000:]}",
            pytrace=False,
        )


def generate_graphql(bin_dir: Path, frontend: Path, schema: str) -> str:
    """graphql-codegen with the skeleton's codegen.ts; returns the operations' types (graphql.ts)."""
    run_tool(bin_dir, "graphql-codegen", "--config", "codegen.ts", cwd=frontend, GRAPHQL_SCHEMA=schema)
    return (frontend / "src" / "generated" / "graphql.ts").read_text()


@pytest.fixture(scope="module")
def frontend(typescript_tools: Path, server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the skeleton with its types generated: src/generated/api.d.ts from the live
    /openapi.json (the README's command), schema.ts and graphql.ts from schema.graphql."""
    frontend = copy_skeleton(tmp_path_factory.mktemp("frontend"))
    generated = frontend / "src" / "generated"
    run_tool(
        typescript_tools,
        "openapi-typescript",
        f"{server.url}/openapi.json",
        "--default-non-nullable",
        "false",
        "-o",
        "src/generated/api.d.ts",
        cwd=frontend,
    )
    api = (generated / "api.d.ts").read_text()
    assert '"/api/tasks": {' in api and '"/api/tasks/{task_id}": {' in api, api[:2000]
    assert "TaskOut: {" in api, api[:2000]

    operations = generate_graphql(typescript_tools, frontend, str(SCHEMA))
    assert "export type TasksQuery = " in operations and "export type CreateTaskMutation = " in operations
    assert "export type Task = {" in (generated / "schema.ts").read_text()
    return frontend


def test_generated_types_type_check(typescript_tools: Path, frontend: Path) -> None:
    """tsc accepts src/client.ts, which uses the REST and the GraphQL types."""
    run_tool(typescript_tools, "tsc", "--noEmit", "-p", "tsconfig.json", cwd=frontend)


def test_graphql_introspection_gives_the_same_types(
    typescript_tools: Path, server: LiveServer, frontend: Path, tmp_path: Path
) -> None:
    """The README's other source for graphql-codegen, the running service's /graphql, gives the
    same operation types (schema.ts may differ in comments: introspection drops some)."""
    from_service = generate_graphql(typescript_tools, copy_skeleton(tmp_path), f"{server.url}/graphql")
    from_file = (frontend / "src" / "generated" / "graphql.ts").read_text()
    assert from_service == from_file, (
        "types from /graphql introspection differ from those from schema.graphql: "
        "run `uv run todo-api schema > schema.graphql`"
    )


def _operations(text: str) -> list[str]:
    """Each `query`/`mutation` in a GraphQL text, whitespace-normalised, comments dropped."""
    text = re.sub(r"#[^\n]*", "", text)
    chunks = re.split(r"(?=\b(?:query|mutation)\s+[A-Z]\w*\s*[({])", text)
    return [" ".join(chunk.split()) for chunk in chunks if re.match(r"(?:query|mutation)\s", chunk)]


def test_client_sends_the_generated_operations() -> None:
    """client.ts sends the very documents its types were generated from (operations.graphql)."""
    documents = _operations((PROJECT / "operations.graphql").read_text())
    assert [d.split("(", 1)[0] for d in documents] == ["query Tasks", "mutation CreateTask"]
    client = (PROJECT / "src" / "client.ts").read_text()
    sent = [_operations(literal)[0] for literal in re.findall(r"= `((?:query|mutation) [^`]*)`;", client)]
    assert sent == documents
