// channelUsage rows (one per channel, model and UTC day) → chart series: one line per model, one point per day
// of the range (days without traffic are 0), x = days since 1970-01-01 so the axis can print the date.
import type { Series } from "../../components/charts";
import type { UsageRow } from "../dashboard/series";

export type { UsageRow } from "../dashboard/series";

export type UsageMetric = "requests" | "tokens" | "promptTokens" | "completionTokens";

const DAY_MS = 86_400_000;
/** At most this many days are filled in (a range of years still draws; thin() does the rest). */
const MAX_FILL = 3660;

/** "YYYY-MM-DD" → days since the epoch (UTC), or NaN. */
export function dayNumber(day: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(day);
  if (!m) return Number.NaN;
  return Math.round(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / DAY_MS);
}

/** Days since the epoch → "YYYY-MM-DD". */
export function dayLabel(n: number): string {
  return new Date(Math.round(n) * DAY_MS).toISOString().slice(0, 10);
}

export function metricOf(row: UsageRow, metric: UsageMetric): number {
  switch (metric) {
    case "requests": return row.requests;
    case "promptTokens": return row.promptTokens;
    case "completionTokens": return row.completionTokens;
    case "tokens": return row.promptTokens + row.completionTokens;
  }
}

/**
 * One series per model (summed over channels), sorted by model name, with a point for every day from `start`
 * to `end` (or from the first to the last day with rows when not given).
 */
export function usageSeries(rows: readonly UsageRow[], metric: UsageMetric,
                            range: { start?: string | null; end?: string | null } = {}): Series[] {
  const byModel = new Map<string, Map<number, number>>();
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of rows) {
    const day = dayNumber(row.day);
    if (Number.isNaN(day)) continue;
    lo = Math.min(lo, day);
    hi = Math.max(hi, day);
    let days = byModel.get(row.model);
    if (!days) byModel.set(row.model, (days = new Map()));
    days.set(day, (days.get(day) ?? 0) + metricOf(row, metric));
  }
  if (byModel.size === 0) return [];
  const start = range.start ? dayNumber(range.start) : Number.NaN;
  const end = range.end ? dayNumber(range.end) : Number.NaN;
  const from = Number.isNaN(start) ? lo : Math.min(start, lo);
  let to = Number.isNaN(end) ? hi : Math.max(end, hi);
  if (to - from > MAX_FILL) to = from + MAX_FILL;
  return Array.from(byModel.keys()).sort().map((model) => {
    const days = byModel.get(model)!;
    const points: { x: number; y: number }[] = [];
    for (let d = from; d <= to; d++) points.push({ x: d, y: days.get(d) ?? 0 });
    return { name: model, points };
  });
}

export interface UsageTotals {
  requests: number;
  promptTokens: number;
  completionTokens: number;
}

export function usageTotals(rows: readonly UsageRow[]): UsageTotals {
  const totals: UsageTotals = { requests: 0, promptTokens: 0, completionTokens: 0 };
  for (const row of rows) {
    totals.requests += row.requests;
    totals.promptTokens += row.promptTokens;
    totals.completionTokens += row.completionTokens;
  }
  return totals;
}
