// GraphiQL for this service. A file rather than an inline script, so that the page's
// Content-Security-Policy can forbid inline scripts altogether (api/docs.py).
(function () {
  "use strict";

  var endpoint = window.location.href.split(/[?#]/)[0];
  var socket = new URL(endpoint);
  socket.protocol = socket.protocol === "https:" ? "wss:" : "ws:";

  // Queries and mutations over HTTP, subscriptions over WebSocket; GraphiQL sends the
  // Headers pane with both (over WebSocket as the connection_init payload).
  var fetcher = GraphiQL.createFetcher({
    url: endpoint,
    subscriptionUrl: socket.toString(),
    headers: { Accept: "application/graphql-response+json, application/json" },
  });

  var defaultHeaders = JSON.stringify({ Authorization: "Bearer <token>" }, null, 2);
  // Anonymous: GraphiQL sends the operation name it last saw, and a name that a quick
  // edit has just removed would make the request fail.
  var defaultQuery = [
    "# Your token goes in the Headers pane below.",
    "# In development: uv run todo-api dev-token --user alice",
    "",
    "{",
    "  me { id }",
    "  tasks(first: 10) {",
    "    totalCount",
    "    nodes { id title completed priority dueDate }",
    "  }",
    "}",
    "",
  ].join("\n");

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultHeaders: defaultHeaders,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
    }),
  );
})();
