// Differences around zero: each paired difference's mean and 95 % interval, on a symmetric axis so that an
// interval that crosses 0 (not significant) is seen as one at once.
import { deltaDomain, signed, type DeltaRow } from "./logic";

export function DeltaChart({ rows, title }: { rows: DeltaRow[]; title: string }) {
  const width = 560;
  const left = 200;
  const right = 16;
  const rowH = 22;
  const pad = 14;
  const height = pad + rows.length * rowH + 24;
  const top = deltaDomain(rows);
  const x = (v: number) => left + ((v + top) / (2 * top)) * (width - left - right);
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
        <title>{title}</title>
        <line x1={x(0)} x2={x(0)} y1={0} y2={height - 18} className="axis" />
        <text x={x(-top)} y={height - 4} className="tick">{signed(-top, 2)}</text>
        <text x={x(0)} y={height - 4} className="tick" textAnchor="middle">0</text>
        <text x={x(top)} y={height - 4} className="tick" textAnchor="end">{signed(top, 2)}</text>
        {rows.map((r, i) => {
          const y = pad + i * rowH + rowH / 2;
          const colour = !r.significant ? "var(--muted)" : r.mean >= 0 ? "var(--ok)" : "var(--danger)";
          return (
            <g key={r.label}>
              <text x={left - 6} y={y + 4} className="tick" textAnchor="end">{r.label}</text>
              <line x1={x(r.low)} x2={x(r.high)} y1={y} y2={y} stroke={colour} strokeWidth={3} />
              <circle cx={x(r.mean)} cy={y} r={4} fill={colour} />
              <text x={Math.min(x(r.high) + 4, width - right - 40)} y={y - 5} className="tick">{signed(r.mean)}</text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
