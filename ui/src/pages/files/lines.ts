// Line-numbered upload errors shown next to the lines themselves: the platform names the bad lines, the browser
// reads just those lines (from the chosen file, or streamed from the server) and stops after the last one.
import type { LineError } from "../../api/client";

export const MAX_SHOWN_CHARS = 160;

/** A bad line: the platform's message and the line's own text (cut to a readable length). */
export interface LineProblem {
  line: number;
  message: string;
  /** null: not read (yet, or the line is past the end). */
  content: string | null;
}

/** A line cut to `max` characters (with an ellipsis), its CR (CRLF files) and BOM (first line) dropped. */
export function shownLine(raw: string, max = MAX_SHOWN_CHARS): string {
  let text = raw.startsWith("\uFEFF") ? raw.slice(1) : raw;
  if (text.endsWith("\r")) text = text.slice(0, -1);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/**
 * The text of the wanted (1-based) lines of a byte stream, each through `shownLine`. Lines end at "\n", as the
 * platform counts them (blank lines count too). Reading stops after the last wanted line, and only the first
 * `max` + 1 characters of a wanted line are kept, so a large file costs no more than its head.
 */
export async function collectLines(
  stream: ReadableStream<Uint8Array>,
  wanted: Iterable<number>,
  max = MAX_SHOWN_CHARS,
): Promise<Map<number, string>> {
  const want = new Set(Array.from(wanted).filter((n) => Number.isInteger(n) && n >= 1));
  const out = new Map<number, string>();
  if (want.size === 0) return out;
  const last = Math.max(...want);
  const decoder = new TextDecoder("utf-8");
  const reader = stream.getReader();
  let line = 1;
  let buf = "";
  const keep = max + 2; // enough to know it was cut, and a CR before the cut
  try {
    while (line <= last) {
      const { done, value } = await reader.read();
      const chunk = done ? decoder.decode() : decoder.decode(value, { stream: true });
      let start = 0;
      while (line <= last) {
        const nl = chunk.indexOf("\n", start);
        const piece = nl < 0 ? chunk.slice(start) : chunk.slice(start, nl);
        if (want.has(line) && buf.length < keep) buf += piece.slice(0, keep - buf.length);
        if (nl < 0) break;
        if (want.has(line)) out.set(line, shownLine(buf, max));
        line += 1;
        buf = "";
        start = nl + 1;
      }
      if (done) {
        if (line <= last && want.has(line) && buf !== "") out.set(line, shownLine(buf, max));
        break;
      }
    }
  } finally {
    void reader.cancel().catch(() => undefined);
  }
  return out;
}

/** The errors in line order (one entry per line, messages of the same line joined), with the lines' text. */
export function attachLines(errors: readonly LineError[], contents: ReadonlyMap<number, string> | null): LineProblem[] {
  const byLine = new Map<number, string[]>();
  for (const e of errors) {
    const list = byLine.get(e.line) ?? [];
    list.push(e.message);
    byLine.set(e.line, list);
  }
  return Array.from(byLine.entries())
    .sort((a, b) => a[0] - b[0])
    .map(([line, messages]) => ({ line, message: messages.join("; "), content: contents?.get(line) ?? null }));
}

/** POST /files wants the purpose's HTTP value: FINE_TUNE_EVAL → fine-tune-eval. */
export function restPurpose(purpose: string): string {
  return purpose.toLowerCase().replace(/_/g, "-");
}

/** The file name of a Content-Disposition header (RFC 6266: filename* first), else `fallback`. */
export function filenameFromDisposition(header: string | null, fallback: string): string {
  if (!header) return fallback;
  const star = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[2].trim());
    } catch {
      // fall through to the plain name
    }
  }
  const plain = /filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;]+)/i.exec(header);
  const name = plain ? (plain[1] ?? plain[2] ?? "").trim() : "";
  return name || fallback;
}
