// Files: the tenant's uploads (training data, evaluation samples, assistant files). Upload streams the raw bytes
// to POST /files; a chat JSONL file that fails validation lists its bad lines next to their own text.
import { useState } from "react";
import {
  Button, Card, ConfirmButton, DataTable, ErrorText, Page, Pager, Select, formatNumber, formatTime, type Column,
} from "../components/ui";
import { graphql } from "../gql";
import type { FilesAreaListQuery, Purpose } from "../gql/graphql";
import { mutate, useAction, usePaging, useQuery } from "../hooks/api";
import { defineText, useText } from "../i18n";
import { useSession } from "../state/session";
import { downloadWithAuth } from "./files/http";
import { PURPOSES, formatBytes, purposeText } from "./files/purposes";
import { UploadForm } from "./files/UploadForm";

const text = defineText({
  en: {
    title: "Files", upload: "Upload a file", purpose: "Purpose",
    list: "Uploaded files", filter: "Show purpose", all: "All purposes", name: "Name", id: "ID", size: "Size",
    samples: "Samples", tokens: "Tokens", creator: "Uploaded by", created: "Uploaded", actions: "Actions",
    download: "Download", delete: "Delete", caption: "The tenant's files",
  },
  zh: {
    title: "文件", upload: "上传文件", purpose: "用途",
    list: "已上传的文件", filter: "按用途筛选", all: "全部用途", name: "名称", id: "ID", size: "大小",
    samples: "样本数", tokens: "Token 数", creator: "上传者", created: "上传时间", actions: "操作",
    download: "下载", delete: "删除", caption: "租户的文件",
  },
});

const FilesList = graphql(`
  query FilesAreaList($purpose: Purpose, $pagination: Pagination) {
    files(purpose: $purpose, pagination: $pagination) {
      totalCount offset limit
      items { id name purpose size fileType lineCount tokenCount creatorEmail createdAt contentUrl }
    }
  }
`);

const DeleteFile = graphql(`
  mutation FilesAreaDelete($id: ID!) {
    deleteFile(id: $id) { errors { code message field } }
  }
`);

type FileRow = FilesAreaListQuery["files"]["items"][number];

export default function Files(_props: { path: string }) {
  const t = useText(text);
  const tp = useText(purposeText);
  const { canManage } = useSession();
  const [purpose, setPurpose] = useState<Purpose | "">("");
  const paging = usePaging(20);
  const list = useQuery(FilesList, { purpose: purpose || null, pagination: paging.pagination });
  const action = useAction();

  const columns: Column<FileRow>[] = [
    { key: "name", title: t("name"), render: (f) => <strong>{f.name}</strong> },
    { key: "id", title: t("id"), render: (f) => <code>{f.id}</code> },
    { key: "purpose", title: t("purpose"), render: (f) => tp(f.purpose) },
    { key: "size", title: t("size"), className: "num", render: (f) => formatBytes(f.size) },
    { key: "samples", title: t("samples"), className: "num", render: (f) => formatNumber(f.lineCount) },
    { key: "tokens", title: t("tokens"), className: "num", render: (f) => formatNumber(f.tokenCount) },
    { key: "creator", title: t("creator"), render: (f) => f.creatorEmail || "—" },
    { key: "created", title: t("created"), render: (f) => formatTime(f.createdAt) },
    {
      key: "actions", title: t("actions"), render: (f) => (
        <span className="actions">
          <Button onClick={() => void action.run(() => downloadWithAuth(f.contentUrl, f.name))}>{t("download")}</Button>
          {canManage ? (
            <ConfirmButton busy={action.busy} onConfirm={() => void action.run(async () => {
              await mutate(DeleteFile, { id: f.id });
              await list.reload();
            })}>{t("delete")}</ConfirmButton>
          ) : null}
        </span>
      ),
    },
  ];

  return (
    <Page title={t("title")}>
      <Card title={t("upload")}>
        <UploadForm onUploaded={() => {
          paging.setOffset(0);
          void list.reload();
        }} />
      </Card>
      <Card title={t("list")} actions={
        <Select label={t("filter")} name="purposeFilter" value={purpose}
          onChange={(v) => { setPurpose(v); paging.setOffset(0); }}
          options={[{ value: "" as const, label: t("all") }, ...PURPOSES.map((p) => ({ value: p, label: tp(p) }))]} />
      }>
        <ErrorText error={list.error ?? action.error} />
        <DataTable caption={t("caption")} columns={columns} rows={list.data?.files.items} rowKey={(f) => f.id}
          loading={list.loading && !list.data} />
        <Pager offset={paging.offset} limit={paging.limit} total={list.data?.files.totalCount ?? 0}
          onChange={paging.setOffset} />
      </Card>
    </Page>
  );
}
