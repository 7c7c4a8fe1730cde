import { describe, expect, it } from "vitest";
import {
  canCancel, canDelete, canRetry, comparisonBars, deltaDomain, deltaRows, formatDuration, listSearch, metricParam,
  parseIds, question, resultBars, signed,
} from "./logic";

describe("what may be done", () => {
  it("follows the service's rules", () => {
    expect(canCancel("RUNNING")).toBe(true);
    expect(canCancel("PENDING")).toBe(true);
    expect(canCancel("SUCCEEDED")).toBe(false);
    expect(canRetry("SUCCEEDED", 0)).toBe(false);
    expect(canRetry("SUCCEEDED", 2)).toBe(true);
    expect(canRetry("CANCELLED", 0)).toBe(true);
    expect(canRetry("RUNNING", 3)).toBe(false);
    expect(canDelete("FAILED")).toBe(true);
    expect(canDelete("PENDING")).toBe(false);
  });
});

describe("parseIds", () => {
  it("keeps each id once, in order", () => {
    expect(parseIds("41, 42,,41,7")).toEqual(["41", "42", "7"]);
    expect(parseIds(null)).toEqual([]);
  });
});

describe("formatDuration", () => {
  it("reads at a glance", () => {
    expect(formatDuration(12.4)).toBe("12 s");
    expect(formatDuration(185)).toBe("3 min 05 s");
    expect(formatDuration(3720)).toBe("1 h 02 min");
    expect(formatDuration(null)).toBe("—");
    expect(formatDuration(-1)).toBe("—");
  });
});

describe("bars", () => {
  const evaluations = [{ id: "41", modelName: "base", gateRole: "base" }, { id: "42", modelName: "ft", gateRole: "" }];
  it("draws results with their intervals", () => {
    expect(resultBars([{ metric: "BLEU", mean: 0.5, low: 0.4, high: 0.6, n: 10 }], "mean")).toEqual([
      { label: "BLEU", values: [{ name: "mean", value: 0.5, low: 0.4, high: 0.6 }] },
    ]);
  });
  it("groups a comparison by metric, one bar per evaluation", () => {
    const bars = comparisonBars(evaluations, [
      { metric: "ROUGE_L", estimates: [{ metric: "ROUGE_L", mean: 0.3, low: 0.2, high: 0.4 }, { metric: "ROUGE_L", mean: 0.5, low: 0.45, high: 0.55 }] },
    ]);
    expect(bars).toEqual([{ label: "ROUGE_L", values: [
      { name: "#41 base (base)", value: 0.3, low: 0.2, high: 0.4 },
      { name: "#42 ft", value: 0.5, low: 0.45, high: 0.55 },
    ] }]);
  });
  it("labels each delta with its metric and evaluation", () => {
    const rows = deltaRows(evaluations, [{ metric: "BLEU", deltas: [{ evaluationId: "42", mean: 0.1, low: 0.02, high: 0.2, significant: true }] }]);
    expect(rows).toEqual([{ label: "BLEU · #42 ft", mean: 0.1, low: 0.02, high: 0.2, significant: true }]);
    expect(deltaDomain(rows)).toBe(0.2);
    expect(deltaDomain([])).toBe(0.05);
  });
});

describe("small formats", () => {
  it("signs differences and names metrics for the export", () => {
    expect(signed(0.0612)).toBe("+0.061");
    expect(signed(-0.02)).toBe("-0.020");
    expect(signed(-0.0001)).toBe("0.000");
    expect(metricParam("ROUGE_L")).toBe("rouge_l");
    expect(listSearch({ status: "RUNNING", modelId: "3" })).toBe("?status=RUNNING&modelId=3");
    expect(listSearch({})).toBe("");
  });
  it("finds the question of a sample", () => {
    expect(question([{ role: "system", content: "be brief" }, { role: "user", content: "2+2?" }])).toBe("2+2?");
    expect(question([{ role: "user", content: [{ type: "text", text: "hi" }] }])).toBe("hi");
    expect(question("nonsense")).toBe("");
  });
});
