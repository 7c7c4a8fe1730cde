// A sample's messages as editable rows or as JSON, checked before saving with the platform's rules for dataset
// samples (domain/chat_format.py, datasets/service.py check_fits): roles system/user/assistant, a system message
// only first, at least one assistant message; an ALPACA dataset also needs user and assistant in turn, ending
// with the assistant.
import type { DatasetFormat } from "../../gql/graphql";

export const ROLES = ["system", "user", "assistant"] as const;
export type Role = (typeof ROLES)[number];

export interface MessageRow {
  role: string;
  content: string;
}

export type MessageProblem =
  | { code: "empty" }
  | { code: "json"; detail: string }
  | { code: "shape" }
  | { code: "item"; index: number }
  | { code: "role"; index: number }
  | { code: "content"; index: number }
  | { code: "systemFirst"; index: number }
  | { code: "noAssistant" }
  | { code: "alternate"; index: number; expected: Role }
  | { code: "lastAssistant" };

/** The first problem of the rows for a dataset in `format`, or null. */
export function checkMessages(rows: readonly MessageRow[], format: DatasetFormat): MessageProblem | null {
  if (rows.length === 0) return { code: "empty" };
  for (let i = 0; i < rows.length; i++) {
    if (!(ROLES as readonly string[]).includes(rows[i].role)) return { code: "role", index: i };
    if (typeof rows[i].content !== "string") return { code: "content", index: i };
    if (i > 0 && rows[i].role === "system") return { code: "systemFirst", index: i };
  }
  const offset = rows[0].role === "system" ? 1 : 0;
  const chat = rows.slice(offset);
  if (!chat.some((m) => m.role === "assistant")) return { code: "noAssistant" };
  if (format === "ALPACA") {
    for (let i = 0; i < chat.length; i++) {
      const expected: Role = i % 2 === 0 ? "user" : "assistant";
      if (chat[i].role !== expected) return { code: "alternate", index: i + offset, expected };
    }
    if (chat[chat.length - 1].role !== "assistant") return { code: "lastAssistant" };
  }
  return null;
}

/** Rows from JSON text: a list of {role, content}, or an object with "messages" (an OpenAI JSONL line). */
export function parseMessages(textValue: string): { rows: MessageRow[] } | { problem: MessageProblem } {
  let value: unknown;
  try {
    value = JSON.parse(textValue);
  } catch (e) {
    return { problem: { code: "json", detail: e instanceof Error ? e.message : String(e) } };
  }
  if (value && typeof value === "object" && !Array.isArray(value) && "messages" in value) {
    value = (value as { messages: unknown }).messages;
  }
  if (!Array.isArray(value)) return { problem: { code: "shape" } };
  const rows: MessageRow[] = [];
  for (let i = 0; i < value.length; i++) {
    const item = value[i] as unknown;
    if (!item || typeof item !== "object" || Array.isArray(item)) return { problem: { code: "item", index: i } };
    const { role, content } = item as { role?: unknown; content?: unknown };
    if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role)) return { problem: { code: "role", index: i } };
    if (typeof content !== "string") return { problem: { code: "content", index: i } };
    rows.push({ role, content });
  }
  return { rows };
}

/** The rows as the JSON text area shows them. */
export function messagesJson(rows: readonly MessageRow[]): string {
  return JSON.stringify(rows.map((r) => ({ role: r.role, content: r.content })), null, 2);
}

/** The role the next added row gets: user after system/assistant/nothing, else assistant. */
export function nextRole(rows: readonly MessageRow[]): Role {
  const last = rows[rows.length - 1]?.role;
  return last === "user" ? "assistant" : "user";
}

/** A short one-line view of a conversation for lists. */
export function preview(rows: readonly MessageRow[], max = 140): string {
  const text = rows.map((r) => `${r.role}: ${r.content.replace(/\s+/g, " ").trim()}`).join(" · ");
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
