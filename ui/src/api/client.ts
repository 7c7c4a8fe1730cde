// The one way the app talks to the platform: GraphQL over HTTP for queries and mutations, graphql-transport-ws
// for subscriptions (one shared socket), and plain HTTP for file uploads. Credentials come from the session.
import { createClient, type Client } from "graphql-ws";
import type { TypedDocumentString } from "../gql/graphql";

export interface Credentials {
  token: string | null;
  tenantId: string | null;
}

let credentials: Credentials = { token: null, tenantId: null };
let wsClient: Client | null = null;
let onUnauthenticated: () => void = () => {};

/** Called by the session whenever the token or the tenant changes: the socket is re-opened with the new ones. */
export function setCredentials(next: Credentials): void {
  const changed = next.token !== credentials.token || next.tenantId !== credentials.tenantId;
  credentials = next;
  if (changed && wsClient) {
    void wsClient.dispose();
    wsClient = null;
  }
}

export function setUnauthenticatedHandler(handler: () => void): void {
  onUnauthenticated = handler;
}

export function authHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  if (credentials.token) headers.Authorization = `Bearer ${credentials.token}`;
  if (credentials.tenantId) headers["X-Tenant-Id"] = credentials.tenantId;
  return headers;
}

/** An error the API answered (top-level GraphQL error or HTTP failure), with its code when it has one. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string | null = null,
    readonly status: number | null = null,
  ) {
    super(message);
  }
}

interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

export async function gql<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
  ...[variables]: TVariables extends Record<string, never> ? [] : [TVariables]
): Promise<TResult> {
  let response: Response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...authHeaders() },
      body: JSON.stringify({ query: document.toString(), variables: variables ?? {} }),
    });
  } catch {
    throw new ApiError("network", "NETWORK");
  }
  let body: GraphQLResponse<TResult>;
  try {
    body = (await response.json()) as GraphQLResponse<TResult>;
  } catch {
    throw new ApiError(`HTTP ${response.status}`, "HTTP", response.status);
  }
  const first = body.errors?.[0];
  if (first) {
    const code = first.extensions?.code ?? null;
    if (code === "UNAUTHENTICATED") onUnauthenticated();
    throw new ApiError(first.message, code, response.status);
  }
  if (!body.data) throw new ApiError(`HTTP ${response.status}`, "HTTP", response.status);
  return body.data;
}

/** A payload's typed errors ({code, message, field}) as one message, or null when there are none. */
export function payloadError(payload: { errors?: { message: string; field?: string | null }[] } | null): string | null {
  const errors = payload?.errors ?? [];
  if (errors.length === 0) return null;
  return errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join("; ");
}

function socket(): Client {
  if (!wsClient) {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
    const snapshot = { ...credentials };
    wsClient = createClient({
      url,
      lazy: true,
      retryAttempts: Infinity,
      shouldRetry: () => true,
      connectionParams: () => ({
        ...(snapshot.token ? { Authorization: `Bearer ${snapshot.token}` } : {}),
        ...(snapshot.tenantId ? { "X-Tenant-Id": snapshot.tenantId } : {}),
      }),
    });
  }
  return wsClient;
}

export interface SubscriptionHandlers<T> {
  next: (data: T) => void;
  error?: (error: ApiError) => void;
  complete?: () => void;
}

/** Subscribe; returns the function that stops it. */
export function subscribe<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  handlers: SubscriptionHandlers<TResult>,
): () => void {
  return socket().subscribe<TResult>(
    { query: document.toString(), variables: variables as Record<string, unknown> },
    {
      next: (message) => {
        const first = message.errors?.[0];
        if (first) {
          handlers.error?.(new ApiError(first.message, (first.extensions?.code as string | undefined) ?? null));
          return;
        }
        if (message.data) handlers.next(message.data as TResult);
      },
      error: (err) => {
        const first = Array.isArray(err) ? (err[0] as { message?: string } | undefined) : undefined;
        const message = first?.message ?? (err instanceof Error ? err.message : "subscription failed");
        handlers.error?.(new ApiError(message));
      },
      complete: () => handlers.complete?.(),
    },
  );
}

/** A file as POST /files answers it. */
export interface UploadedFile {
  id: string;
  name: string;
  purpose: string;
  size: number;
  lineCount: number;
  tokenCount: number;
  createdAt: string | null;
}

/** A problem with one line of an uploaded JSONL file, as the platform reports it. */
export interface LineError {
  line: number;
  message: string;
}

export class UploadError extends ApiError {
  constructor(
    message: string,
    readonly lineErrors: LineError[],
    status: number,
  ) {
    super(message, "INVALID", status);
  }
}

/** POST /files: the body is the file itself; JSONL errors come back with their line numbers. */
export async function uploadFile(file: Blob, filename: string, purpose: string): Promise<UploadedFile> {
  const params = new URLSearchParams({ purpose, filename });
  let response: Response;
  try {
    response = await fetch(`/files?${params.toString()}`, { method: "POST", headers: authHeaders(), body: file });
  } catch {
    throw new ApiError("network", "NETWORK");
  }
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) throw toUploadError(body, response.status);
  return body.file as UploadedFile;
}

export function toUploadError(body: Record<string, unknown>, status: number): UploadError {
  // {"error": {"code", "message", "field", "lines": [{"line", "message"}]}} (web/rest.py)
  const error = (body.error ?? {}) as Record<string, unknown>;
  const lines: LineError[] = [];
  for (const item of Array.isArray(error.lines) ? error.lines : []) {
    const { line, message } = item as { line?: unknown; message?: unknown };
    if (typeof line === "number") lines.push({ line, message: String(message ?? "") });
  }
  const message = String(error.message ?? `HTTP ${status}`);
  return new UploadError(message, lines, status);
}
