// Runs graphql-http's GraphQL-over-HTTP server audit against a live endpoint and prints
// one JSON line: {"results": [{id, name, status, reason?, response?}, ...]}.
// Usage: node audit.mjs http://127.0.0.1:PORT/graphql
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql endpoint url>');
  process.exit(2);
}

async function describe(response) {
  // A failed audit keeps the answer it judged: its status, content type and body.
  if (!response) return undefined;
  let body;
  try {
    body = (await response.text()).slice(0, 2000);
  } catch (error) {
    body = `<unreadable: ${error}>`;
  }
  return { status: response.status, contentType: response.headers.get('content-type'), body };
}

const results = await auditServer({ url, fetchFn: (input, init) => fetch(input, init) });
const out = [];
for (const result of results) {
  const { id, name, status } = result;
  out.push(status === 'ok' ? { id, name, status } : { id, name, status, reason: result.reason, response: await describe(result.response) });
}
process.stdout.write(JSON.stringify({ results: out }) + '\n');
