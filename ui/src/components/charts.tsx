// Small SVG charts: enough for loss curves, usage over time and metric comparisons without a charting library
// (the first load stays small; bench/ui.py measures it). Large series are thinned to the chart's width.
import { useMemo } from "react";

export interface Series {
  name: string;
  points: readonly { x: number; y: number }[];
}

const COLORS = ["var(--c1)", "var(--c2)", "var(--c3)", "var(--c4)", "var(--c5)", "var(--c6)"];

/** Keep at most `max` points, evenly spaced, always the first and the last (a live chart of 100k steps stays light). */
export function thin<T>(points: readonly T[], max: number): T[] {
  if (points.length <= max) return points.slice();
  const out: T[] = [];
  const step = (points.length - 1) / (max - 1);
  for (let i = 0; i < max; i++) out.push(points[Math.round(i * step)]);
  return out;
}

export function extent(values: number[]): [number, number] {
  if (values.length === 0) return [0, 1];
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === hi) return [lo - 1, hi + 1];
  return [lo, hi];
}

export function LineChart({ series, title, height = 180, formatX, formatY }: {
  series: Series[]; title: string; height?: number; formatX?: (x: number) => string; formatY?: (y: number) => string;
}) {
  const width = 560;
  const pad = { l: 48, r: 12, t: 10, b: 24 };
  const thinned = useMemo(() => series.map((s) => ({ ...s, points: thin(s.points, 400) })), [series]);
  const xs = thinned.flatMap((s) => s.points.map((p) => p.x));
  const ys = thinned.flatMap((s) => s.points.map((p) => p.y));
  const [x0, x1] = extent(xs);
  const [y0, y1] = extent(ys);
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const sy = (y: number) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  const fy = formatY ?? ((y: number) => (Math.abs(y) >= 1000 ? y.toExponential(1) : y.toPrecision(3)));
  const fx = formatX ?? ((x: number) => String(Math.round(x)));
  const total = series.reduce((n, s) => n + s.points.length, 0);
  return (
    <figure className="chart" data-points={total}>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
        <title>{title}</title>
        <line x1={pad.l} y1={height - pad.b} x2={width - pad.r} y2={height - pad.b} className="axis" />
        <line x1={pad.l} y1={pad.t} x2={pad.l} y2={height - pad.b} className="axis" />
        <text x={pad.l - 4} y={pad.t + 8} className="tick" textAnchor="end">{ys.length ? fy(y1) : ""}</text>
        <text x={pad.l - 4} y={height - pad.b} className="tick" textAnchor="end">{ys.length ? fy(y0) : ""}</text>
        <text x={pad.l} y={height - 6} className="tick">{xs.length ? fx(x0) : ""}</text>
        <text x={width - pad.r} y={height - 6} className="tick" textAnchor="end">{xs.length ? fx(x1) : ""}</text>
        {thinned.map((s, i) => (
          <polyline key={s.name} fill="none" stroke={COLORS[i % COLORS.length]} strokeWidth={2}
            points={s.points.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" ")} />
        ))}
      </svg>
      <figcaption className="legend">
        <strong>{title}</strong>
        {series.map((s, i) => (
          <span key={s.name}><i style={{ background: COLORS[i % COLORS.length] }} />{s.name}</span>
        ))}
      </figcaption>
    </figure>
  );
}

export interface Bar {
  label: string;
  values: { name: string; value: number; low?: number | null; high?: number | null }[];
}

/** Grouped horizontal bars, optionally with an interval (e.g. a 95 % confidence interval) drawn over each. */
export function BarChart({ bars, title, max }: { bars: Bar[]; title: string; max?: number }) {
  const names = Array.from(new Set(bars.flatMap((b) => b.values.map((v) => v.name))));
  const top = max ?? Math.max(1e-9, ...bars.flatMap((b) => b.values.map((v) => Math.max(v.value, v.high ?? 0))));
  const rowH = 16;
  const groupH = names.length * rowH + 10;
  const width = 560;
  const left = 120;
  const scale = (v: number) => (Math.max(0, v) / top) * (width - left - 60);
  const height = bars.length * groupH + 4;
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
        <title>{title}</title>
        {bars.map((bar, gi) => (
          <g key={bar.label} transform={`translate(0 ${gi * groupH})`}>
            <text x={left - 6} y={groupH / 2} className="tick" textAnchor="end">{bar.label}</text>
            {bar.values.map((v) => {
              const i = names.indexOf(v.name);
              const y = 4 + i * rowH;
              return (
                <g key={v.name}>
                  <rect x={left} y={y} width={scale(v.value)} height={rowH - 4} fill={COLORS[i % COLORS.length]} />
                  {v.low !== null && v.low !== undefined && v.high !== null && v.high !== undefined ? (
                    <line x1={left + scale(v.low)} x2={left + scale(v.high)} y1={y + (rowH - 4) / 2} y2={y + (rowH - 4) / 2}
                      className="interval" />
                  ) : null}
                  <text x={left + scale(v.value) + 4} y={y + rowH - 6} className="tick">{v.value.toFixed(3)}</text>
                </g>
              );
            })}
          </g>
        ))}
      </svg>
      <figcaption className="legend">
        <strong>{title}</strong>
        {names.map((n, i) => <span key={n}><i style={{ background: COLORS[i % COLORS.length] }} />{n}</span>)}
      </figcaption>
    </figure>
  );
}
