// A virtualised log: only the visible lines are in the DOM, so a job writing thousands of lines a minute
// stays smooth. It follows the end unless the reader scrolls up.
import { useEffect, useRef, useState } from "react";

const LINE_HEIGHT = 18;
const OVERSCAN = 20;

export interface LogLine {
  seq: number;
  text: string;
}

export function visibleRange(scrollTop: number, viewport: number, count: number): [number, number] {
  const first = Math.max(0, Math.floor(scrollTop / LINE_HEIGHT) - OVERSCAN);
  const last = Math.min(count, Math.ceil((scrollTop + viewport) / LINE_HEIGHT) + OVERSCAN);
  return [first, last];
}

export function LogView({ lines, height = 320, label, dropped = 0 }: {
  lines: readonly LogLine[]; height?: number; label: string; dropped?: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [follow, setFollow] = useState(true);

  useEffect(() => {
    const el = box.current;
    if (el && follow) el.scrollTop = el.scrollHeight;
  }, [lines, follow]);

  const [first, last] = visibleRange(scrollTop, height, lines.length);
  return (
    <div className="log" role="log" aria-label={label} aria-live="off" data-lines={lines.length} data-dropped={dropped}>
      <div
        ref={box}
        className="log-scroll"
        style={{ height }}
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          setScrollTop(el.scrollTop);
          setFollow(el.scrollTop + el.clientHeight >= el.scrollHeight - LINE_HEIGHT * 2);
        }}
      >
        <div style={{ height: lines.length * LINE_HEIGHT, position: "relative" }}>
          {lines.slice(first, last).map((line, i) => (
            <div key={line.seq} className="log-line" style={{ top: (first + i) * LINE_HEIGHT, height: LINE_HEIGHT }}>
              <span className="log-seq">{line.seq}</span>
              {line.text}
            </div>
          ))}
        </div>
      </div>
    </div>
  );
}
