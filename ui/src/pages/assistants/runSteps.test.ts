import { describe, expect, it } from "vitest";
import { EMPTY_RUN, prettyJson, reduceRun, viewOfSteps, type RunEvent } from "./runSteps";

const ev = (kind: string, more: Partial<RunEvent> = {}): RunEvent => ({
  runId: "9", threadId: "t1", kind, step: 1, content: "", tool: "", arguments: "", callId: "", ok: true, errorCode: "",
  promptTokens: 0, completionTokens: 0, stopReason: "", durationMs: 0, ...more,
});

const play = (events: RunEvent[]) => events.reduce(reduceRun, EMPTY_RUN);

describe("reduceRun", () => {
  it("joins the text of a step, pairs tool calls with their results, and ends with the answer", () => {
    const view = play([
      ev("started"),
      ev("text", { content: "Let me " }),
      ev("text", { content: "check." }),
      ev("usage", { promptTokens: 10, completionTokens: 3 }),
      ev("tool_call", { tool: "weather", arguments: '{"city":"Oslo"}', callId: "c1" }),
      ev("tool_result", { tool: "weather", callId: "c1", content: "sunny", durationMs: 12.5 }),
      ev("text", { step: 2, content: "It is sunny." }),
      ev("final", { step: 2, content: "It is sunny.", stopReason: "completed", promptTokens: 30, completionTokens: 9 }),
    ]);
    expect(view.runId).toBe("9");
    expect(view.threadId).toBe("t1");
    expect(view.done).toBe(true);
    expect(view.stopReason).toBe("completed");
    expect(view.promptTokens).toBe(30);
    expect(view.entries).toEqual([
      { type: "text", step: 1, content: "Let me check." },
      { type: "tool", step: 1, callId: "c1", tool: "weather", arguments: '{"city":"Oslo"}',
        result: { ok: true, content: "sunny", errorCode: "", durationMs: 12.5 } },
      { type: "final", step: 2, content: "It is sunny.", stopReason: "completed" },
    ]);
  });
  it("keeps a failed tool's error code and a stop's reason", () => {
    const view = play([
      ev("tool_call", { tool: "x", callId: "react-1" }),
      ev("tool_result", { tool: "x", callId: "react-1", ok: false, errorCode: "ADDRESS_NOT_ALLOWED", content: "no" }),
      ev("final", { content: "the run reached its limit of 1 steps", stopReason: "max_steps" }),
    ]);
    expect(view.entries[0]).toMatchObject({ type: "tool", result: { ok: false, errorCode: "ADDRESS_NOT_ALLOWED" } });
    expect(view.entries[1]).toMatchObject({ type: "final", stopReason: "max_steps" });
  });
  it("shows an error event", () => {
    const view = play([ev("error", { runId: null, content: "assistant not found", errorCode: "NOT_FOUND" })]);
    expect(view.done).toBe(true);
    expect(view.entries).toEqual([{ type: "error", content: "assistant not found", errorCode: "NOT_FOUND" }]);
  });
  it("does not change the view it is given", () => {
    const first = play([ev("text", { content: "a" })]);
    const second = reduceRun(first, ev("text", { content: "b" }));
    expect(first.entries).toEqual([{ type: "text", step: 1, content: "a" }]);
    expect(second.entries).toEqual([{ type: "text", step: 1, content: "ab" }]);
  });
});

describe("viewOfSteps", () => {
  it("reads a stored run's steps", () => {
    const view = viewOfSteps([
      { kind: "tool_call", step: 1, tool: "weather", arguments: "{}", call_id: "c1" },
      { kind: "tool_result", step: 1, tool: "weather", call_id: "c1", ok: false, error_code: "TIMEOUT", duration_ms: 5 },
      { kind: "final", step: 2, content: "sorry", stop_reason: "completed", prompt_tokens: 4, completion_tokens: 2 },
    ], "3", "t");
    expect(view.entries).toHaveLength(2);
    expect(view.entries[0]).toMatchObject({ result: { ok: false, errorCode: "TIMEOUT", durationMs: 5 } });
    expect(view.completionTokens).toBe(2);
    expect(viewOfSteps(null).entries).toEqual([]);
  });
});

describe("prettyJson", () => {
  it("indents JSON and leaves other text alone", () => {
    expect(prettyJson('{"a":1}')).toBe('{\n  "a": 1\n}');
    expect(prettyJson("Oslo")).toBe("Oslo");
  });
});
