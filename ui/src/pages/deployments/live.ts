// Pure logic of the deployments area: which actions a status allows, how live status events are merged into
// what a page shows, and how a log chunk (lines + cursor) becomes numbered lines.
import type { LogLine } from "../../components/LogView";
import type { DeploymentStatus } from "../../gql/graphql";

export const DEPLOYMENT_STATUSES: readonly DeploymentStatus[] = [
  "PENDING", "STARTING", "RUNNING", "DEGRADED", "FAILED", "STOPPING", "STOPPED",
];

/** A model with a deployment in one of these counts as deployed (the server refuses a second deploy). */
export const ACTIVE_STATUSES: ReadonlySet<DeploymentStatus> = new Set<DeploymentStatus>([
  "PENDING", "STARTING", "RUNNING", "DEGRADED", "STOPPING",
]);

/** On the way somewhere: lists refresh now and then while one shows, in case a live event was missed. */
export const TRANSITIONAL_STATUSES: ReadonlySet<DeploymentStatus> = new Set<DeploymentStatus>([
  "PENDING", "STARTING", "STOPPING",
]);

export const mayUndeploy = (s: DeploymentStatus): boolean => s !== "STOPPED" && s !== "STOPPING";
export const mayScale = (s: DeploymentStatus): boolean =>
  s === "RUNNING" || s === "DEGRADED" || s === "FAILED" || s === "STARTING" || s === "PENDING";
export const mayRedeploy = (s: DeploymentStatus): boolean => s !== "STOPPING";

export interface DeploymentRef {
  id: string;
  modelId: string;
  status: DeploymentStatus;
}

/** Compare two numeric ids (BIGINTs: compared as strings of digits, no precision loss). */
export function compareIds(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, "");
  const y = b.replace(/^0+(?=\d)/, "");
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The newest deployment (highest id) of each model. */
export function latestPerModel<T extends DeploymentRef>(items: Iterable<T>): Map<string, T> {
  const out = new Map<string, T>();
  for (const d of items) {
    const have = out.get(d.modelId);
    if (!have || compareIds(d.id, have.id) >= 0) out.set(d.modelId, d);
  }
  return out;
}

/** Does a deployment with this status belong in a list filtered by `filter` (empty: all)? */
export function matchesFilter(status: DeploymentStatus, filter: readonly DeploymentStatus[]): boolean {
  return filter.length === 0 || filter.includes(status);
}

/**
 * A chunk of deploymentLogs: `lines` are the last lines before `cursor` (the count of lines so far), so line i
 * is number cursor - lines.length + i + 1 (1-based, stable across polls).
 */
export function numberLogLines(lines: readonly string[], cursor: number): LogLine[] {
  const first = cursor - lines.length + 1;
  return lines.map((text, i) => ({ seq: first + i, text }));
}

/** Live events by id, each with when it arrived (ms). */
export type Overlay<T> = Readonly<Record<string, { item: T; at: number }>>;

export function putOverlay<T extends { id: string }>(overlay: Overlay<T>, item: T, at: number): Overlay<T> {
  return { ...overlay, [item.id]: { item, at } };
}

/**
 * A reload asked for at `requestedAt` answers for everything that happened before it: events that arrived
 * earlier are dropped (the reloaded rows are as new); later ones stay on top of the rows.
 */
export function pruneOverlay<T>(overlay: Overlay<T>, requestedAt: number): Overlay<T> {
  const next: Record<string, { item: T; at: number }> = {};
  let dropped = false;
  for (const [id, entry] of Object.entries(overlay)) {
    if (entry.at >= requestedAt) next[id] = entry;
    else dropped = true;
  }
  return dropped ? next : overlay;
}

/** The loaded rows with live events applied; `extra` are events about ids the rows do not hold. */
export function applyOverlay<T extends { id: string }>(rows: readonly T[], overlay: Overlay<T>): { rows: T[]; extra: T[] } {
  const seen = new Set<string>();
  const out = rows.map((r) => {
    seen.add(r.id);
    return overlay[r.id]?.item ?? r;
  });
  const extra = Object.values(overlay).filter((e) => !seen.has(e.item.id)).map((e) => e.item);
  return { rows: out, extra };
}

/** How often the detail page polls: health probes, and the log tail (deploymentLogs from its cursor). */
export const HEALTH_POLL_MS = 5000;
export const LOG_POLL_MS = 2000;
/** Log lines kept in memory per replica (older ones fall off the front). */
export const LOG_CAP = 5000;

/** The newest probe of each worker, in the order workers first appear. */
export function latestProbes<T extends { workerAddress: string; checkedAt: string }>(probes: readonly T[]): T[] {
  const out = new Map<string, T>();
  for (const p of probes) {
    const have = out.get(p.workerAddress);
    if (!have || Date.parse(p.checkedAt) > Date.parse(have.checkedAt)) out.set(p.workerAddress, p);
  }
  return [...out.values()];
}
