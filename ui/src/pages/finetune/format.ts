// Small formatting for jobs: durations, percentages, learning rates.

/** 3725 → "1h 2m", 200 → "3m 20s", 42 → "42s". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${rest}s`;
  return `${rest}s`;
}

/** 0.4567 → "45.7 %". */
export function formatPercent(fraction: number | null | undefined): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return "—";
  return `${(fraction * 100).toFixed(1)}%`;
}

/** Small rates read best in exponent form: 2e-5 → "2.0e-5"; loss-like values with 4 significant digits. */
export function formatRate(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  if (value !== 0 && Math.abs(value) < 1e-3) return value.toExponential(1);
  return String(Number(value.toPrecision(4)));
}

/** Jobs that may still change: the list and the detail reload while one is shown. */
export function isActive(status: string): boolean {
  return status === "WAITING" || status === "RUNNING";
}

/** The job will not change any more (the log stream ends after a batch with this status). */
export function isFinished(status: string): boolean {
  return status === "SUCCEEDED" || status === "FAILED" || status === "CANCELLED";
}
