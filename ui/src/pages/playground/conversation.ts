// One column's conversation: the turns shown, the streamed answer growing chunk by chunk, and the history sent
// with the next turn (answers that failed or came back empty are left out, with the question that led to them).

export interface Turn {
  role: "user" | "assistant";
  content: string;
  /** the last chunk's finishReason ("stop", "length", "error", …) */
  finishReason?: string | null;
  error?: string | null;
  streaming?: boolean;
}

export interface Chunk {
  content: string;
  finishReason?: string | null;
  error?: string | null;
}

export interface Message {
  role: string;
  content: string;
}

/** The question and an empty answer that the stream fills. */
export function startTurn(history: readonly Turn[], question: string): Turn[] {
  return [...history, { role: "user", content: question }, { role: "assistant", content: "", streaming: true }];
}

function updateLast(history: readonly Turn[], update: (turn: Turn) => Turn): Turn[] {
  const last = history.length - 1;
  if (last < 0 || history[last].role !== "assistant") return history.slice();
  const next = history.slice();
  next[last] = update(history[last]);
  return next;
}

/** Append a chunk to the answer being streamed; a chunk with finishReason or error ends it. */
export function applyChunk(history: readonly Turn[], chunk: Chunk): Turn[] {
  return updateLast(history, (turn) => {
    const ends = Boolean(chunk.finishReason || chunk.error);
    return {
      ...turn,
      content: turn.content + (chunk.content ?? ""),
      finishReason: chunk.finishReason ?? turn.finishReason ?? null,
      error: chunk.error ?? turn.error ?? null,
      streaming: turn.streaming && !ends,
    };
  });
}

/** The stream ended (completed, failed or stopped): the answer is no longer streaming. */
export function endTurn(history: readonly Turn[], error?: string | null): Turn[] {
  return updateLast(history, (turn) => {
    if (!turn.streaming) return turn;
    return { ...turn, streaming: false, error: error ?? turn.error ?? null };
  });
}

export function isStreaming(history: readonly Turn[]): boolean {
  return history.some((t) => t.streaming);
}

/** The messages for the next request: an optional system prompt, then the good question/answer pairs. */
export function toMessages(history: readonly Turn[], system?: string): Message[] {
  const out: Message[] = [];
  if (system && system.trim()) out.push({ role: "system", content: system });
  for (let i = 0; i < history.length; i++) {
    const turn = history[i];
    if (turn.role === "user") {
      const answer = history[i + 1];
      if (answer && answer.role === "assistant" && (answer.error || answer.streaming || !answer.content)) {
        i++; // skip the pair
        continue;
      }
      out.push({ role: "user", content: turn.content });
    } else if (!turn.error && !turn.streaming && turn.content) {
      out.push({ role: "assistant", content: turn.content });
    }
  }
  return out;
}
