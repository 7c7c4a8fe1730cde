// One model's side of the playground: its model choice, its conversation, and the live stream of the turn
// being answered (a <Stream> is mounted per turn: unmounting it unsubscribes, which stops the call).
import { useEffect, useRef } from "react";
import { subscribe } from "../../api/client";
import { Card, Select } from "../../components/ui";
import { graphql } from "../../gql";
import type { PlaygroundInput, PlaygroundPageChatSubscription } from "../../gql/graphql";
import { useText } from "../../i18n";
import type { Turn } from "./conversation";
import { text } from "./text";

const Chat = graphql(`
  subscription PlaygroundPageChat($input: PlaygroundInput!) {
    chatPlayground(input: $input) { content finishReason error }
  }
`);

export type Chunk = PlaygroundPageChatSubscription["chatPlayground"];

export function Stream({ input, onChunk, onEnd }: {
  input: PlaygroundInput;
  onChunk: (chunk: Chunk) => void;
  onEnd: (error: string | null) => void;
}) {
  // Not useSubscription: graphql-ws calls `complete` after an unsubscribe too, and this turn must not be ended by
  // the completion of a subscription it already left (StrictMode's second effect run, a Stop, the next turn).
  const handlers = useRef({ onChunk, onEnd });
  handlers.current = { onChunk, onEnd };
  const key = JSON.stringify(input);
  useEffect(() => {
    let open = true;
    const stop = subscribe(Chat, { input: JSON.parse(key) as PlaygroundInput }, {
      next: (data) => { if (open) handlers.current.onChunk(data.chatPlayground); },
      error: (e) => { if (open) handlers.current.onEnd(e.message); },
      complete: () => { if (open) handlers.current.onEnd(null); },
    });
    return () => {
      open = false;
      stop();
    };
  }, [key]);
  return null;
}

export function ChatColumn({ id, label, model, models, onModel, history }: {
  id: "a" | "b";
  label: string;
  model: string;
  models: readonly { value: string; label: string }[];
  onModel: (model: string) => void;
  history: readonly Turn[];
}) {
  const t = useText(text);
  return (
    <Card>
      <Select label={label} name={`model${id.toUpperCase()}`} value={model} options={models} onChange={onModel} />
      <div className="chat" role="log" aria-label={t("conversation", { column: id.toUpperCase() })} data-testid={`chat-${id}`}>
        {history.length === 0 ? <p className="muted">{t("empty")}</p> : null}
        {history.map((turn, i) => turn.role === "user" ? (
          <div key={i} className="msg user"><span className="sr-only">{t("you")}: </span>{turn.content}</div>
        ) : (
          <div key={i} className="msg assistant" data-streaming={turn.streaming ? "true" : "false"}
            data-finish-reason={turn.finishReason ?? ""} aria-busy={turn.streaming}>
            <span className="sr-only">{t("assistant")}: </span>
            <span className="msg-text">{turn.content}</span>
            {turn.streaming && !turn.content ? <span className="muted">{t("streaming")}</span> : null}
            {turn.error ? <p className="error" role="alert">{turn.error}</p> : null}
            {!turn.streaming && turn.finishReason && !turn.error ? (
              <small className="muted finish-reason"> · {t("finish", { reason: turn.finishReason })}</small>
            ) : null}
          </div>
        ))}
      </div>
    </Card>
  );
}
