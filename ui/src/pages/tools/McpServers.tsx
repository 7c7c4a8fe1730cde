// The tenant's MCP servers: add (its tools are listed at once), edit, refresh the tool list, delete; each
// server's listed tools with the name assistants call them by.
import { useState } from "react";
import { graphql } from "../../gql";
import { mutate, useAction, usePaging, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { useSession } from "../../state/session";
import {
  Button, Card, Checkbox, ConfirmButton, DataTable, ErrorText, Modal, NumberInput, Pager, StatusBadge, TextArea, TextInput,
  formatTime, type Column,
} from "../../components/ui";
import { STACK } from "../assistants/fields";
import { text } from "./text";
import { parseHeaderLines } from "./toolForm";
import { useProblemText } from "./ToolEditor";
import type { ToolsPageMcpQuery } from "../../gql/graphql";

const Servers = graphql(`
  query ToolsPageMcp($pagination: Pagination) {
    mcpServers(pagination: $pagination) {
      totalCount
      items {
        id name url enabled timeoutSeconds refreshedAt lastError operator createdAt
        tools { name qualifiedName description inputSchema }
      }
    }
  }
`);

const CreateServer = graphql(`
  mutation ToolsPageMcpCreate($input: McpServerInput!) {
    createMcpServer(input: $input) { mcpServer { id tools { qualifiedName } } errors { field code message } }
  }
`);

const UpdateServer = graphql(`
  mutation ToolsPageMcpUpdate($id: ID!, $input: McpServerUpdateInput!) {
    updateMcpServer(id: $id, input: $input) { mcpServer { id } errors { field code message } }
  }
`);

const RefreshServer = graphql(`
  mutation ToolsPageMcpRefresh($id: ID!) {
    refreshMcpServer(id: $id) { mcpServer { id lastError tools { qualifiedName } } errors { field code message } }
  }
`);

const DeleteServer = graphql(`
  mutation ToolsPageMcpDelete($id: ID!) { deleteMcpServer(id: $id) { ok errors { field code message } } }
`);

type Server = ToolsPageMcpQuery["mcpServers"]["items"][number];

export function McpServers() {
  const t = useText(text);
  const { canManage } = useSession();
  const paging = usePaging(20);
  const list = useQuery(Servers, { pagination: paging.pagination });
  const action = useAction();
  const [editing, setEditing] = useState<Server | "new" | null>(null);
  const [open, setOpen] = useState<string | null>(null);

  const columns: Column<Server>[] = [
    { key: "name", title: t("name"), render: (s) => <strong className="mono">{s.name}</strong> },
    { key: "url", title: t("url"), render: (s) => <span className="mono">{s.url}</span> },
    { key: "enabled", title: t("enabled"), render: (s) => <StatusBadge status={s.enabled ? "ENABLED" : "DISABLED"} /> },
    { key: "tools", title: t("tools"), render: (s) => (
      <Button onClick={() => setOpen(open === s.id ? null : s.id)} aria-expanded={open === s.id}>
        {t("showTools", { n: s.tools.length })}
      </Button>
    ) },
    { key: "refreshed", title: t("refreshedAt"), render: (s) => formatTime(s.refreshedAt) },
    { key: "error", title: t("lastError"), render: (s) => (s.lastError ? <span className="error">{s.lastError}</span> : "—") },
  ];
  if (canManage) {
    columns.push({
      key: "actions", title: t("actions"), render: (s) => (
        <span className="actions">
          <Button busy={action.busy} onClick={() => void action.run(async () => {
            await mutate(RefreshServer, { id: s.id });
            await list.reload();
          })}>{t("refresh")}</Button>
          <Button onClick={() => setEditing(s)} aria-label={`${t("edit")} ${s.name}`}>{t("edit")}</Button>
          <ConfirmButton busy={action.busy} onConfirm={() => void action.run(async () => {
            await mutate(DeleteServer, { id: s.id });
            await list.reload();
          })}>{t("delete")}</ConfirmButton>
        </span>
      ),
    });
  }
  const shown = list.data?.mcpServers.items.find((s) => s.id === open);

  return (
    <Card title={t("tabMcp")} actions={canManage ? <Button kind="primary" onClick={() => setEditing("new")}>{t("newMcp")}</Button> : undefined}>
      <ErrorText error={list.error ?? action.error} />
      <DataTable caption={t("mcpCaption")} columns={columns} rows={list.data?.mcpServers.items} rowKey={(s) => s.id} loading={list.loading} />
      <Pager offset={paging.offset} limit={paging.limit} total={list.data?.mcpServers.totalCount ?? 0} onChange={paging.setOffset} />
      {shown ? <ServerTools server={shown} /> : null}
      {editing ? (
        <ServerEditor server={editing === "new" ? null : editing} onClose={() => setEditing(null)}
          onSaved={() => { setEditing(null); void list.reload(); }} />
      ) : null}
    </Card>
  );
}

function ServerTools({ server }: { server: Server }) {
  const t = useText(text);
  const columns: Column<Server["tools"][number]>[] = [
    { key: "qualified", title: t("qualifiedName"), render: (x) => <span className="mono">{x.qualifiedName}</span> },
    { key: "description", title: t("description"), render: (x) => x.description || "—" },
    { key: "schema", title: t("inputSchema"), render: (x) => (
      <details><summary>{t("inputSchema")}</summary><pre>{JSON.stringify(x.inputSchema, null, 2)}</pre></details>
    ) },
  ];
  return (
    <section aria-label={`${server.name}: ${t("tools")}`}>
      <h3>{server.name}: {t("tools")}</h3>
      {server.tools.length === 0 ? <p className="muted">{t("noTools")}</p> : (
        <DataTable caption={`${server.name}: ${t("tools")}`} columns={columns} rows={server.tools} rowKey={(x) => x.qualifiedName} />
      )}
    </section>
  );
}

function ServerEditor({ server, onClose, onSaved }: { server: Server | null; onClose: () => void; onSaved: () => void }) {
  const t = useText(text);
  const problemText = useProblemText();
  const action = useAction();
  const [name, setName] = useState(server?.name ?? "");
  const [url, setUrl] = useState(server?.url ?? "");
  const [headers, setHeaders] = useState("");
  const [clearHeaders, setClearHeaders] = useState(false);
  const [timeoutSeconds, setTimeoutSeconds] = useState<number | null>(server?.timeoutSeconds ?? 30);
  const [enabled, setEnabled] = useState(server?.enabled ?? true);
  const [problem, setProblem] = useState<string | null>(null);
  const title = server ? t("mcpEditTitle", { name: server.name }) : t("mcpCreateTitle");

  const save = () => {
    const parsed = parseHeaderLines(headers, "headers");
    if ("problem" in parsed) {
      setProblem(problemText(parsed.problem));
      return;
    }
    if (!server && !name.trim()) {
      setProblem(problemText({ field: "name", code: "required" }));
      return;
    }
    setProblem(null);
    const typed = Object.keys(parsed.value).length ? parsed.value : null;
    void action.run(async () => {
      if (server) {
        await mutate(UpdateServer, { id: server.id, input: {
          url: url.trim(), timeoutSeconds, enabled, headers: clearHeaders ? {} : typed,
        } });
      } else {
        await mutate(CreateServer, { input: { name: name.trim(), url: url.trim(), headers: typed, timeoutSeconds: timeoutSeconds ?? 30 } });
      }
      onSaved();
    });
  };

  return (
    <Modal title={title} onClose={onClose}>
      <form style={STACK} aria-label={title} onSubmit={(e) => { e.preventDefault(); save(); }}>
        {server ? null : <TextInput label={t("name")} name="name" value={name} onChange={setName} required />}
        <TextInput label={t("url")} name="url" type="url" value={url} onChange={setUrl} required hint={t("mcpUrlHint")}
          placeholder="https://mcp.example.com/mcp" />
        <TextArea label={t("mcpHeaders")} name="headers" value={headers} onChange={setHeaders} rows={2} mono
          hint={server ? t("mcpHeadersEditHint") : t("mcpHeadersHint")} />
        {server ? <Checkbox label={t("mcpClearHeaders")} checked={clearHeaders} onChange={setClearHeaders} /> : null}
        <NumberInput label={t("timeout")} name="timeoutSeconds" value={timeoutSeconds} onChange={setTimeoutSeconds} min={1} max={600} />
        {server ? <Checkbox label={t("enabled")} name="enabled" checked={enabled} onChange={setEnabled} /> : null}
        <ErrorText error={problem ?? action.error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={action.busy}>{server ? t("save") : t("create")}</Button>
          <Button onClick={onClose}>{t("cancel")}</Button>
        </div>
      </form>
    </Modal>
  );
}
