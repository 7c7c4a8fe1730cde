// The tenant's assistants: search, server paging, "New assistant"; a row opens the assistant.
import { useState } from "react";
import { graphql } from "../../gql";
import { usePaging, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { navigate } from "../../router";
import { useSession } from "../../state/session";
import { Button, Card, DataTable, ErrorText, Page, Pager, StatusBadge, TextInput, formatTime, type Column } from "../../components/ui";
import type { AssistantsPageListQuery } from "../../gql/graphql";
import { AssistantForm } from "./AssistantForm";
import { text } from "./text";

const List = graphql(`
  query AssistantsPageList($search: String, $pagination: Pagination) {
    assistants(search: $search, pagination: $pagination) {
      totalCount
      items {
        id name modelName description mode enabled toolIds mcpServerIds publishedVersion publishedModel createdAt updatedAt
      }
    }
  }
`);

type Row = AssistantsPageListQuery["assistants"]["items"][number];

export function AssistantList() {
  const t = useText(text);
  const { canManage } = useSession();
  const paging = usePaging(20);
  const [search, setSearch] = useState("");
  const [creating, setCreating] = useState(false);
  const list = useQuery(List, { search: search.trim() || null, pagination: paging.pagination });
  const open = (id: string) => navigate(`/assistants/${encodeURIComponent(id)}`);

  const columns: Column<Row>[] = [
    { key: "name", title: t("name"), render: (r) => (
      <a href={`/assistants/${encodeURIComponent(r.id)}`} onClick={(e) => { e.preventDefault(); open(r.id); }}>{r.name}</a>
    ) },
    { key: "model", title: t("modelName"), render: (r) => <span className="mono">{r.modelName}</span> },
    { key: "mode", title: t("mode"), render: (r) => r.mode },
    { key: "tools", title: t("tools"), render: (r) => `${r.toolIds.length} + ${r.mcpServerIds.length} MCP` },
    { key: "published", title: t("published"), render: (r) => (r.publishedVersion
      ? <span>{t("version", { n: r.publishedVersion })} · <span className="mono">{r.publishedModel}</span></span>
      : <span className="muted">{t("notPublished")}</span>) },
    { key: "enabled", title: t("enabled"), render: (r) => <StatusBadge status={r.enabled ? "ENABLED" : "DISABLED"} /> },
    { key: "updated", title: t("updated"), render: (r) => formatTime(r.updatedAt ?? r.createdAt) },
  ];

  return (
    <Page title={t("title")} actions={canManage ? <Button kind="primary" onClick={() => setCreating(true)}>{t("newAssistant")}</Button> : undefined}>
      <Card>
        {!canManage ? <p className="muted">{t("readOnly")}</p> : null}
        <TextInput label={t("search")} name="search" type="search" value={search} onChange={(v) => { setSearch(v); paging.setOffset(0); }} />
        <ErrorText error={list.error} />
        <DataTable caption={t("caption")} columns={columns} rows={list.data?.assistants.items} rowKey={(r) => r.id} loading={list.loading} />
        <Pager offset={paging.offset} limit={paging.limit} total={list.data?.assistants.totalCount ?? 0} onChange={paging.setOffset} />
      </Card>
      {creating ? <AssistantForm assistant={null} onClose={() => setCreating(false)} onSaved={(id) => { setCreating(false); open(id); }} /> : null}
    </Page>
  );
}
