// The playground: runs the assistant as it is now through the assistantRun subscription and shows each step as
// it arrives (applied once per frame: a streaming model sends many small text events). A thread goes on with
// the next message until "New thread"; a past thread is continued from the runs list.
import { useEffect, useRef, useState } from "react";
import { subscribe } from "../../api/client";
import { graphql } from "../../gql";
import { useQuery } from "../../hooks/api";
import { FrameBatcher } from "../../hooks/batched";
import { useText } from "../../i18n";
import { Button, Card, ErrorText, NumberInput, Select, TextArea } from "../../components/ui";
import { STACK } from "./fields";
import { channelLabel, useAssistantOptions } from "./options";
import { EMPTY_RUN, reduceRun, viewOfSteps, type RunEvent, type RunView } from "./runSteps";
import { RunSteps } from "./RunSteps";
import { text } from "./text";

const Run = graphql(`
  subscription AssistantsPageRun($input: AssistantRunInput!) {
    assistantRun(input: $input) {
      runId threadId kind step content tool arguments callId ok errorCode promptTokens completionTokens stopReason
      durationMs
    }
  }
`);

const ThreadRuns = graphql(`
  query AssistantsPageThread($assistantId: ID!, $threadId: String) {
    assistantRuns(assistantId: $assistantId, threadId: $threadId, pagination: { offset: 0, limit: 20 }) {
      items { id threadId request response steps stopReason promptTokens completionTokens }
    }
  }
`);

interface Turn {
  question: string;
  view: RunView;
}

export function Playground({ assistantId, modelName, continued, onReset, onFinished }: {
  assistantId: string; modelName: string;
  /** A past thread to go on with (from the runs list); its earlier turns are shown. */
  continued: string | null;
  /** "New thread": the thread continued is left. */
  onReset: () => void;
  /** A run ended (the runs list reloads). */
  onFinished: () => void;
}) {
  const t = useText(text);
  const options = useAssistantOptions();
  const [channelId, setChannelId] = useState("");
  const [temperature, setTemperature] = useState<number | null>(null);
  const [message, setMessage] = useState("");
  const [thread, setThread] = useState<string | null>(continued);
  const [turns, setTurns] = useState<Turn[]>([]);
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const stop = useRef<(() => void) | null>(null);
  const batcher = useRef<FrameBatcher<RunEvent> | null>(null);
  const onFinishedRef = useRef(onFinished);
  onFinishedRef.current = onFinished;

  const history = useQuery(ThreadRuns, { assistantId, threadId: continued }, { skip: !continued });
  useEffect(() => {
    setThread(continued);
    setTurns([]);
  }, [continued]);

  if (!batcher.current) {
    batcher.current = new FrameBatcher<RunEvent>((batch) => {
      setTurns((all) => {
        if (all.length === 0) return all;
        const last = all[all.length - 1];
        return [...all.slice(0, -1), { ...last, view: batch.reduce(reduceRun, last.view) }];
      });
      const threadId = [...batch].reverse().find((e) => e.threadId)?.threadId;
      if (threadId) setThread(threadId);
      if (batch.some((e) => e.kind === "final" || e.kind === "error")) {
        setRunning(false);
        onFinishedRef.current();
      }
    });
  }
  useEffect(() => () => {
    stop.current?.();
    stop.current = null;
  }, []);

  const models = options.data?.models.items ?? [];
  const modelId = models.find((m) => m.name === modelName)?.id;
  const channels = options.data?.channels.items ?? [];
  const usable = modelId ? channels.filter((c) => c.modelIds.includes(modelId)) : channels;
  useEffect(() => {
    if (!channelId && usable.length) setChannelId(usable[0].id);
  }, [channelId, usable]);

  const send = () => {
    const content = message.trim();
    if (!content || !channelId || running) return;
    setError(null);
    setMessage("");
    setTurns((all) => [...all, { question: content, view: { ...EMPTY_RUN, threadId: thread ?? "" } }]);
    setRunning(true);
    const synthetic = (kind: string, body: string): RunEvent => ({
      threadId: "", kind, step: 0, content: body, tool: "", arguments: "", callId: "", ok: false, errorCode: kind === "error" ? "SUBSCRIPTION" : "",
      promptTokens: 0, completionTokens: 0, stopReason: kind === "error" ? "error" : "", durationMs: 0,
    });
    stop.current = subscribe(Run, {
      input: { assistantId, channelId, messages: [{ role: "user", content }], threadId: thread, temperature },
    }, {
      next: (data) => batcher.current?.push(data.assistantRun),
      error: (e) => {
        batcher.current?.push(synthetic("error", e.message));
        setRunning(false);
      },
      complete: () => {
        stop.current = null;
        setRunning(false);
      },
    });
  };

  const halt = () => {
    stop.current?.();
    stop.current = null;
    setRunning(false);
    setTurns((all) => {
      if (all.length === 0) return all;
      const last = all[all.length - 1];
      return last.view.done ? all : [...all.slice(0, -1), { ...last, view: { ...last.view, done: true, stopReason: "cancelled" } }];
    });
  };

  const newThread = () => {
    halt();
    setTurns([]);
    setThread(null);
    onReset();
  };

  const past = continued ? [...(history.data?.assistantRuns.items ?? [])].reverse() : [];

  return (
    <Card title={t("playground")} actions={<Button onClick={newThread} disabled={running}>{t("newThread")}</Button>}>
      <ErrorText error={options.error ?? history.error ?? error} />
      <div className="form-grid">
        <Select label={t("channel")} name="channelId" value={channelId} onChange={setChannelId} hint={usable.length ? t("channelHint") : t("noChannel")}
          options={[{ value: "", label: t("choose") }, ...usable.map((c) => ({ value: c.id, label: channelLabel(c) }))]} />
        <NumberInput label={t("temperature")} name="temperature" value={temperature} onChange={setTemperature} min={0} max={2} step={0.1}
          hint={t("temperatureHint")} />
      </div>
      <p className="muted" data-testid="thread-id">{thread ? t("thread", { id: thread }) : t("noThread")}</p>
      <div className="chat" aria-label={t("playground")}>
        {past.map((run) => (
          <div key={`past-${run.id}`}>
            <div className="msg user"><small className="muted">{t("you")}</small><div>{run.request}</div></div>
            <RunSteps view={viewOfSteps(run.steps, run.id, run.threadId)} />
          </div>
        ))}
        {turns.map((turn, i) => (
          <div key={i}>
            <div className="msg user"><small className="muted">{t("you")}</small><div>{turn.question}</div></div>
            <RunSteps view={turn.view} live={i === turns.length - 1} />
          </div>
        ))}
      </div>
      <form style={STACK} aria-label={t("playground")} onSubmit={(e) => { e.preventDefault(); send(); }}>
        <TextArea label={t("message")} name="content" value={message} onChange={setMessage} rows={3} />
        <div className="actions">
          <Button kind="primary" type="submit" disabled={!channelId || !message.trim()} busy={running}>{t("send")}</Button>
          {running ? <Button kind="danger" onClick={halt}>{t("stop")}</Button> : null}
        </div>
      </form>
    </Card>
  );
}
