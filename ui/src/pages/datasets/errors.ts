// A dataset mutation's typed errors: those naming a line of the imported file are shown next to the lines.
import type { LineError } from "../../api/client";

export interface DatasetErrorLike {
  message: string;
  field?: string | null;
  line?: number | null;
}

export function splitErrors(errors: readonly DatasetErrorLike[]): { lines: LineError[]; other: string[] } {
  const lines: LineError[] = [];
  const other: string[] = [];
  for (const e of errors) {
    if (typeof e.line === "number" && e.line >= 1) lines.push({ line: e.line, message: e.message });
    else other.push(e.field ? `${e.field}: ${e.message}` : e.message);
  }
  return { lines, other };
}

/** The REST value of a dataset format (GET /datasets/{id}/export?format=…). */
export function restFormat(format: string): string {
  return format.toLowerCase();
}

/** GET /datasets/{id}/export?format=…: streamed JSONL, same headers as GraphQL. */
export function exportUrl(datasetId: string, format: string): string {
  return `/datasets/${encodeURIComponent(datasetId)}/export?format=${encodeURIComponent(restFormat(format))}`;
}
