// The tenant's fine-tuning jobs with counts per status; reloads every 5 s while a job is waiting or running.
import { useEffect, useState } from "react";
import {
  Button, Card, DataTable, ErrorText, Page, Pager, Select, Stat, StatusBadge, formatNumber, formatTime, type Column,
} from "../../components/ui";
import { graphql } from "../../gql";
import type { FineTuneAreaJobsQuery, JobStatus } from "../../gql/graphql";
import { usePaging, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { navigate } from "../../router";
import { useSession } from "../../state/session";
import { formatPercent, formatRate } from "./format";
import { Link } from "../../components/Link";
import { text } from "./text";

const Jobs = graphql(`
  query FineTuneAreaJobs($status: [JobStatus!], $pagination: Pagination) {
    fineTuningJobs(status: $status, pagination: $pagination) {
      totalCount offset limit
      items {
        id jobId baseModel fileId status suffix fineTunedModel progress progressEpochs progressLoss
        estimatedSecondsLeft createdAt finishedAt params { epochs lora } gate { status }
      }
    }
    fineTuningCounts { waiting running succeeded failed cancelled }
  }
`);

type Row = FineTuneAreaJobsQuery["fineTuningJobs"]["items"][number];

export const STATUSES: readonly JobStatus[] = ["WAITING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];

export const POLL_MS = 5000;

export function JobList() {
  const t = useText(text);
  const { canManage } = useSession();
  const [status, setStatus] = useState<JobStatus | "">("");
  const paging = usePaging(20);
  const jobs = useQuery(Jobs, { status: status ? [status] : null, pagination: paging.pagination });
  const counts = jobs.data?.fineTuningCounts;
  const active = Boolean(counts && counts.waiting + counts.running > 0)
    || Boolean(jobs.data?.fineTuningJobs.items.some((j) => j.status === "RUNNING" || j.status === "WAITING"));
  const { reload } = jobs;
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => void reload(), POLL_MS);
    return () => clearInterval(timer);
  }, [active, reload]);

  const columns: Column<Row>[] = [
    { key: "job", title: t("job"), render: (j) => <Link to={`/finetune/${j.id}`}><code>{j.jobId}</code></Link> },
    { key: "base", title: t("baseModel"), render: (j) => j.baseModel },
    { key: "status", title: t("status"), render: (j) => <StatusBadge status={j.status} /> },
    {
      key: "progress", title: t("progress"), className: "num",
      render: (j) => (
        <span title={`${t("epoch")} ${formatNumber(j.progressEpochs, 2)} / ${j.params.epochs}`}>{formatPercent(j.progress)}</span>
      ),
    },
    { key: "loss", title: t("loss"), className: "num", render: (j) => (j.progress > 0 ? formatRate(j.progressLoss) : "—") },
    { key: "model", title: t("fineTunedModel"), render: (j) => (j.fineTunedModel ? <code>{j.fineTunedModel}</code> : "—") },
    { key: "created", title: t("created"), render: (j) => formatTime(j.createdAt) },
  ];

  return (
    <Page title={t("title")} actions={canManage ? (
      <Button kind="primary" onClick={() => navigate("/finetune/new")}>{t("newJob")}</Button>
    ) : null}>
      <div className="stats" data-testid="finetune-counts">
        <Stat label={t("waiting")} value={formatNumber(counts?.waiting)} />
        <Stat label={t("running")} value={formatNumber(counts?.running)} />
        <Stat label={t("succeeded")} value={formatNumber(counts?.succeeded)} />
        <Stat label={t("failed")} value={formatNumber(counts?.failed)} />
        <Stat label={t("cancelled")} value={formatNumber(counts?.cancelled)} />
      </div>
      <Card title={t("jobs")} actions={
        <Select label={t("status")} name="status" value={status}
          onChange={(v) => { setStatus(v); paging.setOffset(0); }}
          options={[{ value: "" as const, label: t("allStatuses") }, ...STATUSES.map((s) => ({ value: s, label: s }))]} />
      }>
        <ErrorText error={jobs.error} />
        <DataTable caption={t("caption")} columns={columns} rows={jobs.data?.fineTuningJobs.items} rowKey={(j) => j.id}
          loading={jobs.loading && !jobs.data} />
        <Pager offset={paging.offset} limit={paging.limit} total={jobs.data?.fineTuningJobs.totalCount ?? 0}
          onChange={paging.setOffset} />
      </Card>
    </Page>
  );
}
