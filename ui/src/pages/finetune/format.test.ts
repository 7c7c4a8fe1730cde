import { describe, expect, it } from "vitest";
import { formatDuration, formatPercent, formatRate, isActive, isFinished } from "./format";

describe("format", () => {
  it("durations", () => {
    expect(formatDuration(3725)).toBe("1h 2m");
    expect(formatDuration(200)).toBe("3m 20s");
    expect(formatDuration(42)).toBe("42s");
    expect(formatDuration(null)).toBe("—");
  });
  it("percent and rates", () => {
    expect(formatPercent(0.4567)).toBe("45.7%");
    expect(formatRate(2e-5)).toBe("2.0e-5");
    expect(formatRate(1.23456)).toBe("1.235");
    expect(formatRate(0)).toBe("0");
  });
  it("active statuses", () => {
    expect(isActive("RUNNING")).toBe(true);
    expect(isActive("SUCCEEDED")).toBe(false);
    expect(isFinished("CANCELLED")).toBe(true);
    expect(isFinished("WAITING")).toBe(false);
  });
});
