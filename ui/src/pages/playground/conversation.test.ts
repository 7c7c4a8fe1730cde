import { describe, expect, it } from "vitest";
import { applyChunk, endTurn, isStreaming, startTurn, toMessages, type Turn } from "./conversation";

describe("a streamed turn", () => {
  it("grows with each chunk and ends on finishReason", () => {
    let h: Turn[] = startTurn([], "hi");
    expect(isStreaming(h)).toBe(true);
    h = applyChunk(h, { content: "Hel" });
    h = applyChunk(h, { content: "lo" });
    expect(h[1].content).toBe("Hello");
    expect(h[1].streaming).toBe(true);
    h = applyChunk(h, { content: "!", finishReason: "stop" });
    expect(h[1]).toMatchObject({ content: "Hello!", finishReason: "stop", streaming: false });
    expect(isStreaming(h)).toBe(false);
    // a late completion changes nothing
    expect(endTurn(h)).toEqual(h);
  });

  it("keeps an error", () => {
    let h = startTurn([], "hi");
    h = applyChunk(h, { content: "", finishReason: "error", error: "model not allowed" });
    expect(h[1]).toMatchObject({ error: "model not allowed", streaming: false });
    const failed = endTurn(startTurn([], "x"), "socket closed");
    expect(failed[1]).toMatchObject({ error: "socket closed", streaming: false });
  });
});

describe("toMessages", () => {
  it("sends the system prompt and good pairs, leaving failed ones out", () => {
    let h = startTurn([], "one");
    h = applyChunk(h, { content: "1", finishReason: "stop" });
    h = startTurn(h, "two");
    h = applyChunk(h, { content: "", error: "boom", finishReason: "error" });
    h = startTurn(h, "three");
    h = applyChunk(h, { content: "3" });
    h = endTurn(h);
    expect(toMessages(h, "be brief")).toEqual([
      { role: "system", content: "be brief" },
      { role: "user", content: "one" },
      { role: "assistant", content: "1" },
      { role: "user", content: "three" },
      { role: "assistant", content: "3" },
    ]);
    expect(toMessages([], "  ")).toEqual([]);
  });
});
