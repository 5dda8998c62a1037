// The graphql-ws npm client, as a frontend uses it: createClient({ url,
// connectionParams: { Authorization: 'Bearer …' } }) and one taskChanges subscription.
// (Node 20 has no global WebSocket: the `ws` package stands in for the browser's.)
//
// Env: GQL_URL (ws://host:port/graphql), GQL_TOKEN (a JWT; empty: no connectionParams),
// GQL_AFTER (optional resume point). Prints one JSON line per happening on stdout:
//   {"ready": true}                   the subscription was sent
//   {"next": {...}}                   an execution result
//   {"error": {"code", "reason"}}     the connection was refused or closed
//   {"complete": true}
// and exits when stdin closes (the Python side owns its lifetime).
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');

const token = process.env.GQL_TOKEN || '';
const client = createClient({
  url: process.env.GQL_URL,
  webSocketImpl: WebSocket,
  connectionParams: token ? { Authorization: `Bearer ${token}` } : undefined,
  lazy: false,
  retryAttempts: 0,
  onNonLazyError: () => {}, // reported through the subscription's error below
  on: {
    closed: (event) => print({ closed: { code: event.code, reason: event.reason } }),
    connected: () => print({ connected: true }),
  },
});

const query = `subscription Changes($after: ID) {
  taskChanges(after: $after) {
    eventId kind taskId at reason
    task { id title description completed priority dueDate createdAt updatedAt }
  }
}`;

client.subscribe(
  { query, variables: { after: process.env.GQL_AFTER || null } },
  {
    next: (result) => print({ next: result }),
    error: (error) =>
      print({
        error:
          error && typeof error.code === 'number'
            ? { code: error.code, reason: error.reason }
            : { message: String(error && error.message ? error.message : JSON.stringify(error)) },
      }),
    complete: () => print({ complete: true }),
  },
);
print({ ready: true });

process.stdin.resume();
process.stdin.on('end', async () => {
  await client.dispose();
  process.exit(0);
});
