// One dataset: its details, edit / delete, export and import, and its samples (paged) with the sample editor.
import { useState } from "react";
import {
  Button, Card, ConfirmButton, DataTable, ErrorText, Loading, Page, Pager, formatNumber, formatTime, type Column,
} from "../../components/ui";
import { graphql } from "../../gql";
import type { DatasetsAreaSamplesQuery } from "../../gql/graphql";
import { mutate, useAction, usePaging, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { navigate } from "../../router";
import { useSession } from "../../state/session";
import { Facts } from "../finetune/Facts";
import { Link } from "../../components/Link";
import { DatasetForm, type DatasetValues } from "./DatasetForm";
import { DeleteDataset } from "./DatasetList";
import { preview } from "./messages";
import { SampleEditor, type SampleValues } from "./SampleEditor";
import { text } from "./text";
import { ExportCard, ImportCard } from "./Transfer";

const One = graphql(`
  query DatasetsAreaOne($id: ID!) {
    dataset(id: $id) { id uuid name remark sampleCount creatorEmail type format createdAt updatedAt }
  }
`);

const Samples = graphql(`
  query DatasetsAreaSamples($datasetId: ID!, $pagination: Pagination) {
    datasetSamples(datasetId: $datasetId, pagination: $pagination) {
      totalCount offset limit
      items {
        id uuid title system instruction input output label remark creatorEmail turns createdAt updatedAt
        conversations { role content }
      }
    }
  }
`);

const DeleteSample = graphql(`
  mutation DatasetsAreaDeleteSample($id: ID!) {
    deleteDatasetSample(id: $id) { errors { code message field line } }
  }
`);

type SampleRow = DatasetsAreaSamplesQuery["datasetSamples"]["items"][number];

export function DatasetDetail({ id }: { id: string }) {
  const t = useText(text);
  const { canManage } = useSession();
  const dataset = useQuery(One, { id });
  const paging = usePaging(20);
  const samples = useQuery(Samples, { datasetId: id, pagination: paging.pagination });
  const action = useAction();
  const [editing, setEditing] = useState<DatasetValues | null>(null);
  const [sample, setSample] = useState<SampleValues | "new" | null>(null);
  const d = dataset.data?.dataset ?? null;

  if (!d) {
    return (
      <Page title={t("title")} actions={<Link to="/datasets">{t("back")}</Link>}>
        <ErrorText error={dataset.error} />
        <Loading loading={dataset.loading} />
        {!dataset.loading && !dataset.error ? <p className="notice">{t("notFound")}</p> : null}
      </Page>
    );
  }

  const refresh = async () => {
    await Promise.all([dataset.reload(), samples.reload()]);
  };

  const columns: Column<SampleRow>[] = [
    { key: "title", title: t("sampleTitle"), render: (s) => s.title || "—" },
    { key: "conversation", title: t("conversation"), render: (s) => <span className="muted">{preview(s.conversations)}</span> },
    { key: "label", title: t("label"), render: (s) => s.label || "—" },
    { key: "turns", title: t("turns"), className: "num", render: (s) => s.turns },
    { key: "updated", title: t("updated"), render: (s) => formatTime(s.updatedAt ?? s.createdAt) },
  ];
  if (canManage) {
    columns.push({
      key: "actions", title: t("actions"), render: (s) => (
        <span className="actions">
          <Button onClick={() => setSample({
            id: s.id, title: s.title, label: s.label, remark: s.remark,
            rows: s.conversations.map((m) => ({ role: m.role, content: m.content })),
          })}>{t("edit")}</Button>
          <ConfirmButton busy={action.busy} onConfirm={() => void action.run(async () => {
            await mutate(DeleteSample, { id: s.id });
            await refresh();
          })}>{t("delete")}</ConfirmButton>
        </span>
      ),
    });
  }

  return (
    <Page title={d.name} actions={
      <>
        {canManage ? (
          <>
            <Button onClick={() => setEditing({ id: d.id, name: d.name, remark: d.remark, type: d.type, format: d.format })}>
              {t("edit")}
            </Button>
            <ConfirmButton busy={action.busy} onConfirm={() => void action.run(async () => {
              await mutate(DeleteDataset, { id: d.id });
              navigate("/datasets");
            })}>{t("delete")}</ConfirmButton>
          </>
        ) : null}
        <Link to="/datasets">{t("back")}</Link>
      </>
    }>
      <ErrorText error={action.error} />
      <div className="grid-2">
        <Card title={t("details")}>
          <Facts caption={t("details")} rows={[
            [t("format"), t(d.format)],
            [t("type"), d.type],
            [t("samples"), formatNumber(d.sampleCount)],
            [t("remark"), d.remark || "—"],
            [t("creator"), d.creatorEmail || "—"],
            [t("created"), formatTime(d.createdAt)],
            [t("updated"), formatTime(d.updatedAt)],
          ]} />
        </Card>
        <ExportCard key={d.format} datasetId={d.id} name={d.name} format={d.format} />
      </div>
      {canManage ? <ImportCard datasetId={d.id} onImported={() => void refresh()} /> : null}
      <Card title={t("sampleList")} actions={canManage ? (
        <Button kind="primary" onClick={() => setSample("new")}>{t("addSample")}</Button>
      ) : undefined}>
        <ErrorText error={samples.error} />
        <DataTable caption={t("sampleCaption")} columns={columns} rows={samples.data?.datasetSamples.items}
          rowKey={(s) => s.id} loading={samples.loading && !samples.data} />
        <Pager offset={paging.offset} limit={paging.limit} total={samples.data?.datasetSamples.totalCount ?? 0}
          onChange={paging.setOffset} />
      </Card>
      {editing ? (
        <DatasetForm initial={editing} onClose={() => setEditing(null)} onSaved={() => {
          setEditing(null);
          void dataset.reload();
        }} />
      ) : null}
      {sample ? (
        <SampleEditor datasetId={d.id} format={d.format} initial={sample === "new" ? undefined : sample}
          onClose={() => setSample(null)} onSaved={() => {
            setSample(null);
            void refresh();
          }} />
      ) : null}
    </Page>
  );
}
