"""The fast list executor gives exactly the stock executor's results, errors included.

Hypothesis generates queries (aliases, fragments, __typename, @skip/@include with
literals and variables, nested lists) against a schema built from the real Task
type plus deliberately broken data: nulls where the schema forbids them, list
items that are null, values a scalar refuses. Both executors must agree on data
and on every error (message, path, locations).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import strawberry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strawberry.extensions import ParserCache

from db.priority import TaskPriority
from schema.fast import execution as fast_execution
from schema.fast.execution import FastListExecutor
from schema.types import Task

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _task(i: int, **overrides: Any) -> Task:
    values: dict[str, Any] = {
        "id": strawberry.ID(str(i)),
        "title": f"task {i}",
        "description": None if i % 2 else f"about {i}",
        "completed": i % 3 == 0,
        "priority": list(TaskPriority)[i % 3],
        "due_date": None if i % 4 == 0 else NOW,
        "created_at": NOW,
        "updated_at": NOW,
        "user_id": "u",
    }
    values.update(overrides)
    return Task(**values)


GOOD = [_task(i) for i in range(5)]
NULL_IN_NON_NULL = [_task(0), _task(1, title=None), _task(2)]
BAD_ENUM = [_task(0), _task(1, priority="URGENT")]
BAD_SCALAR = [_task(0), _task(1, created_at="not a datetime")]


@strawberry.type
class Box:
    label: str
    items: list[Task]

    @strawberry.field
    async def computed(self) -> str:
        return self.label.upper()


@strawberry.type
class Query:
    @strawberry.field
    async def tasks(self) -> list[Task]:
        return GOOD

    @strawberry.field
    async def maybe_tasks(self) -> list[Task | None] | None:
        return [GOOD[0], None, GOOD[1]]

    @strawberry.field
    async def strict_with_null_item(self) -> list[Task]:
        return [GOOD[0], None, GOOD[1]]  # type: ignore[list-item]

    @strawberry.field
    async def null_title(self) -> list[Task]:
        return NULL_IN_NON_NULL

    @strawberry.field
    async def nullable_list_null_title(self) -> list[Task] | None:
        return NULL_IN_NON_NULL

    @strawberry.field
    async def bad_enum(self) -> list[Task | None]:
        return list(BAD_ENUM)

    @strawberry.field
    async def bad_scalar(self) -> list[Task]:
        return BAD_SCALAR

    @strawberry.field
    async def boxes(self) -> list[Box]:
        return [Box(label="a", items=GOOD[:2]), Box(label="b", items=NULL_IN_NON_NULL)]


STOCK = strawberry.Schema(query=Query)
FAST = strawberry.Schema(query=Query, execution_context_class=FastListExecutor)
# As in production: every request for the same text gets the same AST, so plans are
# shared across requests (when nothing in the selection depends on variables).
FAST_CACHED = strawberry.Schema(
    query=Query, execution_context_class=FastListExecutor, extensions=[lambda: ParserCache(maxsize=None)]
)

LIST_FIELDS = [
    "tasks", "maybeTasks", "strictWithNullItem", "nullTitle", "nullableListNullTitle",
    "badEnum", "badScalar",
]  # fmt: skip
TASK_LEAVES = [
    "id", "title", "description", "completed", "priority", "dueDate", "createdAt",
    "updatedAt", "__typename",
]  # fmt: skip

names = st.sampled_from(["a", "b", "c", "x1", "y2"])
directive = st.one_of(
    st.just(""),
    st.sampled_from(
        ["@skip(if: true)", "@skip(if: false)", "@include(if: true)", "@include(if: false)",
         "@include(if: $flag)", "@skip(if: $flag)"]
    ),
)  # fmt: skip


@st.composite
def leaf_selection(draw: st.DrawFn) -> str:
    field = draw(st.sampled_from(TASK_LEAVES))
    alias = draw(st.one_of(st.just(""), names.map(lambda n: f"{n}_{field.strip('_')}: ")))
    return f"{alias}{field} {draw(directive)}".strip()


@st.composite
def task_selection(draw: st.DrawFn) -> tuple[str, list[str]]:
    parts = draw(st.lists(leaf_selection(), min_size=1, max_size=7))
    fragments: list[str] = []
    if draw(st.booleans()):
        inner = " ".join(draw(st.lists(leaf_selection(), min_size=1, max_size=3)))
        parts.append(f"... on Task {draw(directive)} {{ {inner} }}")
    if draw(st.booleans()):
        inner = " ".join(draw(st.lists(leaf_selection(), min_size=1, max_size=3)))
        name = f"F{len(fragments)}"
        fragments.append(f"fragment {name} on Task {{ {inner} }}")
        parts.append(f"...{name} {draw(directive)}")
    return " ".join(parts), fragments


@st.composite
def query(draw: st.DrawFn) -> str:
    roots: list[str] = []
    fragments: list[str] = []
    for i, field in enumerate(
        draw(st.lists(st.sampled_from([*LIST_FIELDS, "boxes"]), min_size=1, max_size=3))
    ):
        selection, frags = draw(task_selection())
        fragments += [f.replace("fragment F", f"fragment R{i}F") for f in frags]
        selection = selection.replace("...F", f"...R{i}F")
        if field == "boxes":
            selection = f"label computed items {{ {selection} }}"
        roots.append(f"r{i}: {field} {draw(directive)} {{ {selection} }}")
    return OPERATION % " ".join(roots) + " " + " ".join(fragments)


# Every operation uses $flag, so none is rejected for an unused variable.
OPERATION = "query Q($flag: Boolean!) { f: __typename @include(if: $flag) %s }"


def _run(schema: strawberry.Schema, source: str, flag: bool) -> tuple[Any, list[dict[str, Any]]]:
    result = asyncio.run(schema.execute(source, variable_values={"flag": flag}))
    errors = sorted(
        ({"message": e.message, "path": e.path, "locations": e.locations} for e in result.errors or []),
        key=repr,
    )
    return result.data, errors


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=query(), flag=st.booleans())
def test_fast_executor_matches_stock(source: str, flag: bool) -> None:
    fast, stock = _run(FAST, source, flag), _run(STOCK, source, flag)
    assert fast == stock, source
    assert stock[0] is not None or stock[1][0]["path"], "the document itself was rejected"
    # The same document again, with the variable flipped in between: a plan kept from
    # one request must not leak into another whose variables select other fields.
    for value in (flag, not flag, flag):
        assert _run(FAST_CACHED, source, value) == _run(STOCK, source, value), (source, value)


def test_error_cases_really_produce_errors() -> None:
    """Guard against a vacuous comparison: the broken fields do fail."""
    data, errors = _run(FAST, OPERATION % "nullTitle { id title }", True)
    assert data is None and errors[0]["path"] == ["nullTitle", 1, "title"]
    data, errors = _run(FAST, OPERATION % "nullableListNullTitle { title }", True)
    assert data == {"f": "Query", "nullableListNullTitle": None} and len(errors) == 1
    data, errors = _run(FAST, OPERATION % "badEnum { id priority }", True)
    assert data == {"f": "Query", "badEnum": [{"id": "0", "priority": "LOW"}, None]} and len(errors) == 1


def test_fast_path_is_taken_for_plain_lists() -> None:
    """The shortcut must actually run for the common shape, or it buys nothing."""
    calls: list[str] = []

    class Spy(FastListExecutor):
        def complete_object_value(self, *args: Any, **kwargs: Any) -> Any:
            calls.append("object")
            return super().complete_object_value(*args, **kwargs)

    spy = strawberry.Schema(query=Query, execution_context_class=Spy)
    result = asyncio.run(spy.execute("{ tasks { id title priority dueDate __typename } }"))
    assert result.errors is None and len(result.data["tasks"]) == len(GOOD)  # type: ignore[index]
    assert calls == []


def test_plans_are_shared_across_requests_only_when_static() -> None:
    built: list[str] = []

    class Counting(FastListExecutor):
        def _build_plan(self, *args: Any, **kwargs: Any) -> Any:
            built.append("plan")
            return super()._build_plan(*args, **kwargs)

    schema = strawberry.Schema(
        query=Query, execution_context_class=Counting, extensions=[lambda: ParserCache(maxsize=None)]
    )
    static = OPERATION % "tasks { id title ... on Task { priority } }"
    for flag in (True, False, True):
        assert _run(schema, static, flag) == _run(STOCK, static, flag)
    assert built == ["plan"]
    dynamic = OPERATION % "tasks { id ... on Task @include(if: $flag) { title } }"
    built.clear()
    for flag in (True, False, True):
        assert _run(schema, dynamic, flag) == _run(STOCK, dynamic, flag)
    assert built == ["plan"] * 3
    assert fast_execution._shared_plans, "the static selection's plan is kept"


def test_resolve_hooks_are_honoured() -> None:
    """An extension's `resolve` hook wraps every field (Strawberry makes it middleware):
    the shortcut, shared plans included, must step aside for it."""
    from strawberry.extensions import SchemaExtension

    class Shout(SchemaExtension):
        def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
            value = _next(root, info, *args, **kwargs)
            return value.upper() if isinstance(value, str) and info.field_name == "title" else value

    document = OPERATION % "tasks { id title }"
    plain = FAST_CACHED
    shouting = strawberry.Schema(
        query=Query,
        execution_context_class=FastListExecutor,
        extensions=[Shout, lambda: ParserCache(maxsize=None)],
    )
    assert _run(plain, document, True)[0]["tasks"][0]["title"] == "task 0"  # plan now shared
    data, errors = _run(shouting, document, True)
    assert errors == [] and [t["title"] for t in data["tasks"]] == [f"TASK {i}" for i in range(5)]
