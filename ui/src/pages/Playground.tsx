// Chat playground: a streamed chat completion (chatPlayground subscription) charged to a channel of the tenant,
// optionally with two models side by side on the same prompts; each column keeps and sends its own history.
import { useEffect, useMemo, useState } from "react";
import { Button, Card, Checkbox, ErrorText, NumberInput, Page, Select, TextArea } from "../components/ui";
import { graphql } from "../gql";
import type { PlaygroundInput } from "../gql/graphql";
import { useQuery } from "../hooks/api";
import { useText } from "../i18n";
import { useSession } from "../state/session";
import { ChatColumn, Stream, type Chunk } from "./playground/ChatColumn";
import { applyChunk, endTurn, isStreaming, startTurn, toMessages, type Turn } from "./playground/conversation";
import { text } from "./playground/text";

const Channels = graphql(`
  query PlaygroundPageChannels {
    channels(pagination: { offset: 0, limit: 100 }) {
      items { id alias enabled models { id name } }
    }
  }
`);

interface Column {
  model: string;
  history: Turn[];
  /** the request being streamed, and its turn number (the <Stream> key) */
  pending: PlaygroundInput | null;
  turn: number;
}

const emptyColumn = (model = ""): Column => ({ model, history: [], pending: null, turn: 0 });

export default function Playground(_: { path: string }) {
  const t = useText(text);
  const { tenantId } = useSession();
  if (!tenantId) return <Page title={t("title")}><p className="notice">{t("chooseTenant")}</p></Page>;
  return <PlaygroundBody />;
}

function PlaygroundBody() {
  const t = useText(text);
  const channels = useQuery(Channels, {});
  const items = useMemo(() => channels.data?.channels.items ?? [], [channels.data]);
  const [channelId, setChannelId] = useState("");
  const [compare, setCompare] = useState(false);
  const [columns, setColumns] = useState<[Column, Column]>([emptyColumn(), emptyColumn()]);
  const [message, setMessage] = useState("");
  const [system, setSystem] = useState("");
  const [temperature, setTemperature] = useState<number | null>(null);
  const [maxTokens, setMaxTokens] = useState<number | null>(null);

  // the first usable channel by default
  useEffect(() => {
    if (!channelId && items.length) setChannelId((items.find((c) => c.enabled) ?? items[0]).id);
  }, [items, channelId]);
  const channel = items.find((c) => c.id === channelId);
  const models = useMemo(() => (channel?.models ?? []).map((m) => ({ value: m.name, label: m.name })), [channel]);

  // keep each column's model one of the channel's
  useEffect(() => {
    setColumns((cols) => {
      const pick = (current: string, fallback: number) =>
        models.some((m) => m.value === current) ? current : (models[Math.min(fallback, models.length - 1)]?.value ?? "");
      const a = pick(cols[0].model, 0);
      const b = pick(cols[1].model, 1);
      return a === cols[0].model && b === cols[1].model ? cols : [{ ...cols[0], model: a }, { ...cols[1], model: b }];
    });
  }, [models]);

  const active = compare ? [0, 1] : [0];
  const streaming = active.some((i) => isStreaming(columns[i].history));
  const canSend = Boolean(channel && message.trim() && active.every((i) => columns[i].model) && !streaming);

  const update = (index: number, change: (c: Column) => Column) =>
    setColumns((cols) => {
      const next: [Column, Column] = [cols[0], cols[1]];
      next[index] = change(cols[index]);
      return next;
    });

  const send = () => {
    if (!canSend || !channel) return;
    const question = message;
    setColumns((cols) => {
      const next: [Column, Column] = [cols[0], cols[1]];
      for (const i of active) {
        const col = cols[i];
        const input: PlaygroundInput = {
          channelId: channel.id,
          model: col.model,
          messages: [...toMessages(col.history, system), { role: "user", content: question }],
          temperature,
          maxTokens,
        };
        next[i] = { ...col, history: startTurn(col.history, question), pending: input, turn: col.turn + 1 };
      }
      return next;
    });
    setMessage("");
  };

  const onChunk = (index: number) => (chunk: Chunk) =>
    update(index, (col) => {
      const history = applyChunk(col.history, chunk);
      const ended = Boolean(chunk.finishReason || chunk.error);
      return { ...col, history, pending: ended ? null : col.pending };
    });
  const onEnd = (index: number) => (error: string | null) =>
    update(index, (col) => ({ ...col, history: endTurn(col.history, error), pending: null }));
  const stop = () => {
    for (const i of [0, 1]) update(i, (col) => ({ ...col, history: endTurn(col.history), pending: null }));
  };
  const clear = () => setColumns((cols) => [emptyColumn(cols[0].model), emptyColumn(cols[1].model)]);

  if (channels.data && items.length === 0) {
    return <Page title={t("title")}><p className="notice">{t("noChannels")}</p></Page>;
  }

  return (
    <Page title={t("title")}>
      <ErrorText error={channels.error} />
      <Card title={t("settings")}>
        <div className="form-grid">
          <Select label={t("channel")} name="channelId" value={channelId}
            options={items.map((c) => ({ value: c.id, label: c.enabled ? c.alias : `${c.alias} (off)` }))}
            onChange={(v) => { setChannelId(v); clear(); }} />
          <NumberInput label={t("temperature")} name="temperature" min={0} max={2} step={0.1} value={temperature}
            onChange={setTemperature} />
          <NumberInput label={t("maxTokens")} name="maxTokens" min={1} step={1} value={maxTokens} onChange={setMaxTokens} />
          <Checkbox label={t("compare")} name="compare" checked={compare} onChange={setCompare} />
        </div>
        <TextArea label={t("system")} name="system" rows={2} value={system} onChange={setSystem} />
        <small className="muted">{t("hint")}</small>
        {channel && models.length === 0 ? <p className="notice">{t("noModels")}</p> : null}
      </Card>
      <div className={compare ? "grid-2" : undefined}>
        {active.map((i) => (
          <ChatColumn key={i} id={i === 0 ? "a" : "b"} label={i === 0 ? t("modelA") : t("modelB")} model={columns[i].model}
            models={models} history={columns[i].history}
            onModel={(model) => update(i, (col) => ({ ...col, model }))} />
        ))}
      </div>
      {columns.map((col, i) => col.pending ? (
        <Stream key={`${i}:${col.turn}`} input={col.pending} onChunk={onChunk(i)} onEnd={onEnd(i)} />
      ) : null)}
      <Card>
        <form onSubmit={(e) => { e.preventDefault(); send(); }}>
          <TextArea label={t("message")} name="message" rows={3} value={message} onChange={setMessage} />
          <div className="actions">
            <Button kind="primary" type="submit" disabled={!canSend}>{t("send")}</Button>
            {streaming ? <Button onClick={stop}>{t("stop")}</Button> : null}
            <Button onClick={clear} disabled={streaming}>{t("clear")}</Button>
          </div>
        </form>
      </Card>
    </Page>
  );
}
