// The tenant's evaluations: filters (status, model, fine-tuning job; kept in the query string), server paging,
// actions by state, "New evaluation", and a selection of 2 or more to compare.
import { useEffect, useState } from "react";
import { graphql } from "../../gql";
import { usePaging, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { navigate, useQueryParam } from "../../router";
import { useSession } from "../../state/session";
import { Button, Card, DataTable, ErrorText, Page, Pager, Select, StatusBadge, TextInput, formatTime, type Column } from "../../components/ui";
import type { EvalStatus, EvaluationsPageListQuery } from "../../gql/graphql";
import { EvaluationActions } from "./EvaluationActions";
import { NewEvaluation } from "./NewEvaluation";
import { formatDuration, listSearch, STATUSES } from "./logic";
import { text } from "./text";

const List = graphql(`
  query EvaluationsPageList($status: [EvalStatus!], $modelId: ID, $fineTuningJobId: ID, $pagination: Pagination) {
    evaluations(status: $status, modelId: $modelId, fineTuningJobId: $fineTuningJobId, pagination: $pagination) {
      totalCount
      items {
        id status modelId modelName metrics total done failed progress etaSeconds gateRole repeatHours scheduleId
        fineTuningJobId remark createdAt
        results { metric mean low high n }
        runningMeans { metric value }
      }
    }
  }
`);

const Models = graphql(`
  query EvaluationsPageModels { models(pagination: { offset: 0, limit: 100 }) { items { id name } } }
`);

type Row = EvaluationsPageListQuery["evaluations"]["items"][number];

const MAX_COMPARED = 10;

export function EvaluationList() {
  const t = useText(text);
  const { canManage } = useSession();
  const statusParam = useQueryParam("status");
  const modelId = useQueryParam("modelId");
  const jobId = useQueryParam("fineTuningJobId");
  const status = STATUSES.find((s) => s === statusParam) ?? null;
  const paging = usePaging(20);
  const [selected, setSelected] = useState<string[]>([]);
  const [creating, setCreating] = useState(false);
  const [jobDraft, setJobDraft] = useState(jobId ?? "");
  const models = useQuery(Models, {});
  const list = useQuery(List, {
    status: status ? [status as EvalStatus] : null, modelId: modelId || null, fineTuningJobId: jobId || null,
    pagination: paging.pagination,
  });
  const items = list.data?.evaluations.items;
  const active = (items ?? []).some((e) => e.status === "PENDING" || e.status === "RUNNING");
  const { reload } = list;
  const { setOffset } = paging;

  // running ones move: look again every few seconds while any is pending or running
  useEffect(() => {
    if (!active) return;
    const timer = window.setInterval(() => void reload(), 4000);
    return () => window.clearInterval(timer);
  }, [active, reload]);
  useEffect(() => setOffset(0), [status, modelId, jobId, setOffset]);

  const filter = (next: { status?: string | null; modelId?: string | null; fineTuningJobId?: string | null }) =>
    navigate(`/evaluations${listSearch({ status, modelId, fineTuningJobId: jobId, ...next })}`, true);
  const toggle = (id: string, on: boolean) => setSelected((s) => (on ? [...s, id] : s.filter((x) => x !== id)));
  const open = (id: string) => navigate(`/evaluations/${encodeURIComponent(id)}`);

  const columns: Column<Row>[] = [
    { key: "select", title: t("select"), render: (r) => (
      <input type="checkbox" name="ids" value={r.id} aria-label={t("selectRow", { id: r.id })} checked={selected.includes(r.id)}
        disabled={!selected.includes(r.id) && selected.length >= MAX_COMPARED} onChange={(e) => toggle(r.id, e.target.checked)} />
    ) },
    { key: "id", title: t("id"), render: (r) => (
      <a href={`/evaluations/${encodeURIComponent(r.id)}`} onClick={(e) => { e.preventDefault(); open(r.id); }}>#{r.id}</a>
    ) },
    { key: "model", title: t("model"), render: (r) => (
      <>
        <span className="mono">{r.modelName}</span>
        {r.gateRole ? <small className="muted"> · {t("gate", { role: r.gateRole })}</small> : null}
        {r.repeatHours ? <small className="muted"> · {t("repeats", { h: r.repeatHours })}</small> : null}
      </>
    ) },
    { key: "metrics", title: t("metrics"), render: (r) => r.metrics.join(", ") },
    { key: "status", title: t("status"), render: (r) => <StatusBadge status={r.status} /> },
    { key: "progress", title: t("progress"), render: (r) => (
      <>
        <progress max={Math.max(1, r.total)} value={r.done + r.failed} aria-label={t("progressValue", { done: r.done + r.failed, total: r.total })} />{" "}
        {t("progressValue", { done: r.done, total: r.total })}
        {r.failed ? <small className="error"> · {t("failedCount", { n: r.failed })}</small> : null}
        {r.status === "RUNNING" && r.etaSeconds ? <small className="muted"> · {formatDuration(r.etaSeconds)}</small> : null}
      </>
    ) },
    { key: "result", title: t("result"), className: "num", render: (r) => {
      const primary = r.metrics[0];
      const done = r.results.find((x) => x.metric === primary);
      if (done) return <span title={`${done.low.toFixed(3)} – ${done.high.toFixed(3)}`}>{done.mean.toFixed(3)}</span>;
      const running = r.runningMeans.find((x) => x.metric === primary);
      return running ? <span className="muted">{running.value.toFixed(3)}</span> : "—";
    } },
    { key: "created", title: t("created"), render: (r) => formatTime(r.createdAt) },
  ];
  if (canManage) {
    columns.push({ key: "actions", title: t("actions"), render: (r) => (
      <EvaluationActions evaluation={r} onChanged={() => void reload()} onDeleted={() => {
        setSelected((s) => s.filter((x) => x !== r.id));
        void reload();
      }} />
    ) });
  }

  const modelOptions = [{ value: "", label: t("allModels") }, ...(models.data?.models.items ?? []).map((m) => ({ value: m.id, label: m.name }))];
  if (modelId && !modelOptions.some((o) => o.value === modelId)) modelOptions.push({ value: modelId, label: `#${modelId}` });

  return (
    <Page title={t("title")} actions={
      <>
        <Button disabled={selected.length < 2} onClick={() => navigate(`/evaluations/compare?ids=${selected.join(",")}`)}>
          {t("compare", { n: selected.length })}
        </Button>
        {canManage ? <Button kind="primary" onClick={() => setCreating(true)}>{t("newEvaluation")}</Button> : null}
      </>
    }>
      <Card>
        {!canManage ? <p className="muted">{t("readOnly")}</p> : null}
        <form className="form-grid" aria-label={t("title")} onSubmit={(e) => { e.preventDefault(); filter({ fineTuningJobId: jobDraft.trim() || null }); }}>
          <Select label={t("status")} name="status" value={status ?? ""} onChange={(v) => filter({ status: v || null })}
            options={[{ value: "", label: t("allStatuses") }, ...STATUSES.map((s) => ({ value: s, label: s }))]} />
          <Select label={t("model")} name="modelId" value={modelId ?? ""} onChange={(v) => filter({ modelId: v || null })} options={modelOptions} />
          <TextInput label={t("fineTuningJobId")} name="fineTuningJobId" value={jobDraft} onChange={setJobDraft} placeholder={t("anyJob")} />
          <div className="actions">
            <Button type="submit">{t("applyFilter")}</Button>
            {status || modelId || jobId ? (
              <Button onClick={() => { setJobDraft(""); navigate("/evaluations", true); }}>{t("clearFilters")}</Button>
            ) : null}
          </div>
        </form>
        <p className="muted">{t("compareHint")}</p>
        <ErrorText error={list.error ?? models.error} />
        <DataTable caption={t("caption")} columns={columns} rows={items} rowKey={(r) => r.id} loading={list.loading && !items} />
        <Pager offset={paging.offset} limit={paging.limit} total={list.data?.evaluations.totalCount ?? 0} onChange={paging.setOffset} />
      </Card>
      {creating ? (
        <NewEvaluation initialModelId={modelId} initialJobId={jobId} onClose={() => setCreating(false)}
          onCreated={(id) => { setCreating(false); open(id); }} />
      ) : null}
    </Page>
  );
}
