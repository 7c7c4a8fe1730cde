// One assistant: its settings, tools and MCP servers (attach, detach), publishing, the playground and its runs.
import { useState } from "react";
import { graphql } from "../../gql";
import { mutate, useAction, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { navigate } from "../../router";
import { useSession } from "../../state/session";
import { Button, Card, ConfirmButton, ErrorText, Loading, Page, Select, StatusBadge, formatTime } from "../../components/ui";
import { AssistantForm } from "./AssistantForm";
import { Facts } from "./fields";
import { useAssistantOptions } from "./options";
import { Playground } from "./Playground";
import { RunsList } from "./RunsList";
import { text } from "./text";

const Detail = graphql(`
  query AssistantsPageDetail($id: ID!) {
    assistant(id: $id) {
      id uuid name modelName instructions description avatar remark metadata maxSteps maxTokens timeoutSeconds mode
      enabled toolIds mcpServerIds channelIds publishedVersion publishedModel operator createdAt updatedAt
      tools { id name description enabled http { method url } }
    }
  }
`);

const Attach = graphql(`
  mutation AssistantsPageAttach($id: ID!, $toolIds: [ID!], $mcpServerIds: [ID!]) {
    attachAssistantTools(id: $id, toolIds: $toolIds, mcpServerIds: $mcpServerIds) { assistant { id } errors { field code message } }
  }
`);

const Detach = graphql(`
  mutation AssistantsPageDetach($id: ID!, $toolIds: [ID!], $mcpServerIds: [ID!]) {
    detachAssistantTools(id: $id, toolIds: $toolIds, mcpServerIds: $mcpServerIds) { assistant { id } errors { field code message } }
  }
`);

const Publish = graphql(`
  mutation AssistantsPagePublish($id: ID!) {
    publishAssistant(id: $id) { assistant { id publishedVersion publishedModel } errors { field code message } }
  }
`);

const Unpublish = graphql(`
  mutation AssistantsPageUnpublish($id: ID!) {
    unpublishAssistant(id: $id) { assistant { id publishedVersion } errors { field code message } }
  }
`);

const Delete = graphql(`
  mutation AssistantsPageDelete($id: ID!) { deleteAssistant(id: $id) { ok errors { field code message } } }
`);

export function AssistantDetail({ id }: { id: string }) {
  const t = useText(text);
  const { canManage } = useSession();
  const detail = useQuery(Detail, { id });
  const options = useAssistantOptions();
  const action = useAction();
  const [editing, setEditing] = useState(false);
  const [toolChoice, setToolChoice] = useState("");
  const [serverChoice, setServerChoice] = useState("");
  const [continued, setContinued] = useState<string | null>(null);
  const [refreshRuns, setRefreshRuns] = useState(0);
  const a = detail.data?.assistant;

  const back = <Button onClick={() => navigate("/assistants")}>{t("back")}</Button>;
  if (!a) {
    return (
      <Page title={t("title")} actions={back}>
        <Loading loading={detail.loading} />
        <ErrorText error={detail.error} />
        {!detail.loading && !detail.error ? <p className="notice">{t("notFound")}</p> : null}
      </Page>
    );
  }

  const act = (fn: () => Promise<unknown>) => void action.run(async () => {
    await fn();
    await detail.reload();
  });
  const freeTools = (options.data?.tools.items ?? []).filter((x) => !a.toolIds.includes(x.id));
  const servers = options.data?.mcpServers.items ?? [];
  const attachedServers = servers.filter((s) => a.mcpServerIds.includes(s.id));
  const freeServers = servers.filter((s) => !a.mcpServerIds.includes(s.id));
  const published = a.publishedVersion > 0;

  return (
    <Page title={a.name} actions={
      <>
        {back}
        {canManage ? <Button kind="primary" onClick={() => setEditing(true)}>{t("edit")}</Button> : null}
        {canManage ? (
          <ConfirmButton busy={action.busy} onConfirm={() => void action.run(async () => {
            await mutate(Delete, { id: a.id });
            navigate("/assistants");
          })}>{t("delete")}</ConfirmButton>
        ) : null}
      </>
    }>
      <ErrorText error={detail.error ?? options.error ?? action.error} />
      <div className="grid">
        <Card title={t("settings")}>
          <Facts rows={[
            [t("modelName"), <span className="mono">{a.modelName}</span>],
            [t("mode"), t(`mode${a.mode}`)],
            [t("enabled"), <StatusBadge status={a.enabled ? "ENABLED" : "DISABLED"} />],
            [t("bounds"), t("boundsValue", { steps: a.maxSteps, tokens: a.maxTokens, seconds: a.timeoutSeconds })],
            Boolean(a.description) && [t("description"), a.description],
            Boolean(a.remark) && [t("remark"), a.remark],
            Boolean(a.avatar) && [t("avatar"), <img src={a.avatar} alt={a.name} width={48} height={48} />],
            [t("updated"), `${formatTime(a.updatedAt ?? a.createdAt)} · ${a.operator}`],
          ]} />
          <h3>{t("instructions")}</h3>
          {a.instructions ? <pre>{a.instructions}</pre> : <p className="muted">{t("instructionsEmpty")}</p>}
          {a.metadata && Object.keys(a.metadata as object).length ? (
            <details><summary>{t("metadata")}</summary><pre>{JSON.stringify(a.metadata, null, 2)}</pre></details>
          ) : null}
        </Card>
        <Card title={t("publishing")}>
          {published ? (
            <p role="status" data-testid="published-model">
              {t("publishedAs", { version: a.publishedVersion, model: a.publishedModel ?? `assistant::${a.name}` })}
            </p>
          ) : <p className="muted">{t("unpublishedNote")}</p>}
          <p className="muted">{t("publishHint")}</p>
          {canManage ? (
            <div className="actions">
              <Button kind="primary" busy={action.busy} onClick={() => act(() => mutate(Publish, { id: a.id }))}>
                {published ? t("publishAgain") : t("publish")}
              </Button>
              {published ? (
                <ConfirmButton kind="plain" busy={action.busy} onConfirm={() => act(() => mutate(Unpublish, { id: a.id }))}>
                  {t("unpublish")}
                </ConfirmButton>
              ) : null}
            </div>
          ) : null}
        </Card>
      </div>
      <div className="grid">
        <Card title={t("attached")}>
          {a.tools.length === 0 ? <p className="muted">{t("none")}</p> : (
            <ul>
              {a.tools.map((x) => (
                <li key={x.id}>
                  <span className="mono">{x.name}</span> <span className="muted">{x.http.method} {x.http.url}</span>{" "}
                  {canManage ? (
                    <Button busy={action.busy} aria-label={`${t("detach")} ${x.name}`}
                      onClick={() => act(() => mutate(Detach, { id: a.id, toolIds: [x.id] }))}>{t("detach")}</Button>
                  ) : null}
                </li>
              ))}
            </ul>
          )}
          {canManage && freeTools.length ? (
            <form className="actions" aria-label={t("attachTool")} onSubmit={(e) => {
              e.preventDefault();
              if (toolChoice) act(async () => { await mutate(Attach, { id: a.id, toolIds: [toolChoice] }); setToolChoice(""); });
            }}>
              <Select label={t("attachTool")} name="toolIds" value={toolChoice} onChange={setToolChoice}
                options={[{ value: "", label: t("choose") }, ...freeTools.map((x) => ({ value: x.id, label: x.name }))]} />
              <Button type="submit" disabled={!toolChoice} busy={action.busy}>{t("attach")}</Button>
            </form>
          ) : null}
        </Card>
        <Card title={t("attachedServers")}>
          {a.mcpServerIds.length === 0 ? <p className="muted">{t("none")}</p> : (
            <ul>
              {a.mcpServerIds.map((sid) => {
                const s = attachedServers.find((x) => x.id === sid);
                return (
                  <li key={sid}>
                    <span className="mono">{s?.name ?? `#${sid}`}</span>{" "}
                    {s ? <span className="muted">{t("serverTools", { n: s.tools.length })}: {s.tools.map((x) => x.qualifiedName).join(", ")}</span> : null}{" "}
                    {canManage ? (
                      <Button busy={action.busy} aria-label={`${t("detach")} ${s?.name ?? sid}`}
                        onClick={() => act(() => mutate(Detach, { id: a.id, mcpServerIds: [sid] }))}>{t("detach")}</Button>
                    ) : null}
                  </li>
                );
              })}
            </ul>
          )}
          {canManage && freeServers.length ? (
            <form className="actions" aria-label={t("attachServer")} onSubmit={(e) => {
              e.preventDefault();
              if (serverChoice) act(async () => { await mutate(Attach, { id: a.id, mcpServerIds: [serverChoice] }); setServerChoice(""); });
            }}>
              <Select label={t("attachServer")} name="mcpServerIds" value={serverChoice} onChange={setServerChoice}
                options={[{ value: "", label: t("choose") }, ...freeServers.map((x) => ({ value: x.id, label: x.name }))]} />
              <Button type="submit" disabled={!serverChoice} busy={action.busy}>{t("attach")}</Button>
            </form>
          ) : null}
        </Card>
      </div>
      {canManage ? (
        <Playground assistantId={a.id} modelName={a.modelName} continued={continued} onReset={() => setContinued(null)}
          onFinished={() => setRefreshRuns((n) => n + 1)} />
      ) : <p className="muted">{t("playgroundManagers")}</p>}
      <RunsList assistantId={a.id} refresh={refreshRuns} onContinue={canManage ? (threadId) => {
        setContinued(threadId);
        window.scrollTo({ top: 0, behavior: "smooth" });
      } : undefined} />
      {editing ? (
        <AssistantForm assistant={a} onClose={() => setEditing(false)} onSaved={() => { setEditing(false); void detail.reload(); }} />
      ) : null}
    </Page>
  );
}
