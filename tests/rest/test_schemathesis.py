"""Schemathesis 4 against the live service, over real HTTP, from its own /openapi.json.

The run is the `st run` CLI (in a subprocess, against the `server` fixture's port) with
every check (`--checks all`: not_a_server_error, status_code_conformance,
content_type_conformance, response_headers_conformance, response_schema_conformance,
negative_data_rejection, positive_data_acceptance, missing_required_header,
unsupported_method, allow_header_conformance, use_after_free,
ensure_resource_availability, ignored_auth, object_level_authorization) and every phase:
examples, coverage (boundary and near-boundary values of each documented constraint),
fuzzing, and stateful sequences that follow the document's links (create a task, then
read, change, complete, delete it; delete, then expect 404). Both path forms are
operations of the document, so both are tested; `{user_id}` is the caller's id in
positive cases, and anything else (negative cases) must be refused.

Bounded: TODO_API_FUZZ_EXAMPLES cases per operation and phase (default 20), one worker,
a fixed seed (TODO_API_FUZZ_SEED; `random` for a new one each run), about a minute here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis

from tests.support import LiveServer, hs_token, unique_user

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("TODO_API_FUZZ_EXAMPLES", "20"))
SEED = os.environ.get("TODO_API_FUZZ_SEED", "20261129")
RUN_TIMEOUT_SECONDS = 600

# The Schemathesis process imports this module as its hooks module (`hooks` in its
# configuration) with the caller's id in this variable; pytest itself never sets it.
_CALLER_ENV = "TODO_API_SCHEMATHESIS_CALLER"
_CALLER = os.environ.get(_CALLER_ENV)

if _CALLER is not None:

    @schemathesis.hook
    def before_load_schema(context: schemathesis.HookContext, raw_schema: dict[str, Any]) -> None:
        """`{user_id}` is documented as "the caller's own id"; for the one caller of this
        run that is a single value. Said as JSON Schema (`const`), positive cases use it
        and negative ones are other ids, which must get 403."""
        for item in raw_schema["paths"].values():
            for operation in item.values():
                for parameter in operation.get("parameters", ()):
                    if parameter["in"] == "path" and parameter["name"] == "user_id":
                        parameter["schema"] = {"type": "string", "const": _CALLER}
                # Two pairs of spellings that must agree, which OpenAPI cannot state: `page`
                # and `offset` (both given is a 400), and `sort=field:dir` with an `order`
                # that contradicts it (a 400). Schemathesis would call such pairs wrongly
                # rejected, so it sees only `offset` and plain sort fields; the other
                # spellings are tested in tests/service/test_hostile_input.py.
                parameters = operation.get("parameters", ())
                operation["parameters"] = [p for p in parameters if (p["in"], p["name"]) != ("query", "page")]
                for parameter in operation["parameters"]:
                    if (parameter["in"], parameter["name"]) == ("query", "sort"):
                        enum = parameter["schema"]["enum"]
                        parameter["schema"]["enum"] = [v for v in enum if ":" not in v]


def _configuration(examples: int) -> str:
    lines = [
        'hooks = "tests.rest.test_schemathesis"',
        # One worker: with two, Hypothesis (describing a strategy's lambdas) parses
        # source in both threads at once, which CPython 3.11's parser does not survive
        # ("SystemError: AST constructor recursion depth mismatch": a Schemathesis error).
        "workers = 1",
        "continue-on-failure = true",
        # Hypothesis' checks on how fast data is generated say nothing about the API, and
        # would fail a run on a busy machine.
        'suppress-health-check = ["too_slow", "filter_too_much", "data_too_large"]',
        "[generation]",
        f"max-examples = {examples}",
        'database = "none"',
        # Coverage cases seeded from earlier responses are off: from those templates,
        # Schemathesis 4.32 labels create bodies that merely leave out the optional
        # `completed` or `priority` "Missing required property" and reports their 201 as
        # "schema-violating request accepted" (the document requires only `title`).
        # Fuzzing and stateful sequences still reuse captured values.
        "[phases.coverage.extra-data-sources]",
        "responses = false",
        # Stateful sequences follow the document's links only. Inferred links also join the
        # two path forms (the same tasks under /api/tasks/{id} and /api/{user_id}/tasks/{id}),
        # and Schemathesis tracks deletions per path template: a task deleted through one
        # form and then read through the other (a correct 404) is reported as "created
        # resource not found" (ensure_resource_availability).
        "[phases.stateful.inference]",
        "algorithms = []",
    ]
    return "\n".join(lines) + "\n"


def test_schemathesis_finds_nothing(server: LiveServer, tmp_path: Path) -> None:
    caller = unique_user("schemathesis")
    token = hs_token(caller, ttl=3600)
    config = tmp_path / "schemathesis.toml"
    config.write_text(_configuration(EXAMPLES))
    reports = tmp_path / "reports"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{server.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--report",
        "json,ndjson",
        "--report-dir",
        str(reports),
        "--request-timeout",
        "30",
    ]
    if SEED != "random":
        command += ["--seed", str(int(SEED))]
    env = {**os.environ, _CALLER_ENV: caller, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        command,
        cwd=tmp_path,  # Schemathesis' caches and crash files stay out of the repository
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    output = run.stdout + run.stderr
    report = json.loads(next(reports.glob("json-*.json")).read_text())
    statuses, scenarios = _statuses_and_scenarios(next(reports.glob("ndjson-*.ndjson")))
    summary = (
        f"schemathesis: {report['test_cases']['generated']} test cases, {sum(statuses.values())} requests"
        f" recorded, statuses {dict(sorted(statuses.items()))}, scenarios per phase {dict(scenarios)}"
    )
    print(summary)

    assert run.returncode == 0, f"{summary}\n{output}"
    assert report["failures"] == [] and report["errors"] == [], output
    assert report["operations"]["tested"] == report["operations"]["total"] == 14, report["operations"]
    for phase in ("examples", "coverage", "fuzzing", "stateful"):
        assert report["phases"][phase]["status"] == "success", (phase, report["phases"])
    assert not any(report["warnings"].values()), report["warnings"]
    assert not [s for s in statuses if s >= 500], summary
    # The run reached the service's behaviour, not only its refusals: created, read,
    # deleted, and refused for each reason the document gives.
    assert {200, 201, 204, 400, 401, 403, 404, 405} <= set(statuses), summary
    assert scenarios["stateful"] > 0, summary


def _statuses_and_scenarios(events: Path) -> tuple[Counter[int], Counter[str]]:
    statuses: Counter[int] = Counter()
    scenarios: Counter[str] = Counter()
    for line in events.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished is None:
            continue
        scenarios[finished["phase"]] += 1
        for interaction in finished["recorder"].get("interactions", {}).values():
            response = interaction.get("response")
            if response:
                statuses[response["status_code"]] += 1
    return statuses, scenarios
