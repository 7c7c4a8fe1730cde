import { describe, expect, it } from "vitest";
import {
  applyOverlay, latestProbes, pruneOverlay, putOverlay,
  compareIds, latestPerModel, matchesFilter, mayRedeploy, mayScale, mayUndeploy, numberLogLines,
} from "./live";

describe("compareIds", () => {
  it("orders numeric ids by value, not text", () => {
    expect(compareIds("9", "10")).toBeLessThan(0);
    expect(compareIds("10", "9")).toBeGreaterThan(0);
    expect(compareIds("12", "12")).toBe(0);
    expect(compareIds("9223372036854775807", "9223372036854775806")).toBeGreaterThan(0);
  });
});

describe("latestPerModel", () => {
  it("keeps the highest deployment id of each model, whatever the order", () => {
    const map = latestPerModel([
      { id: "3", modelId: "1", status: "STOPPED" as const },
      { id: "10", modelId: "1", status: "RUNNING" as const },
      { id: "4", modelId: "2", status: "FAILED" as const },
      { id: "2", modelId: "1", status: "FAILED" as const },
    ]);
    expect(map.get("1")?.id).toBe("10");
    expect(map.get("1")?.status).toBe("RUNNING");
    expect(map.get("2")?.id).toBe("4");
    expect(map.size).toBe(2);
  });
});

describe("actions by status", () => {
  it("follows the server's rules", () => {
    expect(mayUndeploy("RUNNING")).toBe(true);
    expect(mayUndeploy("STOPPED")).toBe(false);
    expect(mayUndeploy("STOPPING")).toBe(false);
    expect(mayScale("RUNNING")).toBe(true);
    expect(mayScale("FAILED")).toBe(true);
    expect(mayScale("STOPPED")).toBe(false);
    expect(mayRedeploy("FAILED")).toBe(true);
    expect(mayRedeploy("STOPPING")).toBe(false);
    expect(matchesFilter("RUNNING", [])).toBe(true);
    expect(matchesFilter("RUNNING", ["FAILED"])).toBe(false);
  });
});

describe("numberLogLines", () => {
  it("numbers lines from the cursor so numbers stay stable across polls", () => {
    expect(numberLogLines(["a", "b"], 2)).toEqual([{ seq: 1, text: "a" }, { seq: 2, text: "b" }]);
    // a later poll from since=2 that got 3 more lines
    expect(numberLogLines(["c", "d", "e"], 5).map((l) => l.seq)).toEqual([3, 4, 5]);
    // the server keeps only the last lines of a long chunk
    expect(numberLogLines(["y", "z"], 5000)[0].seq).toBe(4999);
    expect(numberLogLines([], 7)).toEqual([]);
  });
});

describe("overlay of live events", () => {
  it("applies events over loaded rows and keeps those about other ids apart", () => {
    let o = putOverlay({}, { id: "2", status: "RUNNING" }, 100);
    o = putOverlay(o, { id: "9", status: "PENDING" }, 150);
    const { rows, extra } = applyOverlay([{ id: "1", status: "STOPPED" }, { id: "2", status: "STARTING" }], o);
    expect(rows).toEqual([{ id: "1", status: "STOPPED" }, { id: "2", status: "RUNNING" }]);
    expect(extra).toEqual([{ id: "9", status: "PENDING" }]);
  });

  it("drops events older than a reload's request, keeps later ones", () => {
    let o = putOverlay({}, { id: "1", status: "STARTING" }, 100);
    o = putOverlay(o, { id: "2", status: "RUNNING" }, 300);
    const pruned = pruneOverlay(o, 200);
    expect(Object.keys(pruned)).toEqual(["2"]);
    expect(pruneOverlay(pruned, 200)).toBe(pruned);
  });
});

describe("latestProbes", () => {
  it("keeps the newest probe of each worker", () => {
    const probes = [
      { workerAddress: "a", checkedAt: "2024-01-01T00:00:05Z", queueLength: 3 },
      { workerAddress: "b", checkedAt: "2024-01-01T00:00:01Z", queueLength: 1 },
      { workerAddress: "a", checkedAt: "2024-01-01T00:00:01Z", queueLength: 9 },
    ];
    expect(latestProbes(probes).map((p) => [p.workerAddress, p.queueLength])).toEqual([["a", 3], ["b", 1]]);
  });
});
