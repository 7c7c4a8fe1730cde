import { describe, expect, it } from "vitest";
import { similarity, tokenize, wordDiff, type DiffPart } from "./diff";

const side = (parts: DiffPart[], op: "del" | "add") => parts.filter((p) => p.op === "same" || p.op === op).map((p) => p.text).join("");

describe("tokenize", () => {
  it("splits words, spaces and punctuation, and CJK by character", () => {
    expect(tokenize("the cat, sat.")).toEqual(["the", " ", "cat", ",", " ", "sat", "."]);
    expect(tokenize("我喜欢猫")).toEqual(["我", "喜", "欢", "猫"]);
    expect(tokenize("GPU 有 2 块")).toEqual(["GPU", " ", "有", " ", "2", " ", "块"]);
    expect(tokenize("")).toEqual([]);
  });
  it("loses nothing", () => {
    const text = "  Hello,\tworld!  it's 3.5 — 好的\n";
    expect(tokenize(text).join("")).toBe(text);
  });
});

describe("wordDiff", () => {
  it("is one same part for equal texts", () => {
    expect(wordDiff("a b c", "a b c")).toEqual([{ op: "same", text: "a b c" }]);
  });
  it("marks a missing word as deleted", () => {
    expect(wordDiff("the cat sat on the mat", "the cat sat on mat")).toEqual([
      { op: "same", text: "the cat sat on " },
      { op: "del", text: "the " },
      { op: "same", text: "mat" },
    ]);
  });
  it("shows a replaced word as deleted then added", () => {
    expect(wordDiff("Paris is the capital", "Lyon is the capital")).toEqual([
      { op: "del", text: "Paris" },
      { op: "add", text: "Lyon" },
      { op: "same", text: " is the capital" },
    ]);
  });
  it("diffs Chinese by character", () => {
    expect(wordDiff("我喜欢猫", "我喜欢狗")).toEqual([
      { op: "same", text: "我喜欢" },
      { op: "del", text: "猫" },
      { op: "add", text: "狗" },
    ]);
  });
  it("keeps a changed phrase together across its spaces", () => {
    const parts = wordDiff("it is a red big ball", "it is a small blue ball");
    expect(parts).toEqual([
      { op: "same", text: "it is a " },
      { op: "del", text: "red big" },
      { op: "add", text: "small blue" },
      { op: "same", text: " ball" },
    ]);
  });
  it("handles empty sides", () => {
    expect(wordDiff("", "")).toEqual([]);
    expect(wordDiff("", "new text")).toEqual([{ op: "add", text: "new text" }]);
    expect(wordDiff("old", "")).toEqual([{ op: "del", text: "old" }]);
  });
  it("always rebuilds both texts", () => {
    const cases: [string, string][] = [
      ["The answer is 42.", "I think the answer is 41, not 42."],
      ["a b c d e f", "f e d c b a"],
      ["第一步：打开文件。第二步：保存。", "第一步：打开。第二步：关闭并保存。"],
      ["x  y\n\nz", "x y z"],
    ];
    for (const [a, b] of cases) {
      const parts = wordDiff(a, b);
      expect(side(parts, "del")).toBe(a);
      expect(side(parts, "add")).toBe(b);
      for (let i = 1; i < parts.length; i++) expect(parts[i].op === parts[i - 1].op).toBe(false);
    }
  });
  it("falls back to one replacement when the texts are too long to align", () => {
    const a = Array.from({ length: 300 }, (_, i) => `w${i}`).join(" ");
    const b = Array.from({ length: 300 }, (_, i) => `v${i}`).join(" ");
    const parts = wordDiff(`start ${a} end`, `start ${b} end`, 1000);
    expect(parts[0]).toEqual({ op: "same", text: "start " });
    expect(parts[parts.length - 1]).toEqual({ op: "same", text: " end" });
    expect(parts.map((p) => p.op)).toEqual(["same", "del", "add", "same"]);
    expect(side(parts, "del")).toBe(`start ${a} end`);
  });
  it("is fast enough for long answers", () => {
    const words = Array.from({ length: 1500 }, (_, i) => `word${i % 97}`);
    const started = performance.now();
    wordDiff(words.join(" "), words.slice().reverse().join(" "));
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe("similarity", () => {
  it("is 1 for equal texts and 0 for nothing in common", () => {
    expect(similarity(wordDiff("a b", "a b"))).toBe(1);
    expect(similarity(wordDiff("abc", "xyz"))).toBe(0);
    expect(similarity([])).toBe(1);
  });
});
