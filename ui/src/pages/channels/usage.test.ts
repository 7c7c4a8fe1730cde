import { describe, expect, it } from "vitest";
import { dayLabel, dayNumber, usageSeries, usageTotals, type UsageRow } from "./usage";

const row = (model: string, day: string, requests: number, promptTokens = 0, completionTokens = 0, channelId = "1"): UsageRow =>
  ({ channelId, model, day, requests, promptTokens, completionTokens });

describe("dayNumber / dayLabel", () => {
  it("round-trips UTC days", () => {
    expect(dayNumber("1970-01-02")).toBe(1);
    expect(dayLabel(dayNumber("2024-02-29"))).toBe("2024-02-29");
    expect(Number.isNaN(dayNumber("yesterday"))).toBe(true);
  });
});

describe("usageSeries", () => {
  const rows = [
    row("qwen", "2024-05-01", 3, 10, 5),
    row("llama", "2024-05-01", 1, 4, 4),
    row("qwen", "2024-05-03", 2, 7, 1),
    row("qwen", "2024-05-03", 4, 1, 1, "2"), // another channel, same model and day: summed
  ];

  it("gives one series per model, sorted, with every day of the rows filled in", () => {
    const series = usageSeries(rows, "requests");
    expect(series.map((s) => s.name)).toEqual(["llama", "qwen"]);
    const qwen = series[1].points;
    expect(qwen.map((p) => dayLabel(p.x))).toEqual(["2024-05-01", "2024-05-02", "2024-05-03"]);
    expect(qwen.map((p) => p.y)).toEqual([3, 0, 6]);
    expect(series[0].points.map((p) => p.y)).toEqual([1, 0, 0]);
  });

  it("counts tokens as prompt plus completion", () => {
    const qwen = usageSeries(rows, "tokens")[1].points;
    expect(qwen.map((p) => p.y)).toEqual([15, 0, 10]);
    expect(usageSeries(rows, "completionTokens")[1].points.map((p) => p.y)).toEqual([5, 0, 2]);
  });

  it("spans the asked range", () => {
    const series = usageSeries(rows, "requests", { start: "2024-04-29", end: "2024-05-04" });
    expect(series[0].points).toHaveLength(6);
    expect(dayLabel(series[0].points[0].x)).toBe("2024-04-29");
    expect(series[0].points[0].y).toBe(0);
  });

  it("draws nothing without rows, and bounds a huge range", () => {
    expect(usageSeries([], "requests", { start: "2024-01-01", end: "2024-01-31" })).toEqual([]);
    const wide = usageSeries([row("m", "2024-01-01", 1)], "requests", { start: "1900-01-01", end: "2100-01-01" });
    expect(wide[0].points.length).toBeLessThanOrEqual(3661);
  });
});

describe("usageTotals", () => {
  it("sums every row", () => {
    expect(usageTotals([row("a", "2024-01-01", 2, 3, 4), row("b", "2024-01-02", 1, 1, 1)]))
      .toEqual({ requests: 3, promptTokens: 4, completionTokens: 5 });
  });
});
