// A frontend's use of the generated types. `tsc --noEmit` must accept this file: a generation
// error, or a change to the API that breaks this sample, fails tests/typed_clients.
import createClient from "openapi-fetch";

import type { components, paths } from "./generated/api";
import type {
  CreateTaskMutation,
  CreateTaskMutationVariables,
  TaskPriority,
  TasksQuery,
  TasksQueryVariables,
} from "./generated/graphql";
import type { Task as SchemaTask } from "./generated/schema";

// Compile-time checks: `Expect<Equal<A, B>>` is an error unless A and B are the same type.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

// ---- REST, from /openapi.json (openapi-typescript) ----

export type Task = paths["/api/tasks"]["get"]["responses"][200]["content"]["application/json"][number];
export type NewTask = NonNullable<paths["/api/tasks"]["post"]["requestBody"]>["content"]["application/json"];

export type RestChecks = [
  Expect<Equal<Task, components["schemas"]["TaskOut"]>>,
  Expect<Equal<Task["id"], number>>,
  Expect<Equal<Task["title"], string>>,
  Expect<Equal<Task["completed"], boolean>>,
  Expect<Equal<Task["priority"], "low" | "medium" | "high">>,
  Expect<Equal<Task["due_date"], string | null>>,
  Expect<Equal<Task["created_at"], string>>,
  Expect<Equal<paths["/api/tasks/{task_id}"]["get"]["responses"][200]["content"]["application/json"], Task>>,
];

// The README's example.
export async function pendingTasks(token: string): Promise<Task[]> {
  const api = createClient<paths>({ baseUrl: "http://localhost:8000", headers: { Authorization: `Bearer ${token}` } });
  const { data: tasks, error } = await api.GET("/api/tasks", { params: { query: { status: "pending", limit: 20 } } });
  if (error) throw new Error(`${error.code}: ${error.detail}`);
  for (const t of tasks) console.log(t.id, t.title, t.due_date ?? "no due date"); // number, string, string | null
  return tasks;
}

// One client for the app, the token given per request.
const shared = createClient<paths>({ baseUrl: "http://localhost:8000" });

export async function addTask(token: string, title: string, dueDate: string | null): Promise<Task> {
  const body: NewTask = { title, priority: "high", due_date: dueDate };
  const { data, error } = await shared.POST("/api/tasks", {
    body,
    headers: { Authorization: `Bearer ${token}` },
  });
  if (error !== undefined) throw new Error(error.detail);
  return data;
}

export async function taskById(token: string, id: number): Promise<Task | null> {
  const { data, response } = await shared.GET("/api/tasks/{task_id}", {
    params: { path: { task_id: id } },
    headers: { Authorization: `Bearer ${token}` },
  });
  if (response.status === 404) return null;
  return data ?? null;
}

// Plain fetch works too: the generated types only describe the JSON.
export async function taskTitles(token: string): Promise<string[]> {
  const response = await fetch("http://localhost:8000/api/tasks", {
    headers: { Authorization: `Bearer ${token}` },
  });
  const tasks = (await response.json()) as Task[];
  return tasks.map((task) => `${task.id}: ${task.title}${task.due_date === null ? "" : ` (due ${task.due_date})`}`);
}

// ---- GraphQL, from schema.graphql (graphql-codegen) ----

type ListedTask = TasksQuery["tasks"]["nodes"][number];

export type GraphqlChecks = [
  Expect<Equal<ListedTask["id"], string>>,
  Expect<Equal<ListedTask["title"], string>>,
  Expect<Equal<ListedTask["completed"], boolean>>,
  Expect<Equal<ListedTask["priority"], TaskPriority>>,
  Expect<Equal<TaskPriority, "LOW" | "MEDIUM" | "HIGH">>,
  Expect<Equal<ListedTask["dueDate"], string | null>>,
  Expect<Equal<TasksQuery["tasks"]["totalCount"], number>>,
  Expect<Equal<CreateTaskMutation["createTask"]["createdAt"], string>>,
  Expect<Equal<SchemaTask["priority"], TaskPriority>>,
];

// Code written against the schema's Task accepts what an operation selected of it.
export function overdue(tasks: Pick<SchemaTask, "completed" | "dueDate">[], now: Date): number {
  return tasks.filter((task) => !task.completed && task.dueDate != null && new Date(task.dueDate) < now).length;
}

async function graphql<TData, TVariables>(token: string, query: string, variables: TVariables): Promise<TData> {
  const response = await fetch("http://localhost:8000/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: TData | null; errors?: { message: string }[] };
  if (body.errors !== undefined || body.data == null) {
    throw new Error(body.errors?.map((e) => e.message).join("; ") ?? `HTTP ${response.status}`);
  }
  return body.data;
}

// The same text as operations.graphql (a bundler's graphql loader or the client preset would import it).
const TASKS = `query Tasks($status: TaskStatusFilter = PENDING, $sort: TaskSortField = DUE_DATE, $first: Int = 20, $after: String) {
  me { id email name }
  tasks(status: $status, sort: $sort, first: $first, after: $after) {
    totalCount
    nodes { id title completed priority dueDate }
    pageInfo { hasNextPage endCursor }
  }
}`;

const CREATE_TASK = `mutation CreateTask($input: CreateTaskInput!) {
  createTask(input: $input) { id title completed priority dueDate createdAt }
}`;

// The README's example.
export async function printTasks(token: string): Promise<void> {
  const variables: TasksQueryVariables = { status: "PENDING", first: 20 };
  const res = await fetch("http://localhost:8000/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: TASKS, variables }),
  });
  const { data, errors } = (await res.json()) as { data?: TasksQuery | null; errors?: { message: string }[] };
  if (errors) throw new Error(errors.map((e) => e.message).join("; "));
  data?.tasks.nodes.forEach((t) => console.log(t.id, t.title, t.dueDate)); // string, string, string | null
}

export async function listPage(token: string, after: string | null): Promise<{ titles: string[]; next: string | null }> {
  const variables: TasksQueryVariables = { status: "PENDING", sort: "DUE_DATE", first: 20, after };
  const data = await graphql<TasksQuery, TasksQueryVariables>(token, TASKS, variables);
  const titles = data.tasks.nodes.map((task) => `${task.title} [${task.priority.toLowerCase()}]`);
  if (overdue(data.tasks.nodes, new Date()) > 0) titles.unshift("(some tasks are overdue)");
  const { hasNextPage, endCursor } = data.tasks.pageInfo;
  return { titles, next: hasNextPage ? endCursor : null };
}

export async function createTask(token: string, title: string): Promise<string> {
  const variables: CreateTaskMutationVariables = {
    input: { title, priority: "HIGH", dueDate: "2026-12-01T09:00:00Z" },
  };
  const data = await graphql<CreateTaskMutation, CreateTaskMutationVariables>(token, CREATE_TASK, variables);
  return data.createTask.id;
}
