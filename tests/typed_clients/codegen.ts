// graphql-codegen config (run: `graphql-codegen --config codegen.ts`).
// GRAPHQL_SCHEMA may name another source than the repo's schema.graphql, e.g. a running
// service's http://localhost:8000/graphql (read by introspection).
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: process.env.GRAPHQL_SCHEMA ?? "../../schema.graphql",
  documents: ["operations.graphql"],
  generates: {
    // Every type of the schema (Task, TaskConnection, inputs, enums as string unions).
    "src/generated/schema.ts": {
      plugins: ["typescript"],
      config: { enumsAsTypes: true, scalars: { DateTime: "string" } },
    },
    // One result and one variables type per operation in `documents` (TasksQuery, ...),
    // with the enums and inputs they use: exactly the fields each operation selects.
    "src/generated/graphql.ts": {
      plugins: ["typescript-operations"],
      config: { scalars: { DateTime: "string" } },
    },
  },
};

export default config;
