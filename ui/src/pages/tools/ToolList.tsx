// The tenant's tools: search, server paging, create, edit, delete, and the OpenAPI import.
import { useState } from "react";
import { graphql } from "../../gql";
import { mutate, useAction, usePaging, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { useSession } from "../../state/session";
import { Button, Card, ConfirmButton, DataTable, ErrorText, Pager, StatusBadge, TextInput, formatTime, type Column } from "../../components/ui";
import { text } from "./text";
import { ToolEditor, type ToolRow } from "./ToolEditor";
import { OpenApiImport } from "./OpenApiImport";

const Tools = graphql(`
  query ToolsPageList($search: String, $pagination: Pagination) {
    tools(search: $search, pagination: $pagination) {
      totalCount
      items {
        id uuid name description toolType enabled source remark operator createdAt updatedAt
        http {
          url method parameters headers secretHeaderNames body queryParams headerParams timeoutSeconds
          maxResponseBytes extract userAgent
        }
      }
    }
  }
`);

const DeleteTool = graphql(`
  mutation ToolsPageDelete($id: ID!) { deleteTool(id: $id) { ok errors { field code message } } }
`);

export function ToolList() {
  const t = useText(text);
  const { canManage } = useSession();
  const paging = usePaging(20);
  const [search, setSearch] = useState("");
  const [editing, setEditing] = useState<ToolRow | "new" | null>(null);
  const [importing, setImporting] = useState(false);
  const list = useQuery(Tools, { search: search.trim() || null, pagination: paging.pagination });
  const remove = useAction();

  const columns: Column<ToolRow>[] = [
    { key: "name", title: t("name"), render: (r) => <strong className="mono">{r.name}</strong> },
    { key: "description", title: t("description"), render: (r) => r.description || "—" },
    { key: "type", title: t("toolType"), render: (r) => t(`type${r.toolType}`) },
    { key: "http", title: t("url"), render: (r) => <span className="mono">{r.http.method} {r.http.url}</span> },
    { key: "source", title: t("source"), render: (r) => r.source || t("sourceManual") },
    { key: "enabled", title: t("enabled"), render: (r) => <StatusBadge status={r.enabled ? "ENABLED" : "DISABLED"} /> },
    { key: "updated", title: t("updated"), render: (r) => formatTime(r.updatedAt ?? r.createdAt) },
  ];
  if (canManage) {
    columns.push({
      key: "actions", title: t("actions"), render: (r) => (
        <span className="actions">
          <Button onClick={() => setEditing(r)} aria-label={`${t("edit")} ${r.name}`}>{t("edit")}</Button>
          <ConfirmButton busy={remove.busy} onConfirm={() => void remove.run(async () => {
            await mutate(DeleteTool, { id: r.id });
            await list.reload();
          })}>{t("delete")}</ConfirmButton>
        </span>
      ),
    });
  }

  return (
    <Card title={t("tabTools")} actions={canManage ? (
      <span className="actions">
        <Button kind="primary" onClick={() => setEditing("new")}>{t("newTool")}</Button>
        <Button onClick={() => setImporting(true)}>{t("importOpenApi")}</Button>
      </span>
    ) : undefined}>
      {!canManage ? <p className="muted">{t("readOnly")}</p> : null}
      <TextInput label={t("search")} name="search" type="search" value={search}
        onChange={(v) => { setSearch(v); paging.setOffset(0); }} />
      <ErrorText error={list.error ?? remove.error} />
      <DataTable caption={t("toolsCaption")} columns={columns} rows={list.data?.tools.items} rowKey={(r) => r.id} loading={list.loading} />
      <Pager offset={paging.offset} limit={paging.limit} total={list.data?.tools.totalCount ?? 0} onChange={paging.setOffset} />
      {editing ? (
        <ToolEditor tool={editing === "new" ? null : editing} onClose={() => setEditing(null)}
          onSaved={() => { setEditing(null); void list.reload(); }} />
      ) : null}
      {importing ? (
        <OpenApiImport onClose={() => setImporting(false)} onImported={() => void list.reload()} />
      ) : null}
    </Card>
  );
}
