import { describe, expect, it } from "vitest";
import { emptyAuditFilter, matchesAuditFilter, prettyJson, toAuditFilter } from "./audit";

const row = {
  operator: "admin", tenantId: "3", operation: "createChannel", traceId: "abc", success: true, durationMs: 40,
  createdAt: "2024-05-01T10:00:00+00:00",
};

describe("toAuditFilter", () => {
  it("leaves out empty fields", () => {
    expect(toAuditFilter(emptyAuditFilter())).toEqual({});
  });
  it("keeps the set ones, typed", () => {
    const f = toAuditFilter({
      ...emptyAuditFilter(), operator: " admin ", success: "false", minDurationMs: 12.4, start: "2024-05-01T00:00",
    });
    expect(f).toEqual({ operator: "admin", success: false, minDurationMs: 12, start: new Date("2024-05-01T00:00").toISOString() });
  });
});

describe("matchesAuditFilter", () => {
  it("matches like the server", () => {
    expect(matchesAuditFilter(row, {})).toBe(true);
    expect(matchesAuditFilter(row, { operator: "admin", tenantId: "3", success: true })).toBe(true);
    expect(matchesAuditFilter(row, { operator: "adm" })).toBe(false);
    expect(matchesAuditFilter(row, { success: false })).toBe(false);
    expect(matchesAuditFilter(row, { minDurationMs: 41 })).toBe(false);
    expect(matchesAuditFilter(row, { tenantId: "4" })).toBe(false);
  });
  it("takes start inclusive and end exclusive", () => {
    expect(matchesAuditFilter(row, { start: "2024-05-01T10:00:00Z" })).toBe(true);
    expect(matchesAuditFilter(row, { end: "2024-05-01T10:00:00Z" })).toBe(false);
    expect(matchesAuditFilter({ ...row, createdAt: null }, { end: "2030-01-01T00:00:00Z" })).toBe(false);
  });
});

describe("prettyJson", () => {
  it("indents objects and JSON strings", () => {
    expect(prettyJson({ a: 1 })).toBe('{\n  "a": 1\n}');
    expect(prettyJson('{"b":2}')).toBe('{\n  "b": 2\n}');
    expect(prettyJson("plain")).toBe("plain");
  });
});
