// An evaluation's samples, paged on the server: all, the failed ones, or those scoring below a value on a metric;
// each with the word diff of the expected answer and the model's. The mismatches export downloads the same
// selection (below a score) as JSONL with the signed-in credentials.
import { useEffect, useState } from "react";
import { authHeaders } from "../../api/client";
import { graphql } from "../../gql";
import { useAction, usePaging, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { Button, Card, Checkbox, ErrorText, Loading, NumberInput, Pager, Select } from "../../components/ui";
import type { EvaluationMetric, EvaluationsPageSamplesQuery } from "../../gql/graphql";
import { DiffView } from "./DiffView";
import { similarity, wordDiff } from "./diff";
import { chatMessages, metricParam, question } from "./logic";
import { WIDE } from "./DiffView";
import { text } from "./text";

const SamplesQuery = graphql(`
  query EvaluationsPageSamples($id: ID!, $failedOnly: Boolean!, $metric: EvaluationMetric, $below: Float, $pagination: Pagination) {
    evaluationSamples(id: $id, failedOnly: $failedOnly, metric: $metric, below: $below, pagination: $pagination) {
      totalCount
      items {
        idx line messages reference status output baselineOutput scores { metric value } judge error latencyMs
        promptTokens completionTokens attempts
      }
    }
  }
`);

type Sample = EvaluationsPageSamplesQuery["evaluationSamples"]["items"][number];

/** GET /evaluations/{id}/mismatches.jsonl with the Authorization and X-Tenant-Id headers, saved through a Blob URL. */
async function downloadMismatches(id: string, metric: string | null, below: number | null): Promise<void> {
  const params = new URLSearchParams();
  if (metric) params.set("metric", metricParam(metric));
  if (below !== null) params.set("below", String(below));
  const response = await fetch(`/evaluations/${encodeURIComponent(id)}/mismatches.jsonl?${params.toString()}`, { headers: authHeaders() });
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: { message?: string } };
    throw new Error(body.error?.message ?? `HTTP ${response.status}`);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = `evaluation-${id}-mismatches.jsonl`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function Samples({ evaluationId, metrics, refresh }: {
  evaluationId: string; metrics: readonly EvaluationMetric[]; refresh: number;
}) {
  const t = useText(text);
  const paging = usePaging(10);
  const [failedOnly, setFailedOnly] = useState(false);
  const [metric, setMetric] = useState<EvaluationMetric | "">("");
  const [below, setBelow] = useState<number | null>(null);
  const exporting = useAction();
  const samples = useQuery(SamplesQuery, {
    id: evaluationId, failedOnly, metric: below !== null && metric ? metric : null, below, pagination: paging.pagination,
  });
  const { reload } = samples;
  const { setOffset } = paging;
  useEffect(() => {
    if (refresh > 0) void reload();
  }, [refresh, reload]);
  useEffect(() => setOffset(0), [failedOnly, metric, below, setOffset]);

  const page = samples.data?.evaluationSamples;
  return (
    <Card title={t("samples")}>
      <form className="form-grid" aria-label={t("samples")} onSubmit={(e) => e.preventDefault()}>
        <Checkbox label={t("failedOnly")} name="failedOnly" checked={failedOnly} onChange={setFailedOnly} />
        <Select<EvaluationMetric | ""> label={t("metric")} name="metric" value={metric} onChange={setMetric}
          options={[{ value: "", label: `${t("primary")} (${metrics[0] ?? "—"})` }, ...metrics.map((m) => ({ value: m, label: m }))]} />
        <NumberInput label={t("below")} name="below" value={below} onChange={setBelow} min={0} max={1} step={0.05} hint={t("belowHint")} />
        <div className="field">
          <Button busy={exporting.busy}
            onClick={() => void exporting.run(() => downloadMismatches(evaluationId, metric || null, below))}>
            {exporting.busy ? t("exporting") : t("exportMismatches")}
          </Button>
          <small className="muted">{t("exportHint")}</small>
        </div>
      </form>
      <ErrorText error={samples.error ?? exporting.error} />
      <p className="muted">{t("diffLegend")}</p>
      <Loading loading={samples.loading && !page} />
      <ol className="samples" aria-label={t("samplesCaption")} style={{ listStyle: "none", padding: 0, display: "flex", flexDirection: "column", gap: ".7rem" }}>
        {(page?.items ?? []).map((s) => <SampleItem key={s.idx} sample={s} />)}
      </ol>
      {page && page.items.length === 0 && !samples.loading ? <p className="muted">—</p> : null}
      <Pager offset={paging.offset} limit={paging.limit} total={page?.totalCount ?? 0} onChange={paging.setOffset} />
    </Card>
  );
}

function SampleItem({ sample: s }: { sample: Sample }) {
  const t = useText(text);
  const kept = s.output !== null && s.output !== undefined ? similarity(wordDiff(s.reference, s.output)) : null;
  const judge = s.judge && typeof s.judge === "object" && Object.keys(s.judge as object).length ? s.judge : null;
  return (
    <li className="card" data-testid="sample" data-idx={s.idx}>
      <header className="card-head">
        <h3>#{s.idx} <small className="muted">{t("line", { line: s.line })}</small></h3>
        <span className="actions">
          <span className={`badge tone-${s.status === "done" ? "ok" : s.status === "failed" ? "bad" : "wait"}`} data-status={s.status}>{s.status}</span>
          {s.scores.map((x) => <span key={x.metric} className="badge tone-off">{x.metric} {x.value.toFixed(3)}</span>)}
        </span>
      </header>
      <div><strong>{t("question")}</strong><div className="msg user" style={WIDE}>{question(s.messages)}</div></div>
      {s.error ? <p className="error">{s.error}</p> : null}
      {s.output !== null && s.output !== undefined ? (
        <div>
          <strong>{t("reference")} → {t("answer")}</strong>
          {kept !== null ? <small className="muted"> · {t("similarity", { p: Math.round(kept * 100) })}</small> : null}
          <DiffView expected={s.reference} actual={s.output} label={`#${s.idx}: ${t("reference")} → ${t("answer")}`} />
        </div>
      ) : (
        <div><strong>{t("reference")}</strong><pre>{s.reference}</pre><p className="muted">{t("noAnswer")}</p></div>
      )}
      <details>
        <summary>{t("conversation")}</summary>
        <div className="chat">
          {chatMessages(s.messages).map((m, i) => (
            <div key={i} className={m.role === "user" ? "msg user" : "msg assistant"}><small className="muted">{m.role}</small><div>{m.content}</div></div>
          ))}
        </div>
        {s.baselineOutput ? <><strong>{t("baselineAnswer")}</strong><pre>{s.baselineOutput}</pre></> : null}
        {judge ? <><strong>{t("judgeOutput")}</strong><pre>{JSON.stringify(judge, null, 2)}</pre></> : null}
      </details>
      <small className="muted">
        {s.latencyMs !== null && s.latencyMs !== undefined ? `${t("latency", { ms: s.latencyMs })} · ` : ""}
        {t("tokens", { prompt: s.promptTokens, completion: s.completionTokens })} · {t("attempts", { n: s.attempts })}
      </small>
    </li>
  );
}
