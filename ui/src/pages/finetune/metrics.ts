// Training curves: the job's stored points (fineTuningMetrics) and the points parsed from the JSON step lines
// of the live log ({"type": "step", "step", "epoch", "loss", "learning_rate", ...}), merged without duplicates.
import type { LogLine } from "../../components/LogView";
import type { Series } from "../../components/charts";

export interface StepPoint {
  step: number;
  epoch: number | null;
  loss: number | null;
  learningRate: number | null;
}

function finite(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** A step line as a chart point; null for any other line (text, start/eval/done events, broken JSON). */
export function parseStepLine(line: string): StepPoint | null {
  const text = line.trimStart();
  if (!text.startsWith("{") || !text.includes('"step"')) return null;
  let event: unknown;
  try {
    event = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof event !== "object" || event === null || Array.isArray(event)) return null;
  const e = event as Record<string, unknown>;
  if (e.type !== undefined && e.type !== "step") return null;
  const step = finite(e.step);
  if (step === null) return null;
  const loss = finite(e.loss);
  const learningRate = finite(e.learning_rate);
  if (e.type === undefined && loss === null && learningRate === null) return null;
  return { step, epoch: finite(e.epoch), loss, learningRate };
}

/** The stored points, then the live ones past their last step (a replayed line is not plotted twice). */
export function mergePoints(initial: readonly StepPoint[], live: readonly StepPoint[]): StepPoint[] {
  let last = -Infinity;
  for (const p of initial) if (p.step > last) last = p.step;
  const out = initial.slice();
  for (const p of live) {
    if (p.step > last) {
      out.push(p);
      last = p.step;
    }
  }
  return out;
}

/** Loss and learning rate over steps (points without the value are left out). */
export function chartSeries(points: readonly StepPoint[], names: { loss: string; learningRate: string }): {
  loss: Series[];
  learningRate: Series[];
} {
  const loss: { x: number; y: number }[] = [];
  const rate: { x: number; y: number }[] = [];
  for (const p of points) {
    if (p.loss !== null) loss.push({ x: p.step, y: p.loss });
    if (p.learningRate !== null) rate.push({ x: p.step, y: p.learningRate });
  }
  return { loss: [{ name: names.loss, points: loss }], learningRate: [{ name: names.learningRate, points: rate }] };
}

/**
 * Follows a log stream: lines at or before the last seq seen are dropped (a re-sent replay after a reconnect),
 * the new ones are returned with the step points among them.
 */
export class LogCursor {
  last: number;
  constructor(after = 0) {
    this.last = after;
  }

  take(lines: readonly { seq: number; line: string }[]): { lines: LogLine[]; points: StepPoint[] } {
    const out: LogLine[] = [];
    const points: StepPoint[] = [];
    for (const l of lines) {
      if (l.seq <= this.last) continue;
      this.last = l.seq;
      out.push({ seq: l.seq, text: l.line });
      const point = parseStepLine(l.line);
      if (point) points.push(point);
    }
    return { lines: out, points };
  }
}
