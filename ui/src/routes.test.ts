import { describe, expect, it, vi } from "vitest";

vi.mock("react", () => ({ lazy: (f: unknown) => f }));
const { allowed, areaFor } = await import("./routes");

describe("areaFor", () => {
  it("picks the area by its path prefix", () => {
    expect(areaFor("/")?.key).toBe("dashboard");
    expect(areaFor("/models/12")?.key).toBe("models");
    expect(areaFor("/system/tenants")?.key).toBe("tenants");
    expect(areaFor("/modelsx")).toBeNull();
    expect(areaFor("/nowhere")).toBeNull();
  });
});

describe("allowed", () => {
  it("keeps system pages for platform admins", () => {
    expect(allowed("admin", "MAINTAINER")).toBe(false);
    expect(allowed("admin", "ADMIN")).toBe(true);
    expect(allowed("member", "MEMBER")).toBe(true);
    expect(allowed("member", "NONE")).toBe(false);
  });
});
