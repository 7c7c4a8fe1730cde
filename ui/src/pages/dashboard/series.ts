// Channel usage rows (per channel, model and day) into chart series: one series per model or per channel,
// one point per day (days without traffic are zero, so lines do not skip them).
import type { Series } from "../../components/charts";

export interface UsageRow {
  channelId: string;
  model: string;
  day: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
}

export type Measure = "requests" | "tokens";

export function daysBetween(start: Date, end: Date): string[] {
  const days: string[] = [];
  const d = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate()));
  const last = Date.UTC(end.getUTCFullYear(), end.getUTCMonth(), end.getUTCDate());
  while (d.getTime() <= last) {
    days.push(d.toISOString().slice(0, 10));
    d.setUTCDate(d.getUTCDate() + 1);
  }
  return days;
}

export function usageSeries(rows: readonly UsageRow[], days: readonly string[], by: (row: UsageRow) => string,
  measure: Measure): Series[] {
  const index = new Map(days.map((d, i) => [d, i]));
  const totals = new Map<string, number[]>();
  for (const row of rows) {
    const i = index.get(row.day.slice(0, 10));
    if (i === undefined) continue;
    const name = by(row);
    let values = totals.get(name);
    if (!values) {
      values = days.map(() => 0);
      totals.set(name, values);
    }
    values[i] += measure === "requests" ? row.requests : row.promptTokens + row.completionTokens;
  }
  return [...totals.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, values]) => ({ name, points: values.map((y, x) => ({ x, y })) }));
}

/** Share of answers that were not 2xx, or null without traffic. */
export function errorRate(counts: readonly { status: string; requests: number }[]): number | null {
  let total = 0;
  let failed = 0;
  for (const c of counts) {
    total += c.requests;
    if (!c.status.startsWith("2")) failed += c.requests;
  }
  return total ? failed / total : null;
}
