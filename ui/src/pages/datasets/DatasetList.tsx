// The tenant's datasets: search, paging, create / edit / delete (maintainers).
import { useEffect, useState } from "react";
import {
  Button, Card, ConfirmButton, DataTable, ErrorText, Page, Pager, TextInput, formatNumber, formatTime, type Column,
} from "../../components/ui";
import { graphql } from "../../gql";
import type { DatasetsAreaListQuery } from "../../gql/graphql";
import { mutate, useAction, usePaging, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { navigate } from "../../router";
import { useSession } from "../../state/session";
import { Link } from "../../components/Link";
import { DatasetForm, type DatasetValues } from "./DatasetForm";
import { text } from "./text";

const List = graphql(`
  query DatasetsAreaList($pagination: Pagination, $search: String) {
    datasets(pagination: $pagination, search: $search) {
      totalCount offset limit
      items { id uuid name remark sampleCount creatorEmail type format createdAt updatedAt }
    }
  }
`);

export const DeleteDataset = graphql(`
  mutation DatasetsAreaDelete($id: ID!) {
    deleteDataset(id: $id) { errors { code message field line } }
  }
`);

type Row = DatasetsAreaListQuery["datasets"]["items"][number];

export function DatasetList() {
  const t = useText(text);
  const { canManage } = useSession();
  const [search, setSearch] = useState("");
  const [applied, setApplied] = useState("");
  const paging = usePaging(20);
  const { setOffset } = paging;
  useEffect(() => {
    const timer = setTimeout(() => {
      setApplied(search.trim());
      setOffset(0);
    }, 300);
    return () => clearTimeout(timer);
  }, [search, setOffset]);
  const list = useQuery(List, { pagination: paging.pagination, search: applied || null });
  const action = useAction();
  const [editing, setEditing] = useState<DatasetValues | "new" | null>(null);

  const columns: Column<Row>[] = [
    { key: "name", title: t("name"), render: (d) => <Link to={`/datasets/${d.id}`}><strong>{d.name}</strong></Link> },
    { key: "format", title: t("format"), render: (d) => t(d.format) },
    { key: "type", title: t("type"), render: (d) => d.type },
    { key: "samples", title: t("samples"), className: "num", render: (d) => formatNumber(d.sampleCount) },
    { key: "remark", title: t("remark"), render: (d) => d.remark || "—" },
    { key: "creator", title: t("creator"), render: (d) => d.creatorEmail || "—" },
    { key: "updated", title: t("updated"), render: (d) => formatTime(d.updatedAt ?? d.createdAt) },
  ];
  if (canManage) {
    columns.push({
      key: "actions", title: t("actions"), render: (d) => (
        <span className="actions">
          <Button onClick={() => setEditing({ id: d.id, name: d.name, remark: d.remark, type: d.type, format: d.format })}>
            {t("edit")}
          </Button>
          <ConfirmButton busy={action.busy} onConfirm={() => void action.run(async () => {
            await mutate(DeleteDataset, { id: d.id });
            await list.reload();
          })}>{t("delete")}</ConfirmButton>
        </span>
      ),
    });
  }

  return (
    <Page title={t("title")} actions={canManage ? (
      <Button kind="primary" onClick={() => setEditing("new")}>{t("newDataset")}</Button>
    ) : null}>
      <Card>
        <div className="form-grid">
          <TextInput label={t("search")} name="search" type="search" value={search} onChange={setSearch} />
        </div>
        <ErrorText error={list.error ?? action.error} />
        <DataTable caption={t("caption")} columns={columns} rows={list.data?.datasets.items} rowKey={(d) => d.id}
          loading={list.loading && !list.data} />
        <Pager offset={paging.offset} limit={paging.limit} total={list.data?.datasets.totalCount ?? 0}
          onChange={paging.setOffset} />
      </Card>
      {editing ? (
        <DatasetForm initial={editing === "new" ? undefined : editing} onClose={() => setEditing(null)}
          onSaved={(id) => {
            const created = editing === "new";
            setEditing(null);
            if (created) navigate(`/datasets/${id}`);
            else void list.reload();
          }} />
      ) : null}
    </Page>
  );
}
