"""GraphiQL, Swagger UI and ReDoc work in a real browser with nothing but the service
reachable (see conftest.py): every file they need comes from the service, and their
pages' Content-Security-Policy would refuse anything else."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from tests.browser.conftest import Visit
from tests.support import LiveServer, hs_token, unique_user

QUERY = "{ me { id } tasks { totalCount } }"
TITLES = ("Buy milk", "Plan trip")


def _user_with_tasks(server: LiveServer, prefix: str) -> tuple[str, str]:
    user = unique_user(prefix)
    token = hs_token(user)
    with server.client(token) as client:
        for title in TITLES:
            assert client.post("/api/tasks", json={"title": title}).status_code == 201
    return user, token


def _replace_text(visit: Visit, editor: str, text: str) -> None:
    """What a person does: click into the editor, select everything, paste."""
    visit.page.locator(editor).click()
    visit.page.keyboard.press("Control+A")
    visit.page.keyboard.insert_text(text)


def test_graphiql_runs_a_query_with_a_token(visit: Visit, tools_server: LiveServer) -> None:
    user, token = _user_with_tasks(tools_server, "graphiql")
    page = visit.page
    page.goto(f"{tools_server.url}/graphql")

    # The Headers pane is open, offering the token header.
    headers = "section.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
    expect(page.locator(headers)).to_contain_text('"Authorization": "Bearer <token>"')
    # The schema arrived by introspection (the docs explorer lists the root types).
    page.get_by_label("Show Documentation Explorer").click()
    expect(page.locator(".graphiql-doc-explorer")).to_contain_text("Query")

    _replace_text(visit, headers, json.dumps({"Authorization": f"Bearer {token}"}))
    _replace_text(visit, ".graphiql-query-editor .CodeMirror", QUERY)
    page.get_by_label("Execute query (Ctrl-Enter)").click()

    response = page.locator(".graphiql-response .CodeMirror")
    expect(response).to_contain_text('"totalCount": 2')
    result = json.loads(response.evaluate("element => element.CodeMirror.getValue()"))
    assert result == {"data": {"me": {"id": user}, "tasks": {"totalCount": 2}}}
    assert visit.blocked == []
    assert visit.problems == []


def test_swagger_ui_authorizes_and_lists_tasks(visit: Visit, tools_server: LiveServer) -> None:
    _, token = _user_with_tasks(tools_server, "swagger")
    page = visit.page
    page.goto(f"{tools_server.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Task API")

    # Authorize: the bearer scheme takes the token as it is.
    page.locator(".scheme-container button.authorize").click()
    dialog = page.locator(".modal-ux")
    expect(dialog).to_contain_text("bearerAuth")
    dialog.locator("input").fill(token)
    dialog.locator("button.authorize").click()
    dialog.locator("button.btn-done").click()

    # Try it out: GET /api/tasks, a protected operation.
    operation = page.locator("#operations-tasks-list_tasks_api_tasks_get")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()

    live = operation.locator(".live-responses-table .response")
    expect(live.locator(".response-col_status").first).to_have_text("200")
    body = live.locator(".response-col_description pre.microlight").first
    for title in TITLES:
        expect(body).to_contain_text(title)
    # The request as Swagger UI shows it (its curl line) carried the token.
    expect(operation.locator(".curl-command")).to_contain_text(f"Authorization: Bearer {token}")
    assert visit.blocked == []
    assert visit.problems == []


def test_redoc_renders_the_document(visit: Visit, tools_server: LiveServer) -> None:
    page = visit.page
    page.goto(f"{tools_server.url}/redoc")
    expect(page.locator("h1").first).to_contain_text("Task API")
    expect(page.get_by_role("heading", name="List your tasks").first).to_be_visible()
    assert visit.blocked == []
    # ReDoc's sidebar footer shows a logo from cdn.redoc.ly: the page's CSP refuses it
    # (so no request is made) and ReDoc then leaves the image out. Nothing else.
    logo = re.compile(r"console: Loading the image 'https://cdn\.redoc\.ly/redoc/logo-mini\.svg' violates")
    assert [problem for problem in visit.problems if not logo.match(problem)] == []
