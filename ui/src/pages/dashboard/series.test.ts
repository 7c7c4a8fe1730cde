import { describe, expect, it } from "vitest";
import { daysBetween, errorRate, usageSeries, type UsageRow } from "./series";

const row = (channelId: string, model: string, day: string, requests: number, tokens = 0): UsageRow =>
  ({ channelId, model, day, requests, promptTokens: tokens, completionTokens: 1 });

describe("usageSeries", () => {
  const days = daysBetween(new Date("2026-12-01T10:00:00Z"), new Date("2026-12-03T01:00:00Z"));
  it("lists every day between two dates", () => {
    expect(days).toEqual(["2026-12-01", "2026-12-02", "2026-12-03"]);
  });
  it("sums per model and fills days without traffic with zero", () => {
    const rows = [row("1", "m", "2026-12-01", 2), row("2", "m", "2026-12-01", 3), row("1", "n", "2026-12-03", 1)];
    expect(usageSeries(rows, days, (r) => r.model, "requests")).toEqual([
      { name: "m", points: [{ x: 0, y: 5 }, { x: 1, y: 0 }, { x: 2, y: 0 }] },
      { name: "n", points: [{ x: 0, y: 0 }, { x: 1, y: 0 }, { x: 2, y: 1 }] },
    ]);
  });
  it("counts tokens as prompt plus completion and ignores days outside the range", () => {
    const rows = [row("1", "m", "2026-12-02", 1, 10), row("1", "m", "2026-11-01", 1, 99)];
    expect(usageSeries(rows, days, (r) => r.channelId, "tokens")[0].points[1].y).toBe(11);
    expect(usageSeries(rows, days, (r) => r.channelId, "tokens")[0].points[0].y).toBe(0);
  });
});

describe("errorRate", () => {
  it("is the share of answers that are not 2xx", () => {
    expect(errorRate([{ status: "200", requests: 3 }, { status: "429", requests: 1 }])).toBe(0.25);
    expect(errorRate([])).toBeNull();
  });
});
