import { describe, expect, it } from "vitest";
import { channelFormProblem, channelToForm, emptyChannelForm, formToInput } from "./form";
import { isoToLocalInput, localInputToIso, utcDay } from "./time";

describe("formToInput", () => {
  it("asks for no limits by default", () => {
    const input = formToInput({ ...emptyChannelForm(), alias: "  app  ", modelIds: ["3"] });
    expect(input).toEqual({
      alias: "app", remark: "", email: "", enabled: true, modelIds: ["3"],
      unlimitedQuota: true, unlimitedRpm: true, unlimitedTpm: true, neverExpires: true,
    });
  });

  it("sends the limits that are set, and leaves the alias out when empty", () => {
    const input = formToInput({
      ...emptyChannelForm(), quota: 1000, unlimitedQuota: false, rpmLimit: 60, unlimitedRpm: false,
      tpmLimit: null, unlimitedTpm: false, expiresAt: "2099-01-02T03:04", neverExpires: false,
    });
    expect(input.alias).toBeUndefined();
    expect(input.quota).toBe(1000);
    expect(input.unlimitedQuota).toBeUndefined();
    expect(input.rpmLimit).toBe(60);
    expect(input.unlimitedTpm).toBe(true); // blank: no limit
    expect(input.expiresAt).toBe(new Date("2099-01-02T03:04").toISOString());
    expect(input.neverExpires).toBeUndefined();
  });

  it("ignores a number when its unlimited box is ticked", () => {
    const input = formToInput({ ...emptyChannelForm(), quota: 5, unlimitedQuota: true });
    expect(input.quota).toBeUndefined();
    expect(input.unlimitedQuota).toBe(true);
  });
});

describe("channelToForm", () => {
  it("turns nulls into ticked unlimited boxes and keeps the values", () => {
    const form = channelToForm({
      alias: "a", remark: "r", email: "e@x", quota: null, expiresAt: null, rpmLimit: 10, tpmLimit: null,
      enabled: false, modelIds: ["1", "2"],
    });
    expect(form.unlimitedQuota).toBe(true);
    expect(form.neverExpires).toBe(true);
    expect(form.unlimitedRpm).toBe(false);
    expect(form.rpmLimit).toBe(10);
    expect(form.enabled).toBe(false);
    expect(formToInput(form).rpmLimit).toBe(10);
  });
});

describe("channelFormProblem", () => {
  it("names the bad field", () => {
    expect(channelFormProblem(emptyChannelForm())).toBeNull();
    expect(channelFormProblem({ ...emptyChannelForm(), email: "nope" })).toBe("email");
    expect(channelFormProblem({ ...emptyChannelForm(), rpmLimit: 0, unlimitedRpm: false })).toBe("rpmLimit");
    expect(channelFormProblem({ ...emptyChannelForm(), quota: 1.5, unlimitedQuota: false })).toBe("quota");
  });
});

describe("time", () => {
  it("round-trips datetime-local values", () => {
    expect(isoToLocalInput(localInputToIso("2030-06-07T08:09"))).toBe("2030-06-07T08:09");
    expect(localInputToIso("")).toBeNull();
    expect(isoToLocalInput(null)).toBe("");
  });
  it("counts UTC days", () => {
    const now = new Date(Date.UTC(2024, 2, 1, 23, 0));
    expect(utcDay(now)).toBe("2024-03-01");
    expect(utcDay(now, -1)).toBe("2024-02-29");
  });
});
