"""The fast paths: every shortcut that reaches into a library's internals or replaces
what a library does, in one list, behind one switch.

`FAST_PATHS` (Settings.fast_paths, default true) turns them all on. With
`FAST_PATHS=false` the app factory (api/app.py) builds stock Strawberry execution,
Strawberry's own view run(), Starlette's CORS middleware as it is and FastAPI's own
query-parameter reading, and `todo-api serve` leaves the garbage collector alone.
The answers are the same either way (status and JSON body); tests/fast/test_switch.py
proves the stock app uses none of this and answers alike, and the GraphQL and REST
suites run on both paths (`FAST_PATHS=false pytest ...`).

Figures are in-process CPU time per request (docs/performance.md). Versions are those
each shortcut was written against. pyproject.toml admits newer releases; the app factory
turns the shortcuts on only when the installed ones are in schema/fast/releases.py's
tested ranges, and otherwise serves the stock paths and logs which release is untested
(tests/fast/test_switch.py::test_the_fast_paths_run_only_on_the_tested_releases).

1. **Fast list executor** (schema/fast/execution.py, FastListExecutor).
   What: completes a list of objects whose selected fields are all plain attributes
   with scalar or enum values by one generated function (source built from the plan
   and run with `exec`), instead of graphql-core's per-field completion; anything
   unusual falls back to the stock completion of the whole list. Plans of selections
   no variable can change are kept process-wide, keyed by the `id()`s of the field
   nodes that the parser cache hands to every request for the same document.
   Why: a page of 50 tasks with 6 fields, ~300 -> ~175 µs.
   Touches (graphql-core >=3.3.2,<3.4; strawberry-graphql 0.341):
   `graphql.execution.ExecutionContext.complete_list_value` and `.collect_subfields`
   (overridden / called), its `middleware_manager`, `hooks` and `fragments`;
   `graphql.execution.collect_fields.FieldDetailsList` (3.3 only);
   `strawberry.schema.schema.StrawberryGraphQLCoreExecutionContext` (not exported);
   the `_is_default` mark that `strawberry.schema.schema_converter` puts on default
   resolvers; the field extension `"strawberry-definition"` (StrawberryField's
   `base_resolver`, `default_resolver`, `python_name`, `extensions`); enum types'
   `wrapped_cls`.
   Guarded by: tests/fast/test_execution.py (generated queries against the stock
   executor, broken data included; shared plans; resolve hooks).

2. **Limits ridden on the caches** (schema/fast/caches.py, BoundedParserCache and
   LimitedValidationCache).
   What: the token cap (MaxTokensLimiter's work) and the limit rules (an
   AddValidationRules extension's work) are done inside the hooks of Strawberry's
   ParserCache and ValidationCache. The stock path has MaxTokensLimiter and
   schema.schema.DocumentLimits, and no caches.
   Why: every extension's hooks run on every request; with masking moved into
   TaskSchema.execute, a GraphQL list ~505 -> ~430 µs.
   Touches (strawberry-graphql 0.341): `strawberry.extensions.ParserCache.on_parse`
   and `ValidationCache.on_validate` (their hook bodies wrapped; relies on the first
   reading `execution_context.parse_options` and the second keying its cache on
   `execution_context.validation_rules`).
   Guarded by: tests/graphql/test_limits.py::test_oversized_documents_are_refused,
   tests/service/test_hostile_input.py::test_query_cost_limit and
   ::test_several_operations_need_an_operation_name.

3. **Short path for a plain JSON POST** (schema/fast/http.py, PlainPostShortcut;
   mixed into api.graphql.FastTaskGraphQL).
   What: a POST with `Content-Type: application/json` of one operation goes through
   the view's execute_single, process_result and create_response without the rest of
   Strawberry's run() (WebSocket and GraphiQL checks, content-type parsing, batching,
   streaming); anything else goes to run().
   Why: ~15 µs of a ~410 µs GraphQL list request.
   Touches (strawberry-graphql 0.341): re-implements part of
   `strawberry.http.async_base_view.AsyncBaseHTTPView.run`; calls its private
   `_handle_errors`, `execute_single` and `request_adapter_class`.
   Guarded by: tests/graphql/test_transport.py::test_plain_json_posts_are_answered_as_by_strawberrys_full_path
   and ::test_the_short_path_is_taken_only_for_plain_json_posts.

4. **CORS skipped without an Origin** (schema/fast/cors.py, SkipCORSWithoutOrigin;
   mixed into api.cors.FastCORS).
   What: a request without an Origin header (server-side callers) bypasses
   Starlette's CORS middleware and gets the `Vary: Origin` it would have added.
   Why: ~8 µs a request (REST get-one ~143 -> ~135 µs).
   Touches (starlette 1.10, through fastapi <0.137): replaces
   `starlette.middleware.cors.CORSMiddleware.__call__` for such requests, relying on
   `CORSMiddleware.send` adding nothing but `Vary: Origin` to them. (Starlette merges
   it into an existing Vary header; this adds its own: no route here sets Vary.)
   Guarded by: tests/rest/test_cors_and_health.py::test_every_answer_varies_by_origin.

Elsewhere, listed here all the same:

5. **The REST list's query string read whole** (rest_shim/fast.py,
   whole_query_string; in rest_shim/, as schema/ must not depend on REST).
   What: GET /tasks's dependency gets the query string as one mapping, validated
   against one model (rest_shim/query.py), instead of FastAPI reading six declared
   parameters. The stock app overrides that dependency (FastAPI's
   dependency_overrides) with rest_shim.query.list_query_from_parameters.
   Why: a REST list ~460 -> ~390 µs.
   Touches: no private API; replaces FastAPI's query-parameter resolution for this
   route (fastapi >=0.115,<0.137), so OpenAPI describes the parameters from the model
   (rest_shim.query.query_parameters).
   Guarded by: tests/listing/test_offset.py::test_list_query_validation and
   ::test_list_filters_headers_and_limits,
   tests/service/test_hostile_input.py::test_frontend_spellings_of_sort_and_page.

6. **Garbage-collector tuning** (api/gc_tuning.py, tune_for_serving; called by
   api.cli.worker_app, so only by `todo-api serve`, and the bench, which serves
   through it).
   What: `gc.freeze()` once the serving process has imported everything and built
   the app, and a gen-0 threshold of 20,000 allocations. Process-wide, so never done
   by the app factory.
   Why: p99 under load 141 -> 35 ms (REST get-one).
   Touches: CPython's `gc` (public; 3.11+).
   Guarded by: tests/fast/test_switch.py::test_serve_tunes_the_collector_only_with_fast_paths.

7. **Whole plain operations** (schema/fast/operation.py, Operation and plan; run from
   schema/fast/http.py's short path, so only for a plain JSON POST without
   `extensions`; replay honoured by FastListExecutor).
   What: a document of one query or mutation with no fragments and no directives,
   whose fields below the root take no arguments and are plain attributes or
   Strawberry resolvers taking only `self` (object types without is_type_of), is
   planned once per (query text, operationName, app rules): parsed with the token cap
   and validated with every rule the stock path applies (graphql-core's, the limit
   rules of schema.schema.request_rules, Strawberry's own two). Planning also builds,
   per root field, (a) a direct call of the field's own function
   (schema/fast/arguments.py: when its Strawberry wrapper could do nothing else — no field
   extensions or permission classes, no schema exception handlers, arguments of
   scalars, enums, lists, optionals and plain input classes — the conversion Strawberry's
   convert_arguments does per request is decided once: input classes built with the
   same keywords, UNSET/defaults left to the classes, lists copied, the same Info), and
   (b) coercers (schema/fast/values.py) for scalar variables without defaults and for
   root arguments that are constants (coerced once), bare variables or input literals
   of those, doing what graphql-core's get_variable_values / get_argument_values would
   and leaving every other case, errors included, to those functions. Each request
   then coerces variables and root arguments, calls the root fields' functions
   (schema/query.py, schema/mutation.py and schema/resolvers.py run as they are:
   auth, isolation, validation; a field the direct call does not cover gets
   Strawberry's converted resolver) and builds
   `data` in one pass, without Strawberry's execute (extensions' hooks, execution
   context, graphql-core's executor) and its result processing. TaskSchema's
   observe_result is told of the operation as TaskSchema.execute would; masking has
   nothing to do (no errors on this path). Anything else — the variables do not
   coerce, a resolver raises, a null where the schema forbids one, a value a scalar
   refuses — gives up and the same request runs through Strawberry's execute, with
   the outcomes of the root resolvers already called *replayed* (a middleware the
   executor adds, innermost), so nothing runs twice (a mutation is never repeated)
   and errors, paths, codes and nulls are the stock ones.
   Why: GraphQL list ~990 -> ~790 µs in process (calls per request 1865 -> 1410);
   the direct call and the plan-made coercion: calls per request list 1411 -> 1166,
   create 1269 -> 917 (in process, noisy machine: list ~870 -> ~650-720 µs, create
   ~1000 -> ~520-800 µs).
   Touches (graphql-core >=3.3.2,<3.4; strawberry-graphql 0.341):
   `graphql.execution.values.get_variable_values`, `get_argument_values` and
   `VariableValues` (3.3's shapes), `graphql.utilities.coerce_input_value`'s
   `coerce_input_literal` and `coerce_default_value` (mirrored by
   schema/fast/values.py for the shapes it takes); builds `GraphQLResolveInfo` itself (no
   abort signal, no async helpers; the variables as Strawberry's executor passes
   them: the coerced dict); `strawberry.schema.schema.validate_document` (not
   exported); StrawberryField's `base_resolver` (`wrapped_func`, `self_parameter`,
   `info_parameter`, `root_parameter`, `parent_parameter`, `arguments`), `extensions`
   and `permission_classes`; `strawberry.types.arguments.convert_argument`'s rules
   (mirrored; its private `_is_leaf_type`/`_is_optional_leaf_type` called), the
   `GraphQLSchema._strawberry_schema` back-reference, `Schema.exception_handlers`,
   `schema_converter.scalar_registry`, `config.name_converter` and `config.info_class`;
   the qualified name of Strawberry's converted resolvers
   (`GraphQLCoreConverter.from_resolver.<locals>...`); graphql-core's
   `MiddlewareManager` (replaced on the execution context for the replay).
   Guarded by: tests/fast/test_operation.py (generated operations and near-misses
   against Strawberry's execution in the same app; creations with every input field
   missing, null, of each value and of wrong types, as variables, literals and
   literals holding variables; updates; every list argument null or missing;
   variable edge cases; a failing mutation runs once).

8. **The hot REST routes' arguments read directly** (rest_shim/fast_routes.py,
   FastRoute; api/app.py hands it to api.mount.include_flat as the task routes' class).
   What: for GET /tasks, POST /tasks, GET /tasks/{task_id} and PATCH
   /tasks/{task_id}/complete (at /api and /api/{user_id}), the route's ASGI app checks
   the token, reads the query (rest_shim.query.list_query), the path's id and a
   `Content-Type: application/json` body (json.loads, then the route's Pydantic model)
   and calls the endpoint of rest_shim/routes.py itself, without FastAPI's
   request_response and solve_dependencies. Anything unusual (a refused token, a
   query or body validation fails, another content type, no body, the body limit, any
   exception before the endpoint runs) is answered by FastAPI's own handler, the body
   read so far replayed to it; the endpoint's own errors go to the same exception
   handlers. Matching, `scope["route"]`, 405s and OpenAPI stay FastAPI's (an APIRoute
   subclass). The stock app uses the routes' own class (AuthenticatedRoute).
   Why: REST get-one ~348 -> ~283 µs, toggle ~548 -> ~462, create ~547 -> ~524
   (bench.cpu, in-process CPU, a busy machine); Python calls per request (cProfile)
   get-one 917 -> 640, toggle 1070 -> 751, create 1060 -> 777, list 1770 -> 1500.
   Touches (fastapi 0.165, starlette 1.10): replaces `APIRoute.app` (set by
   APIRoute.__init__ to request_response(get_route_handler())) and relies on
   Starlette's Route.handle calling it after the method check; reads
   `APIRoute.dependant.dependencies` (refuses to build over a dependency it does not
   know) and `dependency_overrides_provider` (overrides: FastAPI's handler). Skips
   FastAPI's per-route telemetry spans (`dependencies`, `endpoint`; not configured here).
   Guarded by: tests/fast/test_switch.py::test_both_paths_answer_alike (the hot routes'
   happy paths and errors on both paths: statuses, bodies and headers) and
   ::test_the_hot_routes_answer_everyday_requests_themselves.

9. **A GraphQL list page's JSON built by PostgreSQL**
   (schema/fast/page_json.py, planned by
   schema/fast/operation.py for the root field `tasks` of shortcut 7;
   db.queries.list_json_statement).
   What: when `tasks` selects `nodes { ... }` and/or `edges { cursor node { ... } }`
   (one of each at most, one `node` per edge) of Task's scalar fields and `__typename`
   (aliases and repeats merged as graphql-core merges them), with or without pageInfo,
   totalCount and `__typename`, planning builds the SQL of each node's JSON object
   (json_build_object: the response keys in order; ID as text, the priority by its
   GraphQL name, DateTime as `datetime.isoformat()` of asyncpg's UTC value: to_char,
   `.US` only when microseconds are not 0, `+00:00`). Each request does what
   Query.tasks and resolvers.list_tasks do (viewer, default order, check_page_size,
   decode_cursor, TaskFilter, clean_search: mirrored in PagePlan.run), runs
   db.queries.list_statement's query wrapped (`SELECT json_agg(...) FROM (<it>) t`,
   ordered by the same key; the row count for hasNextPage; sort values and ids for the
   cursors, encoded by encode_cursor as today) and splices the text into the response
   as orjson Fragments (an edge's cursor and node are joined in Python); pageInfo and
   totalCount are completed from a TaskConnection made as list_tasks makes it.
   Anything else — another selection, an error (it then runs through the stock path,
   list_tasks only reads), a timestamp outside years 1-9999 or infinite (checked by the
   same query) — is answered by the existing path.
   REST's GET /tasks is not a shortcut: routes.list_tasks itself renders the rows of
   resolvers.list_task_rows with rest_shim.models.task_json_of_row on both paths. Its
   page JSON used to come from PostgreSQL here too; that cut this process's CPU but cost
   PostgreSQL more (REST's nine fields, three timestamps through to_char): per request,
   this process plus every PostgreSQL backend, 1,066 µs that way against 990 µs with the
   rows rendered in Python (the floor: 798-876; 2026-11-29, third session, a throwaway
   counter of /proc CPU around bench.cpu's requests).
   Why: gql_list (50 nodes) ~630-660 -> ~375 µs in process, Python calls per request
   1145 -> 777 (bench.cpu, back to back, busy machine).
   Relies on: PostgreSQL's json output (escapes, `" : "` spacing: equal once parsed,
   not byte-equal), to_char's `YYYY`/`US`; orjson.Fragment (orjson >= 3.9);
   Strawberry's DateTime serialising with isoformat() and enums by name; asyncpg
   returning timestamptz in UTC. PagePlan.run mirrors Query.tasks and
   resolvers.list_tasks: a change there must be made here too (the tests compare).
   Guarded by: tests/fast/test_page_json.py (generated selections — aliases, repeats,
   every field, __typename, nodes/edges, pageInfo, totalCount, filters, sorts, orders,
   searches — on data with timestamps with and without microseconds, years 1 and 9999,
   null descriptions, unicode/emoji/control characters/quotes/backslashes, every
   priority, an empty page and an infinite due date; every page of every sort walked
   by cursor; bodies compared with key order against the stock path, and the path
   asserted taken; REST: many query strings, at /api and /api/{user_id}, against an app
   with FAST_PATHS=false: status, body with key order, Content-Type, X-Total-Count and
   Link) and tests/fast/test_operation.py (whose list operations it now answers).

10. **Routes skip their regex where the path cannot match** (schema/fast/routing.py,
   PathPrefilter; api/app.py hands `prefiltered(...)` route classes to
   api.mount.include_flat).
   What: before FastAPI's APIRoute.matches (the route's regex and FastAPI's scope
   bookkeeping), a route checks that the path starts with its template's text before
   the first parameter, ends with the text after the last and has as many slashes:
   true of every path its regex matches when no parameter can hold a slash
   (Starlette's str, int, float and uuid convertors). When one fails it answers
   Match.NONE, as the regex would; otherwise it matches as before. Not under a
   root_path. FastAPI's /openapi.json route, which it adds first, is moved behind the
   API's routes (api/openapi.py, on both paths: no other route takes its path).
   Why: GET /api/tasks/{id} is the sixth route tried, PATCH .../complete the ninth,
   /graphql the tenth; REST get-one ~687k -> ~668k instructions a request in process
   (callgrind, bench/README.md).
   Touches (fastapi 0.165, starlette 1.10): `Route.param_convertors` and the
   convertor classes of `starlette.convertors`; mirrors `starlette.routing`'s
   parameter syntax.
   Guarded by: tests/fast/test_routing.py (every route of the app against many paths
   and near-misses, methods, with and without a root_path: the same Match and child
   scope as the stock class; the router picks the same route as the stock app's).

11. **The hot routes dispatched before FastAPI's router** (schema/fast/dispatch.py,
   HotRoutes; api/app.py adds it innermost of the app's middleware, marks the /graphql
   route `dispatched`, and rest_shim/fast_routes.py's FastRoute gives the hot routes of
   shortcut 8 an `answer`).
   What: below the app's own middleware (drain, access log and metrics, CORS, body
   limit: all unchanged), a request the router would give a hot route (its first FULL
   match, decided from each route's shape, regex and methods, in the router's order) is
   answered by that route directly, with the scope keys the router and the route's
   `matches` set (`router`, `endpoint`, `path_params`, `route`): a FastRoute by its
   `answer`, /graphql by its view inside Starlette's wrap_app_handling_exceptions with
   ExceptionMiddleware's handlers, as under the router. Unusual REST requests
   (anything FastRoute hands FastAPI's handler) go on to FastAPI's stack from its start,
   the body replayed and the request marked so that FastRoute does not try again; the
   endpoint's exceptions go to the same handlers the same way. A route it cannot judge
   (a Mount, a `path` convertor, an unknown `matches`) before a hot one, a root_path,
   FastAPI telemetry or router-wide form limits: FastAPI's stack as always.
   Why: FastAPI's ExceptionMiddleware, AsyncExitStackMiddleware and router cost a
   REST get-one ~100k instructions (bench.layers, 628k -> 534k a request in process,
   the floor 351k); GraphQL `createTask` ~1,308k -> ~1,232k (three callgrind runs at
   once: approximate).
   Touches (fastapi 0.165, starlette 1.10): `ExceptionMiddleware._exception_handlers`
   and `._status_handlers`, `starlette._exception_handler.wrap_app_handling_exceptions`
   (private module), `Route.path_regex`, `.param_convertors`, `.methods`; mirrors
   `Route.matches`, FastAPI's `APIRouter.app` (the scope keys it sets; its
   `form_limits`, `"fastapi"` scope and telemetry, which it leaves to FastAPI) and
   FastAPI's middleware order (ExceptionMiddleware directly inside the user
   middleware; checked at construction).
   Guarded by: tests/fast/test_dispatch.py (every route of the app against many paths
   and methods: a request is taken only by the hot route the stock router picks, with
   its path parameters, and every hot route takes some; the scope a hot route sees is
   the stock stack's but for the two skipped middlewares' keys; routes it cannot judge,
   or whose class overrides `matches` anywhere in its bases, stop the search; a
   root_path, telemetry or FastAPI scope state go to FastAPI; everyday requests over
   HTTP never reach FastAPI's stack and unusual ones do, tried once; `dispatched`
   refuses routes that would not be labelled alike; an exception no handler takes is
   the stock 500), and
   tests/fast/test_switch.py::test_both_paths_answer_alike.

Not switched, because both paths need it: schema.schema.limit_rules reads
`strawberry.types.execution.ExecutionContext._provided_operation_name` (0.341), the
only place Strawberry keeps whether the request named its operation (its public
`operation_name` falls back to the document's first one), to require operationName
for documents with several operations. Not shortcuts (public API on both paths):
the ASGI view on a plain route instead of Strawberry's FastAPI router
(api/graphql.py), orjson rendering, the token checked in AuthenticatedRoute.
"""
