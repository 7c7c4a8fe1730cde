// The word diff of an expected answer and the model's: deleted text struck through, added text highlighted
// (with <del>/<ins>, so screen readers name them too).
import { useMemo, type CSSProperties } from "react";
import { wordDiff } from "./diff";

export function DiffView({ expected, actual, label }: { expected: string; actual: string; label: string }) {
  const parts = useMemo(() => wordDiff(expected, actual), [expected, actual]);
  return (
    <pre className="diff" aria-label={label} data-testid="answer-diff">
      {parts.map((p, i) =>
        p.op === "same" ? <span key={i}>{p.text}</span>
          : p.op === "del" ? <del key={i} className="diff-del">{p.text}</del>
          : <ins key={i} className="diff-add">{p.text}</ins>)}
    </pre>
  );
}

/** A message bubble across the whole width (the question of a sample). */
export const WIDE: CSSProperties = { alignSelf: "stretch", maxWidth: "none" };
