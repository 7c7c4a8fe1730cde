import { describe, expect, it, vi } from "vitest";

vi.stubGlobal("window", { addEventListener: () => {} });
const { matchPath } = await import("./router");

describe("matchPath", () => {
  it("matches literal segments and names the parameters", () => {
    expect(matchPath("/models/:id", "/models/42")).toEqual({ id: "42" });
    expect(matchPath("/models", "/models/")).toEqual({});
  });
  it("refuses other lengths and other literals", () => {
    expect(matchPath("/models/:id", "/models")).toBeNull();
    expect(matchPath("/models/:id", "/channels/1")).toBeNull();
  });
  it("decodes parameters", () => {
    expect(matchPath("/x/:name", "/x/a%20b")).toEqual({ name: "a b" });
  });
});
