import { describe, expect, it } from "vitest";
import { visibleRange } from "./LogView";

describe("visibleRange", () => {
  it("renders only the lines in view plus an overscan", () => {
    const [first, last] = visibleRange(18 * 5000, 360, 10_000);
    expect(first).toBe(5000 - 20);
    expect(last).toBe(5000 + 20 + 20);
    expect(last - first).toBeLessThan(100);
  });
  it("clamps to the list", () => {
    expect(visibleRange(0, 360, 5)).toEqual([0, 5]);
  });
});
