import { describe, expect, it } from "vitest";
import { checkMessages, messagesJson, nextRole, parseMessages, preview } from "./messages";

const m = (role: string, content = "x") => ({ role, content });

describe("checkMessages", () => {
  it("accepts a system prompt and a chat with an answer", () => {
    expect(checkMessages([m("system"), m("user"), m("assistant")], "MESSAGES")).toBeNull();
    expect(checkMessages([m("user"), m("user"), m("assistant")], "MESSAGES")).toBeNull();
  });
  it("refuses what the platform refuses", () => {
    expect(checkMessages([], "MESSAGES")).toEqual({ code: "empty" });
    expect(checkMessages([m("bot")], "MESSAGES")).toEqual({ code: "role", index: 0 });
    expect(checkMessages([m("user"), m("system"), m("assistant")], "MESSAGES")).toEqual({ code: "systemFirst", index: 1 });
    expect(checkMessages([m("system"), m("user")], "MESSAGES")).toEqual({ code: "noAssistant" });
  });
  it("asks alpaca datasets for user and assistant in turn, ending with the assistant", () => {
    expect(checkMessages([m("user"), m("user"), m("assistant")], "ALPACA")).toEqual({ code: "alternate", index: 1, expected: "assistant" });
    expect(checkMessages([m("system"), m("assistant")], "ALPACA")).toEqual({ code: "alternate", index: 1, expected: "user" });
    expect(checkMessages([m("user"), m("assistant"), m("user")], "ALPACA")).toEqual({ code: "lastAssistant" });
    expect(checkMessages([m("system"), m("user"), m("assistant")], "ALPACA")).toBeNull();
  });
});

describe("parseMessages", () => {
  it("reads a list or an OpenAI line", () => {
    expect(parseMessages('[{"role": "user", "content": "hi"}]')).toEqual({ rows: [{ role: "user", content: "hi" }] });
    expect(parseMessages('{"messages": [{"role": "assistant", "content": "a", "name": "x"}]}'))
      .toEqual({ rows: [{ role: "assistant", content: "a" }] });
  });
  it("names what is wrong", () => {
    expect(parseMessages("[{")).toMatchObject({ problem: { code: "json" } });
    expect(parseMessages('{"a": 1}')).toEqual({ problem: { code: "shape" } });
    expect(parseMessages("[1]")).toEqual({ problem: { code: "item", index: 0 } });
    expect(parseMessages('[{"role": "bot", "content": "x"}]')).toEqual({ problem: { code: "role", index: 0 } });
    expect(parseMessages('[{"role": "user", "content": 5}]')).toEqual({ problem: { code: "content", index: 0 } });
  });
  it("round-trips through messagesJson", () => {
    const rows = [m("system", "s"), m("user", "q"), m("assistant", "a")];
    expect(parseMessages(messagesJson(rows))).toEqual({ rows });
  });
});

describe("helpers", () => {
  it("nextRole alternates", () => {
    expect(nextRole([])).toBe("user");
    expect(nextRole([m("system")])).toBe("user");
    expect(nextRole([m("user")])).toBe("assistant");
  });
  it("preview joins and cuts", () => {
    expect(preview([m("user", "hello\n world"), m("assistant", "hi")])).toBe("user: hello world · assistant: hi");
    expect(preview([m("user", "x".repeat(50))], 10)).toBe("user: xxxx…");
  });
});
