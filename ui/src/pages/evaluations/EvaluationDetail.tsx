// One evaluation: live progress while it runs (evaluationProgress: done/total, the means so far, the time left),
// its results with 95 % intervals once finished, the comparison with the previous run of a schedule, its
// settings and its samples.
import { useRef, useState } from "react";
import { graphql } from "../../gql";
import { useQuery, useSubscription } from "../../hooks/api";
import { useText } from "../../i18n";
import { navigate } from "../../router";
import { BarChart } from "../../components/charts";
import { Button, Card, DataTable, ErrorText, Loading, Page, Stat, StatusBadge, formatTime, type Column } from "../../components/ui";
import type { EvaluationsPageProgressSubscription } from "../../gql/graphql";
import { DeltaChart } from "./DeltaChart";
import { EvaluationActions } from "./EvaluationActions";
import { formatDuration, isFinished, meanBars, resultBars, signed, type Estimate } from "./logic";
import { Samples } from "./Samples";
import { Facts } from "../assistants/fields";
import { text } from "./text";

const Detail = graphql(`
  query EvaluationsPageDetail($id: ID!) {
    evaluation(id: $id) {
      id uuid status modelId modelName channelId metrics fileId datasetType holdoutPercent holdoutSeed temperature maxTokens
      timeoutSeconds retries concurrency judge { modelId modelName rubric maxTokens } baselineModelName deployForRun
      total done failed progress etaSeconds errorMessage fineTuningJobId gateRole repeatHours scheduleId previousId
      results { metric mean low high n }
      runningMeans { metric value }
      vsPrevious { previousId differences { metric mean low high n } regressed }
      operator remark createdAt startedAt completedAt
    }
  }
`);

const Progress = graphql(`
  subscription EvaluationsPageProgress($id: ID!) {
    evaluationProgress(id: $id) { evaluationId seq status done failed total means { metric value } etaSeconds }
  }
`);

type Live = EvaluationsPageProgressSubscription["evaluationProgress"];

const SAMPLE_REFRESH_MS = 5000;

function link(to: string, label: string) {
  return <a href={to} onClick={(e) => { e.preventDefault(); navigate(to); }}>{label}</a>;
}

export function EvaluationDetail({ id }: { id: string }) {
  const t = useText(text);
  const detail = useQuery(Detail, { id });
  const [live, setLive] = useState<Live | null>(null);
  const [liveError, setLiveError] = useState<string | null>(null);
  const [refresh, setRefresh] = useState(0);
  const lastRefresh = useRef(0);
  const ev = detail.data?.evaluation;
  const running = ev ? !isFinished(ev.status) : false;

  useSubscription(Progress, { id }, (data) => {
    const next = data.evaluationProgress;
    setLive((prev) => (prev && prev.seq > next.seq ? prev : next));
    const now = Date.now();
    if (isFinished(next.status)) {
      void detail.reload();
      setRefresh((n) => n + 1);
    } else if (now - lastRefresh.current > SAMPLE_REFRESH_MS) {
      lastRefresh.current = now;
      setRefresh((n) => n + 1);
    }
  }, { enabled: running, onError: setLiveError });

  const back = <Button onClick={() => navigate("/evaluations")}>{t("back")}</Button>;
  if (!ev) {
    return (
      <Page title={`${t("title")} #${id}`} actions={back}>
        <Loading loading={detail.loading} />
        <ErrorText error={detail.error} />
        {!detail.loading && !detail.error ? <p className="notice">{t("notFound")}</p> : null}
      </Page>
    );
  }

  const state = live && running ? live : null;
  const done = state?.done ?? ev.done;
  const failed = state?.failed ?? ev.failed;
  const total = state?.total ?? ev.total;
  const status = state?.status ?? ev.status;
  const means = state?.means ?? ev.runningMeans;
  const eta = state ? state.etaSeconds : ev.etaSeconds;
  const estimateColumns: Column<Estimate>[] = [
    { key: "metric", title: t("metric"), render: (r) => r.metric },
    { key: "mean", title: t("mean"), className: "num", render: (r) => r.mean.toFixed(4) },
    { key: "interval", title: t("interval"), className: "num", render: (r) => `${r.low.toFixed(4)} – ${r.high.toFixed(4)}` },
    { key: "n", title: t("n"), className: "num", render: (r) => r.n ?? "—" },
  ];

  return (
    <Page title={`${t("title")} #${ev.id} · ${ev.modelName}`} actions={
      <>
        {back}
        <EvaluationActions evaluation={{ id: ev.id, status, failed }} onChanged={() => { setLive(null); void detail.reload(); }}
          onDeleted={() => navigate("/evaluations")} />
      </>
    }>
      <ErrorText error={detail.error} />
      <Card title={t("overview")} actions={<StatusBadge status={status} />}>
        <div className="stats" aria-live={running ? "polite" : undefined}>
          <Stat label={t("samplesDone")} value={`${done} / ${total}`} />
          <Stat label={t("samplesFailed")} value={failed} />
          {running ? <Stat label={t("eta")} value={formatDuration(eta)} /> : <Stat label={t("completedAt")} value={formatTime(ev.completedAt)} />}
        </div>
        <progress max={Math.max(1, total)} value={done + failed} aria-label={t("progress")} style={{ width: "100%" }} data-testid="evaluation-progress" />
        {running ? <p className="muted" role="status">{t("live")}{live ? ` · seq ${live.seq}` : ""}</p> : null}
        <ErrorText error={liveError} />
        {ev.errorMessage ? <p className="error">{t("errorMessage")}: {ev.errorMessage}</p> : null}
      </Card>
      {ev.results.length ? (
        <Card title={t("results")}>
          <BarChart title={t("results")} max={1} bars={resultBars(ev.results, t("mean"))} />
          <DataTable caption={t("resultsCaption")} columns={estimateColumns} rows={ev.results} rowKey={(r) => r.metric} />
        </Card>
      ) : means.length ? (
        <Card title={t("runningMeans")}>
          <BarChart title={t("runningMeans")} max={1} bars={meanBars(means, t("mean"))} />
        </Card>
      ) : null}
      {ev.vsPrevious ? (
        <Card title={t("vsPrevious")} actions={
          <Button onClick={() => navigate(`/evaluations/compare?ids=${ev.vsPrevious?.previousId},${ev.id}`)}>{t("compareWithPrevious")}</Button>
        }>
          <DeltaChart title={t("vsPrevious")} rows={ev.vsPrevious.differences.map((d) => ({
            label: d.metric, mean: d.mean, low: d.low, high: d.high, significant: d.low > 0 || d.high < 0,
          }))} />
          <p className={ev.vsPrevious.regressed.length ? "error" : "muted"}>
            {ev.vsPrevious.regressed.length ? t("regressed", { metrics: ev.vsPrevious.regressed.join(", ") }) : t("noRegression")}
          </p>
          <ul>
            {ev.vsPrevious.differences.map((d) => (
              <li key={d.metric}>{d.metric}: {signed(d.mean)} ({signed(d.low)} – {signed(d.high)}, n = {d.n})</li>
            ))}
          </ul>
        </Card>
      ) : null}
      <Card title={t("settings")}>
        <Facts rows={[
          [t("model"), <span className="mono">{ev.modelName}</span>],
          [t("metrics"), ev.metrics.join(", ")],
          [t("fileLabel"), <><span className="mono">{ev.fileId}</span> · {ev.holdoutPercent > 0
            ? t("holdout", { percent: ev.holdoutPercent, seed: ev.holdoutSeed }) : t("wholeFile")} ({ev.datasetType})</>],
          [t("generation"), [
            `${t("temperature")} ${ev.temperature}`, `${t("maxTokens")} ${ev.maxTokens}`, `${t("concurrency")} ${ev.concurrency}`,
            `${t("timeoutSeconds")} ${ev.timeoutSeconds}`, `${t("retries")} ${ev.retries}`,
          ].join(" · ")],
          ev.judge ? [t("judgeLabel"), (
            <><span className="mono">{ev.judge.modelName}</span> · {t("judgeMaxTokens")} {ev.judge.maxTokens}
              {ev.judge.rubric ? <details><summary>{t("rubric")}</summary><pre>{ev.judge.rubric}</pre></details> : <> · {t("builtinRubric")}</>}</>
          )] : null,
          ev.baselineModelName ? [t("baseline"), <span className="mono">{ev.baselineModelName}</span>] : null,
          ev.deployForRun && [t("deployedForRun"), "✓"],
          Boolean(ev.repeatHours || ev.scheduleId) && [t("schedule"), (
            <>
              {ev.repeatHours ? t("repeats", { h: ev.repeatHours }) : null}
              {ev.scheduleId ? <>{ev.repeatHours ? " · " : null}{link(`/evaluations/${ev.scheduleId}`, t("scheduleOf", { id: ev.scheduleId }))}</> : null}
              {ev.previousId ? <> · {link(`/evaluations/${ev.previousId}`, `${t("previous")} #${ev.previousId}`)}</> : null}
            </>
          )],
          ev.fineTuningJobId ? [t("fineTuningJobId"), (
            <>
              {link(`/finetune/${ev.fineTuningJobId}`, t("fineTuningJob", { id: ev.fineTuningJobId }))}
              {ev.gateRole ? ` · ${t("gate", { role: ev.gateRole })}` : ""}
            </>
          )] : null,
          [t("created"), `${formatTime(ev.createdAt)} · ${ev.operator}`],
          [t("startedAt"), formatTime(ev.startedAt)],
          Boolean(ev.remark) && [t("remark"), ev.remark],
        ]} />
      </Card>
      <Samples evaluationId={ev.id} metrics={ev.metrics} refresh={refresh} />
    </Page>
  );
}
