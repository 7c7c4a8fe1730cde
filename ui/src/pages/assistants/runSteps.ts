// A run of an assistant as the people watching it read it: the model's text per step, each tool call with its
// arguments and (once back) its result, errors, and the final answer. Built from the live assistantRun events
// and, the same way, from a stored run's steps. No React here (unit-tested in node).

/** An assistantRun event (the GraphQL type's fields the view uses). */
export interface RunEvent {
  runId?: string | null;
  threadId: string;
  kind: string;
  step: number;
  content: string;
  tool: string;
  arguments: string;
  callId: string;
  ok: boolean;
  errorCode: string;
  promptTokens: number;
  completionTokens: number;
  stopReason: string;
  durationMs: number;
}

export type RunEntry =
  | { type: "text"; step: number; content: string }
  | {
    type: "tool"; step: number; callId: string; tool: string; arguments: string;
    result: { ok: boolean; content: string; errorCode: string; durationMs: number } | null;
  }
  | { type: "final"; step: number; content: string; stopReason: string }
  | { type: "error"; content: string; errorCode: string };

export interface RunView {
  runId: string | null;
  threadId: string;
  entries: RunEntry[];
  promptTokens: number;
  completionTokens: number;
  /** Set by the final or an error event. */
  done: boolean;
  stopReason: string;
}

export const EMPTY_RUN: RunView = {
  runId: null, threadId: "", entries: [], promptTokens: 0, completionTokens: 0, done: false, stopReason: "",
};

/** The view after one more event (a new object; the entries it changes are copied). */
export function reduceRun(view: RunView, e: RunEvent): RunView {
  const next: RunView = { ...view, threadId: e.threadId || view.threadId, runId: e.runId ?? view.runId };
  const entries = view.entries.slice();
  const last = entries[entries.length - 1];
  switch (e.kind) {
    case "started":
      return next;
    case "text":
      if (last && last.type === "text" && last.step === e.step) entries[entries.length - 1] = { ...last, content: last.content + e.content };
      else entries.push({ type: "text", step: e.step, content: e.content });
      break;
    case "tool_call":
      entries.push({ type: "tool", step: e.step, callId: e.callId, tool: e.tool, arguments: e.arguments, result: null });
      break;
    case "tool_result": {
      const result = { ok: e.ok, content: e.content, errorCode: e.errorCode, durationMs: e.durationMs };
      let found = false;
      for (let i = entries.length - 1; i >= 0; i--) {
        const entry = entries[i];
        if (entry.type === "tool" && entry.callId === e.callId && entry.result === null) {
          entries[i] = { ...entry, result };
          found = true;
          break;
        }
      }
      if (!found) {
        entries.push({ type: "tool", step: e.step, callId: e.callId, tool: e.tool, arguments: "", result });
      }
      break;
    }
    case "usage":
      return { ...next, promptTokens: e.promptTokens, completionTokens: e.completionTokens };
    case "final": {
      // the answer streamed as the last step's text: show it once, as the answer
      if (last && last.type === "text" && last.step === e.step && last.content.trim() === e.content.trim()) entries.pop();
      entries.push({ type: "final", step: e.step, content: e.content, stopReason: e.stopReason });
      return { ...next, entries, done: true, stopReason: e.stopReason, promptTokens: e.promptTokens,
        completionTokens: e.completionTokens };
    }
    case "error":
      entries.push({ type: "error", content: e.content, errorCode: e.errorCode });
      return { ...next, entries, done: true, stopReason: e.stopReason || "error" };
    default:
      return next;
  }
  return { ...next, entries };
}

/** A stored step (AssistantRun.steps: snake_case records, text pieces left out) as an event. */
function stepEvent(step: Record<string, unknown>, threadId: string): RunEvent {
  const str = (key: string) => (typeof step[key] === "string" ? (step[key] as string) : "");
  const num = (key: string) => (typeof step[key] === "number" ? (step[key] as number) : 0);
  return {
    threadId, kind: str("kind"), step: num("step"), content: str("content"), tool: str("tool"),
    arguments: str("arguments"), callId: str("call_id"), ok: step.ok !== false, errorCode: str("error_code"),
    promptTokens: num("prompt_tokens"), completionTokens: num("completion_tokens"), stopReason: str("stop_reason"),
    durationMs: num("duration_ms"),
  };
}

/** A stored run's steps as the same view as a live run. */
export function viewOfSteps(steps: unknown, runId: string | null = null, threadId = ""): RunView {
  let view: RunView = { ...EMPTY_RUN, runId, threadId };
  if (!Array.isArray(steps)) return view;
  for (const step of steps) {
    if (step && typeof step === "object") view = reduceRun(view, stepEvent(step as Record<string, unknown>, threadId));
  }
  return view;
}

/** Arguments as indented JSON when they are JSON, else as they came. */
export function prettyJson(text: string): string {
  if (!text.trim()) return text;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
