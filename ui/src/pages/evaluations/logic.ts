// Pure helpers of the evaluation pages: what may be done in which state, chart bars from results and comparisons,
// the question of a sample, durations. No React here (unit-tested in node).
import type { Bar } from "../../components/charts";

export const METRICS = ["EXACT_MATCH", "CONTAINS", "BLEU", "CHRF", "ROUGE_L", "JUDGE", "PAIRWISE"] as const;
export type Metric = (typeof METRICS)[number];
export const STATUSES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"] as const;
export type Status = (typeof STATUSES)[number];

const FINISHED: readonly string[] = ["SUCCEEDED", "FAILED", "CANCELLED"];

export function isFinished(status: string): boolean {
  return FINISHED.includes(status);
}

/** cancelEvaluation: pending or running. */
export function canCancel(status: string): boolean {
  return status === "PENDING" || status === "RUNNING";
}

/** retryEvaluation: finished, and not a success with every sample scored. */
export function canRetry(status: string, failed: number): boolean {
  return isFinished(status) && !(status === "SUCCEEDED" && failed === 0);
}

/** deleteEvaluation: finished. */
export function canDelete(status: string): boolean {
  return isFinished(status);
}

/** The metric as the mismatch export's query parameter names it (exact_match, rouge_l …). */
export function metricParam(metric: string): string {
  return metric.toLowerCase();
}

/** "1, 2,,3,2" → ["1", "2", "3"]: ids of a ?ids= list, in order, once each. */
export function parseIds(value: string | null): string[] {
  const out: string[] = [];
  for (const part of (value ?? "").split(",")) {
    const id = part.trim();
    if (id && !out.includes(id)) out.push(id);
  }
  return out;
}

/** Seconds as "1 h 02 min", "3 min 05 s" or "12 s"; "—" when unknown. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  const two = (n: number) => String(n).padStart(2, "0");
  if (h > 0) return `${h} h ${two(m)} min`;
  if (m > 0) return `${m} min ${two(rest)} s`;
  return `${rest} s`;
}

export interface Estimate {
  metric: string;
  mean: number;
  low: number;
  high: number;
  n?: number;
}

/** Finished results: one bar per metric with its 95 % interval. */
export function resultBars(results: readonly Estimate[], name: string): Bar[] {
  return results.map((r) => ({ label: r.metric, values: [{ name, value: r.mean, low: r.low, high: r.high }] }));
}

/** Means so far (no interval yet). */
export function meanBars(means: readonly { metric: string; value: number }[], name: string): Bar[] {
  return means.map((m) => ({ label: m.metric, values: [{ name, value: m.value }] }));
}

export interface ComparedEvaluation {
  id: string;
  modelName: string;
  gateRole?: string | null;
}

/** A compared evaluation's legend name: unique (the chart keys its colours by name). */
export function evaluationLabel(ev: ComparedEvaluation): string {
  return `#${ev.id} ${ev.modelName}${ev.gateRole ? ` (${ev.gateRole})` : ""}`;
}

/** compareEvaluations' rows as grouped bars: per metric, each evaluation's mean with its interval. */
export function comparisonBars(
  evaluations: readonly ComparedEvaluation[],
  rows: readonly { metric: string; estimates: readonly Estimate[] }[],
): Bar[] {
  return rows.map((row) => ({
    label: row.metric,
    values: row.estimates.map((e, i) => ({
      name: evaluations[i] ? evaluationLabel(evaluations[i]) : `#${i + 1}`,
      value: e.mean,
      low: e.low,
      high: e.high,
    })),
  }));
}

export interface DeltaRow {
  label: string;
  mean: number;
  low: number;
  high: number;
  significant: boolean;
}

/** Paired differences (each evaluation after the first minus the first) per metric, for the delta chart. */
export function deltaRows(
  evaluations: readonly ComparedEvaluation[],
  rows: readonly { metric: string; deltas: readonly { evaluationId: string; mean: number; low: number; high: number; significant: boolean }[] }[],
): DeltaRow[] {
  const out: DeltaRow[] = [];
  for (const row of rows) {
    for (const d of row.deltas) {
      const ev = evaluations.find((e) => e.id === d.evaluationId);
      out.push({ label: `${row.metric} · ${ev ? evaluationLabel(ev) : `#${d.evaluationId}`}`, mean: d.mean, low: d.low,
        high: d.high, significant: d.significant });
    }
  }
  return out;
}

/** A symmetric range around 0 that holds every interval (at least ±0.05, so a tiny one is still visible). */
export function deltaDomain(rows: readonly { low: number; high: number; mean: number }[]): number {
  let top = 0.05;
  for (const r of rows) top = Math.max(top, Math.abs(r.low), Math.abs(r.high), Math.abs(r.mean));
  return top;
}

/** "+0.061", "-0.020", "0.000" */
export function signed(value: number, digits = 3): string {
  const text = value.toFixed(digits);
  return value > 0 && Number(text) !== 0 ? `+${text}` : Number(text) === 0 ? (0).toFixed(digits) : text;
}

interface Message {
  role?: unknown;
  content?: unknown;
}

function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((c) => (c && typeof c === "object" && "text" in c ? String((c as { text: unknown }).text) : ""))
      .join("");
  }
  return content === null || content === undefined ? "" : JSON.stringify(content);
}

/** A sample's messages (OpenAI chat messages, JSON) as role + text. */
export function chatMessages(messages: unknown): { role: string; content: string }[] {
  if (!Array.isArray(messages)) return [];
  return messages.map((m: Message) => ({ role: typeof m?.role === "string" ? m.role : "?", content: contentText(m?.content) }));
}

/** The question a sample's answer replies to: its last user message. */
export function question(messages: unknown): string {
  const all = chatMessages(messages);
  for (let i = all.length - 1; i >= 0; i--) if (all[i].role === "user") return all[i].content;
  return all.length ? all[all.length - 1].content : "";
}

/** A score of a sample on one metric, or null. */
export function scoreOf(scores: readonly { metric: string; value: number }[], metric: string): number | null {
  return scores.find((s) => s.metric === metric)?.value ?? null;
}

/** Filters of the list from the query string: ?status=RUNNING&modelId=3&fineTuningJobId=7 */
export function listSearch(params: { status?: string | null; modelId?: string | null; fineTuningJobId?: string | null }): string {
  const q = new URLSearchParams();
  if (params.status) q.set("status", params.status);
  if (params.modelId) q.set("modelId", params.modelId);
  if (params.fineTuningJobId) q.set("fineTuningJobId", params.fineTuningJobId);
  const s = q.toString();
  return s ? `?${s}` : "";
}
