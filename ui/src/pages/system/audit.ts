// The audit page's filter: the form's values → AuditLogFilter, and the same test applied to live rows
// (auditLogAdded sends every row; only those the filter would list are shown).
import type { AuditLogFilter } from "../../gql/graphql";
import { localInputToIso } from "../channels/time";

export interface AuditFilterForm {
  operator: string;
  tenantId: string;
  operation: string;
  traceId: string;
  /** "" any, "true" succeeded, "false" failed */
  success: "" | "true" | "false";
  minDurationMs: number | null;
  /** datetime-local values */
  start: string;
  end: string;
}

export function emptyAuditFilter(): AuditFilterForm {
  return { operator: "", tenantId: "", operation: "", traceId: "", success: "", minDurationMs: null, start: "", end: "" };
}

/** Only the fields that filter (the API matches operator, operation and trace id exactly). */
export function toAuditFilter(f: AuditFilterForm): AuditLogFilter {
  const filter: AuditLogFilter = {};
  if (f.operator.trim()) filter.operator = f.operator.trim();
  if (f.tenantId) filter.tenantId = f.tenantId;
  if (f.operation.trim()) filter.operation = f.operation.trim();
  if (f.traceId.trim()) filter.traceId = f.traceId.trim();
  if (f.success) filter.success = f.success === "true";
  if (f.minDurationMs !== null && Number.isFinite(f.minDurationMs)) filter.minDurationMs = Math.max(0, Math.round(f.minDurationMs));
  const start = localInputToIso(f.start);
  if (start) filter.start = start;
  const end = localInputToIso(f.end);
  if (end) filter.end = end;
  return filter;
}

export interface AuditRowLike {
  operator: string;
  tenantId?: string | null;
  operation: string;
  traceId: string;
  success: boolean;
  durationMs: number;
  createdAt?: string | null;
}

/** Whether the server would list `row` under `filter` (start inclusive, end exclusive, as the API). */
export function matchesAuditFilter(row: AuditRowLike, filter: AuditLogFilter): boolean {
  if (filter.operator && row.operator !== filter.operator) return false;
  if (filter.tenantId && (row.tenantId ?? null) !== filter.tenantId) return false;
  if (filter.operation && row.operation !== filter.operation) return false;
  if (filter.traceId && row.traceId !== filter.traceId) return false;
  if (filter.success !== null && filter.success !== undefined && row.success !== filter.success) return false;
  if (filter.minDurationMs !== null && filter.minDurationMs !== undefined && row.durationMs < filter.minDurationMs) return false;
  if (filter.start || filter.end) {
    const at = row.createdAt ? new Date(row.createdAt).getTime() : Number.NaN;
    if (Number.isNaN(at)) return false;
    if (filter.start && at < new Date(filter.start).getTime()) return false;
    if (filter.end && at >= new Date(filter.end).getTime()) return false;
  }
  return true;
}

/** Pretty JSON of a row's variables (JSON scalar: any value). */
export function prettyJson(value: unknown): string {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  try {
    return JSON.stringify(value ?? null, null, 2);
  } catch {
    return String(value);
  }
}
