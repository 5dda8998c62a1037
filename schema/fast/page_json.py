"""A list page's JSON built by PostgreSQL (part of shortcut 7 in schema/fast/__init__.py).

For the root field `tasks` whose nodes are selected as plain scalars (`nodes { ... }`
and/or `edges { cursor node { ... } }`, aliases, repeats and `__typename` included),
`page_plan` makes, once per planned operation, the SQL expression building each
node's JSON object exactly as the stock path would serialise it (keys the response
keys in order; ID as text, the priority by its GraphQL name, DateTime as Python's
`datetime.isoformat()` of asyncpg's UTC value). `PagePlan.run` then does what
Query.tasks and resolvers.list_tasks do (the same validation, cursor decoding,
filter and page size, db.queries.list_statement's query wrapped by
list_json_statement) and splices the text into the response as orjson Fragments;
pageInfo and totalCount are completed from a TaskConnection made as list_tasks
makes it. A row whose timestamps the expressions would not render as Python does
(outside years 1-9999, infinite) makes `run` give up (None): the stock path answers.
(REST's GET /tasks renders the rows in Python instead: routes.list_tasks; the reason is
in schema/fast/__init__.py, shortcut 9.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import FieldNode

from db import queries
from schema.cursor import decode_cursor, encode_cursor
from schema.query import GRAPHQL_MAX_FIRST
from schema.resolvers import _COMPLETED_FILTER, default_order
from schema.types import PageInfo, SortOrder, TaskConnection, TaskSortField, TaskStatusFilter
from schema.validation import check_page_size, clean_search


def _timestamp(column: str) -> str:
    local = f"(t.{column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({local}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_trunc('second', t.{column})"
        f" = t.{column} THEN '' ELSE to_char({local}, '.US') END || '+00:00'"
    )


def _in_range(column: str) -> str:
    return (
        f"(t.{column} IS NULL OR (t.{column} >= '0001-01-01 00:00:00+00'::timestamptz"
        f" AND t.{column} < '10000-01-01 00:00:00+00'::timestamptz))"
    )


# Task's GraphQL field -> (SQL of its serialised value, timestamp column to guard or None).
_TASK_FIELDS: dict[str, tuple[str, str | None]] = {
    "id": ("t.id::text", None),
    "title": ("t.title", None),
    "description": ("t.description", None),
    "completed": ("t.completed", None),
    "priority": ("upper(t.priority::text)", None),
    "dueDate": (_timestamp("due_date"), "due_date"),
    "createdAt": (_timestamp("created_at"), "created_at"),
    "updatedAt": (_timestamp("updated_at"), "updated_at"),
}
_MAX_KEYS = 50  # json_build_object takes at most 100 arguments


def _grouped(nodes: list[FieldNode]) -> dict[str, list[FieldNode]] | None:
    """The fields under `nodes`, merged by response key in order; None for fragments,
    directives or arguments."""
    merged: dict[str, list[FieldNode]] = {}
    for node in nodes:
        if node.selection_set is None:
            return None
        for selection in node.selection_set.selections:
            if not isinstance(selection, FieldNode) or selection.directives or selection.arguments:
                return None
            key = selection.alias.value if selection.alias else selection.name.value
            merged.setdefault(key, []).append(selection)
    return merged


def _same_name(nodes: list[FieldNode]) -> str:
    return nodes[0].name.value


def _node_sql(nodes: list[FieldNode], guards: set[str]) -> str | None:
    grouped = _grouped(nodes)
    if grouped is None or not grouped or len(grouped) > _MAX_KEYS:
        return None
    parts = []
    for key, fields in grouped.items():
        name = _same_name(fields)
        if name == "__typename":
            value = "'Task'"
        elif name in _TASK_FIELDS and not any(f.selection_set for f in fields):
            value, guard = _TASK_FIELDS[name]
            if guard is not None:
                guards.add(guard)
        else:
            return None
        parts.append(f"'{key}', {value}")
    return f"json_build_object({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class PagePlan:
    node: str  # SQL: a node's JSON object ('null' when `nodes` is not selected)
    row_node: str | None  # SQL: the node of an edge (edges selected)
    guard: str
    keys: tuple[tuple[str, str], ...]  # (response key, "nodes" / "edges" / "other")
    edge_keys: tuple[tuple[str, str], ...]  # (response key, "cursor" / "node" / "__typename")
    cursors: bool

    async def run(
        self,
        context: Any,
        args: dict[str, Any],
        complete_other: Callable[[str, TaskConnection], Awaitable[Any]],
    ) -> dict[str, Any] | None:
        """The connection's value, or None: the stock path answers (nothing was done
        that matters: list_tasks only reads)."""
        # Query.tasks: an explicit null means the default.
        first = args.get("first", 50)
        size_requested = 50 if first is None else first
        status = args.get("status") or TaskStatusFilter.ALL
        sort = args.get("sort") or TaskSortField.CREATED
        order: SortOrder | None = args.get("order")
        search = args.get("search")
        after_text = args.get("after")
        # resolvers.list_tasks (offset is always 0 here)
        viewer = await context.viewer()
        order = order or default_order(sort)
        size = check_page_size(size_requested, field="first", maximum=GRAPHQL_MAX_FIRST)
        after = None if after_text is None else decode_cursor(after_text, sort.value, order.value)
        flt = queries.TaskFilter(viewer.id, _COMPLETED_FILTER[status], clean_search(search))
        sql, sql_args = queries.list_json_statement(
            flt,
            sort=sort.value,
            descending=order is SortOrder.DESC,
            limit=size + 1,
            after=after,
            node=self.node,
            row_node=self.row_node,
            guard=self.guard,
            sort_values=self.cursors,
        )
        row = await context.db.fetchrow(sql, *sql_args)
        if row is None or not row["exact"]:
            return None
        found: int = row["n"]
        has_next = found > size
        page_size = min(found, size)
        sort_values = row["sort_values"] or []
        ids = row["ids"] or []
        sort_name, order_name = sort.value, order.value

        def cursor_at(index: int) -> str:
            return encode_cursor(sort_name, order_name, sort_values[index], ids[index])

        async def count_total() -> int:
            if after is None and not has_next:
                return page_size
            return await queries.count_tasks(context.db, flt)

        connection = TaskConnection(
            nodes=[],
            page_info=PageInfo(
                has_next_page=has_next,
                has_previous_page=after is not None,
                page_size=page_size,
                cursor_at=cursor_at,
            ),
            cursor_at=cursor_at,
            count_total=count_total,
        )
        result: dict[str, Any] = {}
        for key, kind in self.keys:
            if kind == "nodes":
                result[key] = orjson.Fragment(row["nodes"])
            elif kind == "edges":
                texts = row["node_texts"] or []
                edges = []
                for index, text in enumerate(texts):
                    parts = []
                    for edge_key, edge_kind in self.edge_keys:
                        if edge_kind == "node":
                            value = text
                        elif edge_kind == "cursor":
                            value = orjson.dumps(cursor_at(index)).decode()
                        else:
                            value = '"TaskEdge"'
                        parts.append(f'"{edge_key}":{value}')
                    edges.append("{" + ",".join(parts) + "}")
                result[key] = orjson.Fragment("[" + ",".join(edges) + "]")
            else:
                result[key] = await complete_other(key, connection)
        return result


def page_plan(nodes: list[FieldNode]) -> PagePlan | None:
    """The plan of root field `tasks` selected by `nodes`, or None when its selection
    is not covered."""
    grouped = _grouped(nodes)
    if grouped is None:
        return None
    guards: set[str] = set()
    node = row_node = None
    keys = []
    edge_keys: list[tuple[str, str]] = []
    cursors = False
    for key, fields in grouped.items():
        name = _same_name(fields)
        if name == "nodes":
            if node is not None:
                return None
            node = _node_sql(fields, guards)
            if node is None:
                return None
            keys.append((key, "nodes"))
        elif name == "edges":
            if row_node is not None:
                return None
            edge_fields = _grouped(fields)
            if edge_fields is None:
                return None
            for edge_key, under in edge_fields.items():
                edge_name = _same_name(under)
                if edge_name == "node":
                    if row_node is not None:
                        return None
                    row_node = _node_sql(under, guards)
                    if row_node is None:
                        return None
                elif edge_name == "cursor":
                    cursors = True
                elif edge_name != "__typename":
                    return None
                edge_keys.append((edge_key, edge_name))
            if row_node is None:
                return None
            keys.append((key, "edges"))
        elif name == "pageInfo":
            cursors = True  # start/end cursors may be asked for
            keys.append((key, "other"))
        elif name in ("totalCount", "__typename"):
            keys.append((key, "other"))
        else:
            return None
    if node is None and row_node is None:
        return None
    guard = " AND ".join(_in_range(column) for column in sorted(guards)) or "true"
    return PagePlan(node or "NULL::json", row_node, guard, tuple(keys), tuple(edge_keys), cursors)
