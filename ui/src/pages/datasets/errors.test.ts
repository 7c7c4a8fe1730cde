import { describe, expect, it } from "vitest";
import { exportUrl, splitErrors } from "./errors";

describe("splitErrors", () => {
  it("puts line errors apart from the others", () => {
    expect(splitErrors([
      { message: "not valid JSON", field: "fileId", line: 3 },
      { message: "file not found", field: "fileId", line: null },
      { message: "too many", line: 0 },
    ])).toEqual({ lines: [{ line: 3, message: "not valid JSON" }], other: ["fileId: file not found", "too many"] });
  });
});

describe("exportUrl", () => {
  it("uses the REST format value", () => {
    expect(exportUrl("5", "SHAREGPT")).toBe("/datasets/5/export?format=sharegpt");
  });
});
