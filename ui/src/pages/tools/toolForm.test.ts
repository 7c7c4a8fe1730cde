import { describe, expect, it } from "vitest";
import { bodyRelevant, EMPTY_TOOL, formOfTool, headerLines, parseHeaderLines, parseHosts, toolInput, urlPlaceholders } from "./toolForm";

describe("header lines", () => {
  it("reads Name: value lines and writes them back", () => {
    const parsed = parseHeaderLines("Authorization: Bearer abc:def\n\n X-Api-Key : 1 ", "headers");
    expect(parsed).toEqual({ value: { Authorization: "Bearer abc:def", "X-Api-Key": "1" } });
    expect(headerLines({ A: "1", B: "x" })).toBe("A: 1\nB: x");
    expect(headerLines(null)).toBe("");
  });
  it("names the bad line", () => {
    expect(parseHeaderLines("A: 1\nno colon here", "secretHeaders")).toEqual({
      problem: { field: "secretHeaders", code: "headerLine", line: 2 },
    });
    expect(parseHeaderLines("Bad Name: 1", "headers")).toMatchObject({ problem: { line: 1 } });
  });
});

describe("toolInput", () => {
  const form = { ...EMPTY_TOOL, name: " weather ", url: "https://api.example.com/{city}", parameters: '{"type":"object"}',
    headers: "Accept: application/json", secretHeaders: "Authorization: Bearer t" };
  it("builds an HTTP tool's input", () => {
    expect(toolInput(form, false)).toEqual({ input: {
      name: "weather", description: "", toolType: "FUNCTION", enabled: true, remark: "",
      http: { url: "https://api.example.com/{city}", method: "GET", parameters: { type: "object" },
        headers: { Accept: "application/json" }, secretHeaders: { Authorization: "Bearer t" }, body: "",
        timeoutSeconds: 10, maxResponseBytes: 65536, extract: "", userAgent: "" },
    } });
  });
  it("keeps, replaces or removes the stored secret headers on an edit", () => {
    const keep = toolInput({ ...form, secretMode: "keep" }, true);
    const remove = toolInput({ ...form, secretMode: "remove" }, true);
    const replace = toolInput({ ...form, secretMode: "replace" }, true);
    const empty = toolInput({ ...form, secretMode: "replace", secretHeaders: "" }, true);
    const secrets = (r: ReturnType<typeof toolInput>) => ("input" in r ? r.input.http?.secretHeaders : "problem");
    expect(secrets(keep)).toBeNull();
    expect(secrets(remove)).toEqual({});
    expect(secrets(replace)).toEqual({ Authorization: "Bearer t" });
    expect(secrets(empty)).toBeNull();
  });
  it("refuses what the server would, naming the field", () => {
    expect(toolInput({ ...form, name: "" }, false)).toEqual({ problem: { field: "name", code: "required" } });
    expect(toolInput({ ...form, url: " " }, false)).toEqual({ problem: { field: "url", code: "required" } });
    expect(toolInput({ ...form, parameters: "[1]" }, false)).toEqual({ problem: { field: "parameters", code: "notObject" } });
    expect(toolInput({ ...form, parameters: "{" }, false)).toMatchObject({ problem: { field: "parameters", code: "json" } });
    expect(toolInput({ ...form, method: "POST", body: "{x" }, false)).toMatchObject({ problem: { field: "body", code: "json" } });
  });
  it("sends no HTTP definition for the other tool types", () => {
    expect(toolInput({ ...form, toolType: "RETRIEVAL" }, false)).toEqual({ input: {
      name: "weather", description: "", toolType: "RETRIEVAL", enabled: true, remark: "" } });
  });
  it("reads a stored tool back", () => {
    const back = formOfTool({ name: "w", description: "d", toolType: "FUNCTION", enabled: false, remark: "",
      http: { url: "u", method: "POST", parameters: { type: "object" }, headers: { A: "1" }, body: "{}",
        timeoutSeconds: 5, maxResponseBytes: 10, extract: "/a", userAgent: "" } });
    expect(back).toMatchObject({ method: "POST", headers: "A: 1", secretMode: "keep", enabled: false, extract: "/a" });
    expect(JSON.parse(back.parameters)).toEqual({ type: "object" });
  });
});

describe("small rules", () => {
  it("offers a body where it applies", () => {
    expect(bodyRelevant("GET", "")).toBe(false);
    expect(bodyRelevant("get", "{}")).toBe(true);
    expect(bodyRelevant("POST", "")).toBe(true);
  });
  it("finds URL placeholders", () => {
    expect(urlPlaceholders("https://x/{a}/b/{c}?q={a}")).toEqual(["a", "c"]);
  });
  it("reads a host list", () => {
    expect(parseHosts("api.example.com\n*.Example.org, api.example.com  x.io")).toEqual(["api.example.com", "*.example.org", "x.io"]);
  });
});
