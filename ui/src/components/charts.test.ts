import { describe, expect, it } from "vitest";
import { extent, thin } from "./charts";

describe("thin", () => {
  it("keeps short series whole", () => {
    expect(thin([1, 2, 3], 10)).toEqual([1, 2, 3]);
  });
  it("keeps the first and last of a long series and at most max points", () => {
    const points = Array.from({ length: 100_000 }, (_, i) => i);
    const out = thin(points, 400);
    expect(out).toHaveLength(400);
    expect(out[0]).toBe(0);
    expect(out[399]).toBe(99_999);
  });
});

describe("extent", () => {
  it("widens a flat series so it can be drawn", () => {
    expect(extent([2, 2])).toEqual([1, 3]);
    expect(extent([])).toEqual([0, 1]);
    expect(extent([3, -1, 5])).toEqual([-1, 5]);
  });
});
