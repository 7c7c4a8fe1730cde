import { describe, expect, it } from "vitest";
import { attachLines, collectLines, filenameFromDisposition, restPurpose, shownLine } from "./lines";

function streamOf(...chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> & { pulled: () => number } {
  const encoder = new TextEncoder();
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i >= chunks.length) {
        controller.close();
        return;
      }
      const c = chunks[i++];
      controller.enqueue(typeof c === "string" ? encoder.encode(c) : c);
    },
  }, { highWaterMark: 0 });
  return Object.assign(stream, { pulled: () => i });
}

describe("collectLines", () => {
  it("reads the wanted lines, counting blank ones, across chunk borders", async () => {
    const s = streamOf('{"a":1}\n\n{"b"', ':2}\r\n', "line4\nline5");
    const got = await collectLines(s, [3, 5, 2]);
    expect(got.get(3)).toBe('{"b":2}');
    expect(got.get(2)).toBe("");
    expect(got.get(5)).toBe("line5");
    expect(got.has(1)).toBe(false);
  });

  it("stops reading after the last wanted line", async () => {
    const s = streamOf("one\n", "two\n", "three\n", "four\n");
    const got = await collectLines(s, [2]);
    expect(got.get(2)).toBe("two");
    expect(s.pulled()).toBe(2);
  });

  it("cuts long lines and keeps multi-byte characters whole across chunks", async () => {
    const bytes = new TextEncoder().encode("中文\n" + "x".repeat(500) + "\n");
    const s = streamOf(bytes.slice(0, 2), bytes.slice(2));
    const got = await collectLines(s, [1, 2], 10);
    expect(got.get(1)).toBe("中文");
    expect(got.get(2)).toBe("xxxxxxxxxx…");
  });

  it("drops a byte-order mark and ignores lines past the end", async () => {
    const got = await collectLines(streamOf("\uFEFFfirst\nsecond\n"), [1, 9]);
    expect(got.get(1)).toBe("first");
    expect(got.has(9)).toBe(false);
  });

  it("reads nothing when no line is wanted", async () => {
    const s = streamOf("a\n");
    expect((await collectLines(s, [])).size).toBe(0);
    expect(s.pulled()).toBe(0);
  });
});

describe("attachLines", () => {
  it("orders by line, joins messages of one line and adds the text", () => {
    const problems = attachLines(
      [{ line: 4, message: "bad role" }, { line: 2, message: "too short" }, { line: 4, message: "empty" }],
      new Map([[2, '{"messages": []}']]),
    );
    expect(problems).toEqual([
      { line: 2, message: "too short", content: '{"messages": []}' },
      { line: 4, message: "bad role; empty", content: null },
    ]);
  });
});

describe("helpers", () => {
  it("shownLine drops CR and cuts", () => {
    expect(shownLine("abc\r")).toBe("abc");
    expect(shownLine("abcdef", 3)).toBe("abc…");
  });
  it("restPurpose", () => {
    expect(restPurpose("FINE_TUNE_EVAL")).toBe("fine-tune-eval");
    expect(restPurpose("ASSISTANTS")).toBe("assistants");
  });
  it("filenameFromDisposition prefers filename*", () => {
    expect(filenameFromDisposition(`attachment; filename="__.jsonl"; filename*=UTF-8''%E6%95%B0%E6%8D%AE.jsonl`, "x"))
      .toBe("数据.jsonl");
    expect(filenameFromDisposition('attachment; filename="a b.jsonl"', "x")).toBe("a b.jsonl");
    expect(filenameFromDisposition(null, "fallback.jsonl")).toBe("fallback.jsonl");
  });
});
