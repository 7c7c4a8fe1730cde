import { describe, expect, it } from "vitest";
import { BoundedList, FrameBatcher } from "./batched";

describe("BoundedList", () => {
  it("keeps the newest items and counts the dropped ones", () => {
    const list = new BoundedList<number>(3);
    list.push([1, 2]);
    list.push([3, 4, 5]);
    expect(list.items).toEqual([3, 4, 5]);
    expect(list.dropped).toBe(2);
  });
});

describe("FrameBatcher", () => {
  it("hands every pushed item to one flush per tick, in order", () => {
    const ticks: (() => void)[] = [];
    const flushed: number[][] = [];
    const batcher = new FrameBatcher<number>((b) => flushed.push(b), (run) => ticks.push(run));
    for (let i = 0; i < 1000; i++) batcher.push(i);
    expect(ticks).toHaveLength(1);
    ticks[0]();
    batcher.push(1000);
    ticks[1]();
    expect(flushed).toHaveLength(2);
    expect(flushed[0]).toHaveLength(1000);
    expect(flushed[0][999]).toBe(999);
    expect(flushed[1]).toEqual([1000]);
  });
});
