// A word-level diff of the reference answer (expected) against the model's answer: what a reader needs to see
// why a sample scored low. Latin text splits into words, punctuation and white space; CJK text into characters
// (it has no spaces between words). The longest common subsequence of the tokens is kept as "same".

export type DiffOp = "same" | "del" | "add";

/** A run of text: "del" is in the reference but not in the answer, "add" is in the answer only. */
export interface DiffPart {
  op: DiffOp;
  text: string;
}

const CJK = "\\u3040-\\u30ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uac00-\\ud7af\\uf900-\\ufaff";
const TOKEN = new RegExp(`[${CJK}]|\\s+|[\\p{L}\\p{N}_'’-]+|[^\\s]`, "gu");

/** Words, runs of white space, CJK characters and single punctuation marks, in order; joined they give `text`. */
export function tokenize(text: string): string[] {
  return text.match(TOKEN) ?? [];
}

/** Above this many cells (tokens × tokens) the middle is shown as replaced instead of aligned. */
export const MAX_CELLS = 4_000_000;

function push(parts: DiffPart[], op: DiffOp, text: string): void {
  if (!text) return;
  const last = parts[parts.length - 1];
  if (last && last.op === op) last.text += text;
  else parts.push({ op, text });
}

/** The diff of `expected` → `actual`: joining the "same" and "del" parts gives `expected`, "same" and "add" `actual`. */
export function wordDiff(expected: string, actual: string, maxCells = MAX_CELLS): DiffPart[] {
  const a = tokenize(expected);
  const b = tokenize(actual);
  const parts: DiffPart[] = [];
  // the common prefix and suffix need no table
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  push(parts, "same", a.slice(0, start).join(""));
  const n = endA - start;
  const m = endB - start;
  if (n === 0 || m === 0 || n * m > maxCells) {
    push(parts, "del", a.slice(start, endA).join(""));
    push(parts, "add", b.slice(start, endB).join(""));
  } else {
    // lengths of the LCS of a[i..] and b[j..], row-major (n+1) × (m+1)
    const width = m + 1;
    const table = new Uint32Array((n + 1) * width);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        table[i * width + j] = a[start + i] === b[start + j]
          ? table[(i + 1) * width + j + 1] + 1
          : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    let del = "";
    let add = "";
    const flush = () => {
      push(parts, "del", del);
      push(parts, "add", add);
      del = "";
      add = "";
    };
    while (i < n && j < m) {
      if (a[start + i] === b[start + j]) {
        flush();
        push(parts, "same", a[start + i]);
        i++;
        j++;
      } else if (table[(i + 1) * width + j] >= table[i * width + j + 1]) {
        del += a[start + i++];
      } else {
        add += b[start + j++];
      }
    }
    while (i < n) del += a[start + i++];
    while (j < m) add += b[start + j++];
    flush();
  }
  push(parts, "same", a.slice(endA).join(""));
  return mergeWhitespace(parts);
}

/** A lone white-space "same" between two changes reads better inside them ("-a b- +c d+", not "-a- +c- -b- +d-"):
 * it joins both sides of the change, so each side still reads as its own text. */
function mergeWhitespace(parts: DiffPart[]): DiffPart[] {
  const out: DiffPart[] = [];
  let del = "";
  let add = "";
  const flush = () => {
    push(out, "del", del);
    push(out, "add", add);
    del = "";
    add = "";
  };
  for (let k = 0; k < parts.length; k++) {
    const p = parts[k];
    if (p.op === "del") del += p.text;
    else if (p.op === "add") add += p.text;
    else if ((del || add) && /^\s+$/.test(p.text) && k + 1 < parts.length && parts[k + 1].op !== "same") {
      del += p.text;
      add += p.text;
    } else {
      flush();
      push(out, "same", p.text);
    }
  }
  flush();
  return out;
}

/** How much of the reference the answer kept, by characters of the "same" parts (0 to 1; 1 for two empty texts). */
export function similarity(parts: readonly DiffPart[]): number {
  let same = 0;
  let total = 0;
  for (const p of parts) {
    if (p.op === "same") same += 2 * p.text.length;
    total += p.text.length * (p.op === "same" ? 2 : 1);
  }
  return total === 0 ? 1 : same / total;
}
