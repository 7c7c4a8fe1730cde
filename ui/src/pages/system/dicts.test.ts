import { describe, expect, it } from "vitest";
import { countNodes, dictValueOk, parseCodes } from "./dicts";

describe("parseCodes", () => {
  it("splits on commas and spaces, drops blanks and repeats", () => {
    expect(parseCodes(" sex, status\nstatus ,, ")).toEqual(["sex", "status"]);
    expect(parseCodes("")).toEqual([]);
  });
});

describe("dictValueOk", () => {
  it("checks like the platform", () => {
    expect(dictValueOk("STRING", "anything")).toBe(true);
    expect(dictValueOk("INT", "-12")).toBe(true);
    expect(dictValueOk("INT", "1.5")).toBe(false);
    expect(dictValueOk("BOOL", "TRUE")).toBe(true);
    expect(dictValueOk("BOOL", "yes")).toBe(false);
  });
});

describe("countNodes", () => {
  it("counts descendants", () => {
    expect(countNodes([{ id: "1", children: [{ id: "2", children: [] }, { id: "3", children: [{ id: "4", children: [] }] }] }])).toBe(4);
  });
});
