// An assistant's past runs (newest first, paged on the server), one thread's with the thread filter; each run's
// steps on demand, and "Continue thread" into the playground.
import { useEffect, useState } from "react";
import { graphql } from "../../gql";
import { usePaging, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { Button, Card, DataTable, ErrorText, Pager, formatTime, type Column } from "../../components/ui";
import type { AssistantsPageRunsQuery } from "../../gql/graphql";
import { viewOfSteps } from "./runSteps";
import { RunSteps } from "./RunSteps";
import { text } from "./text";

const Runs = graphql(`
  query AssistantsPageRuns($assistantId: ID!, $threadId: String, $pagination: Pagination) {
    assistantRuns(assistantId: $assistantId, threadId: $threadId, pagination: $pagination) {
      totalCount
      items {
        id assistantId threadId request response steps status stopReason promptTokens completionTokens version channelId
        operator createdAt
      }
    }
  }
`);

type RunRow = AssistantsPageRunsQuery["assistantRuns"]["items"][number];

const TONE: Record<string, string> = { completed: "ok", running: "wait", stopped: "off", failed: "bad" };

function short(value: string, max = 120): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}

export function RunsList({ assistantId, refresh, onContinue }: {
  assistantId: string; refresh: number; onContinue?: (threadId: string) => void;
}) {
  const t = useText(text);
  const paging = usePaging(10);
  const [thread, setThread] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const runs = useQuery(Runs, { assistantId, threadId: thread, pagination: paging.pagination });
  const { reload } = runs;
  useEffect(() => {
    if (refresh > 0) void reload();
  }, [refresh, reload]);

  const columns: Column<RunRow>[] = [
    { key: "when", title: t("when"), render: (r) => formatTime(r.createdAt) },
    { key: "request", title: t("request"), render: (r) => short(r.request) },
    { key: "response", title: t("response"), render: (r) => short(r.response) || "—" },
    { key: "status", title: t("status"), render: (r) => (
      <span className={`badge tone-${TONE[r.status] ?? "off"}`} data-status={r.status}>
        {r.status}{r.stopReason && r.stopReason !== "completed" ? ` · ${r.stopReason}` : ""}
      </span>
    ) },
    { key: "version", title: t("runVersion"), render: (r) => (r.version ? t("version", { n: r.version }) : t("versionPlayground")) },
    { key: "tokens", title: t("tokensCol"), render: (r) => `${r.promptTokens} + ${r.completionTokens}` },
    { key: "actions", title: t("actions"), render: (r) => (
      <span className="actions">
        <Button onClick={() => setOpen(open === r.id ? null : r.id)} aria-expanded={open === r.id}>{t("showSteps")}</Button>
        {thread ? null : <Button onClick={() => { setThread(r.threadId); paging.setOffset(0); }}>{t("showThread")}</Button>}
        {onContinue ? <Button onClick={() => onContinue(r.threadId)}>{t("continueThread")}</Button> : null}
      </span>
    ) },
  ];
  const shown = runs.data?.assistantRuns.items.find((r) => r.id === open);

  return (
    <Card title={t("runs")} actions={thread ? (
      <span className="actions">
        <span className="muted mono">{t("thread", { id: thread })}</span>
        <Button onClick={() => { setThread(null); paging.setOffset(0); }}>{t("allThreads")}</Button>
      </span>
    ) : undefined}>
      <ErrorText error={runs.error} />
      <DataTable caption={t("runsCaption")} columns={columns} rows={runs.data?.assistantRuns.items} rowKey={(r) => r.id} loading={runs.loading} />
      <Pager offset={paging.offset} limit={paging.limit} total={runs.data?.assistantRuns.totalCount ?? 0} onChange={paging.setOffset} />
      {shown ? (
        <section aria-label={t("steps")}>
          <h3>{t("steps")}: {short(shown.request, 60)}</h3>
          <div className="msg user">{shown.request}</div>
          <RunSteps view={viewOfSteps(shown.steps, shown.id, shown.threadId)} />
        </section>
      ) : null}
    </Card>
  );
}
