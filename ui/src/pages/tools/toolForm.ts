// The tool form's state and its ToolInput, headers as "Name: value" lines, the egress host list. No React here
// (unit-tested in node).
import type { ToolInput, ToolType } from "../../gql/graphql";

export const TOOL_TYPES: readonly ToolType[] = ["FUNCTION", "CODE_INTERPRETER", "RETRIEVAL"];
/** Only FUNCTION (an HTTP call) is served; the others are refused with UNSUPPORTED_TOOL_TYPE. */
export const SERVED_TOOL_TYPES: readonly ToolType[] = ["FUNCTION"];
export const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] as const;

/** What to do with the stored secret headers on save. */
export type SecretMode = "keep" | "replace" | "remove";

export interface ToolForm {
  name: string;
  description: string;
  toolType: ToolType;
  enabled: boolean;
  remark: string;
  url: string;
  method: string;
  parameters: string;
  headers: string;
  secretHeaders: string;
  secretMode: SecretMode;
  body: string;
  timeoutSeconds: number | null;
  maxResponseBytes: number | null;
  extract: string;
  userAgent: string;
}

export const EMPTY_TOOL: ToolForm = {
  name: "", description: "", toolType: "FUNCTION", enabled: true, remark: "", url: "", method: "GET",
  parameters: '{\n  "type": "object",\n  "properties": {},\n  "required": []\n}', headers: "", secretHeaders: "",
  secretMode: "replace", body: "", timeoutSeconds: 10, maxResponseBytes: 65536, extract: "", userAgent: "",
};

export interface StoredTool {
  name: string;
  description: string;
  toolType: ToolType;
  enabled: boolean;
  remark: string;
  http: {
    url: string; method: string; parameters: unknown; headers: unknown; body: string; timeoutSeconds: number;
    maxResponseBytes: number; extract: string; userAgent: string;
  };
}

/** A stored tool as the form edits it (its secret headers are kept unless replaced or removed). */
export function formOfTool(tool: StoredTool): ToolForm {
  return {
    name: tool.name, description: tool.description, toolType: tool.toolType, enabled: tool.enabled, remark: tool.remark,
    url: tool.http.url, method: tool.http.method || "GET",
    parameters: tool.http.parameters === null || tool.http.parameters === undefined ? "" : JSON.stringify(tool.http.parameters, null, 2),
    headers: headerLines(tool.http.headers), secretHeaders: "", secretMode: "keep", body: tool.http.body,
    timeoutSeconds: tool.http.timeoutSeconds, maxResponseBytes: tool.http.maxResponseBytes, extract: tool.http.extract,
    userAgent: tool.http.userAgent,
  };
}

/** A problem with the form: the field (its GraphQL name), what is wrong, and where. */
export interface FormProblem {
  field: string;
  code: "required" | "json" | "notObject" | "headerLine";
  line?: number;
  detail?: string;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** "Name: value" lines as an object; blank lines are skipped. */
export function parseHeaderLines(text: string, field: string): { value: Record<string, string> } | { problem: FormProblem } {
  const value: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon).trim() : "";
    if (!name || !HEADER_NAME.test(name)) return { problem: { field, code: "headerLine", line: i + 1 } };
    value[name] = line.slice(colon + 1).trim();
  }
  return { value };
}

/** An object of strings as "Name: value" lines. */
export function headerLines(headers: unknown): string {
  if (!headers || typeof headers !== "object" || Array.isArray(headers)) return "";
  return Object.entries(headers as Record<string, unknown>).map(([k, v]) => `${k}: ${String(v)}`).join("\n");
}

function parseObject(text: string, field: string): { value: Record<string, unknown> | null } | { problem: FormProblem } {
  if (!text.trim()) return { value: null };
  try {
    const value: unknown = JSON.parse(text);
    if (!value || typeof value !== "object" || Array.isArray(value)) return { problem: { field, code: "notObject" } };
    return { value: value as Record<string, unknown> };
  } catch (e) {
    return { problem: { field, code: "json", detail: e instanceof Error ? e.message : String(e) } };
  }
}

/** Whether the body template applies: methods that carry a body, or a template that is already there. */
export function bodyRelevant(method: string, body: string): boolean {
  return !["GET", "HEAD", "OPTIONS"].includes(method.toUpperCase()) || body.trim() !== "";
}

/** The {name} placeholders of a URL template. */
export function urlPlaceholders(url: string): string[] {
  const out: string[] = [];
  for (const match of url.matchAll(/\{([^{}]+)\}/g)) if (!out.includes(match[1])) out.push(match[1]);
  return out;
}

/** The form as createTool/updateTool's input; `editing`: secret headers follow secretMode. */
export function toolInput(form: ToolForm, editing: boolean): { input: ToolInput } | { problem: FormProblem } {
  if (!form.name.trim()) return { problem: { field: "name", code: "required" } };
  const base: ToolInput = {
    name: form.name.trim(), description: form.description, toolType: form.toolType, enabled: form.enabled,
    remark: form.remark,
  };
  if (form.toolType !== "FUNCTION") return { input: base };
  if (!form.url.trim()) return { problem: { field: "url", code: "required" } };
  const parameters = parseObject(form.parameters, "parameters");
  if ("problem" in parameters) return parameters;
  const headers = parseHeaderLines(form.headers, "headers");
  if ("problem" in headers) return headers;
  let secretHeaders: Record<string, string> | null = null;
  const mode: SecretMode = editing ? form.secretMode : "replace";
  if (mode === "remove") secretHeaders = {};
  else if (mode === "replace") {
    const parsed = parseHeaderLines(form.secretHeaders, "secretHeaders");
    if ("problem" in parsed) return parsed;
    // creating: none is none; replacing on an edit: what was typed (nothing typed: keep the stored ones)
    secretHeaders = Object.keys(parsed.value).length ? parsed.value : null;
  }
  const body = bodyRelevant(form.method, form.body) ? form.body : "";
  if (body.trim()) {
    try {
      JSON.parse(body);
    } catch (e) {
      return { problem: { field: "body", code: "json", detail: e instanceof Error ? e.message : String(e) } };
    }
  }
  return {
    input: {
      ...base,
      http: {
        url: form.url.trim(), method: form.method, parameters: parameters.value,
        headers: Object.keys(headers.value).length ? headers.value : null, secretHeaders, body,
        timeoutSeconds: form.timeoutSeconds ?? 10, maxResponseBytes: form.maxResponseBytes ?? 65536,
        extract: form.extract.trim(), userAgent: form.userAgent,
      },
    },
  };
}

/** Hosts typed one per line (or separated by commas or spaces): trimmed, lower-cased, each once. */
export function parseHosts(text: string): string[] {
  const out: string[] = [];
  for (const part of text.split(/[\s,]+/)) {
    const host = part.trim().toLowerCase();
    if (host && !out.includes(host)) out.push(host);
  }
  return out;
}
