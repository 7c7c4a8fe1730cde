// The tenant at a glance: deployments by status, GPUs in use, requests and tokens per day by model and channel,
// the gateway's error rate, and the training and evaluation jobs running now. Deployment changes arrive live.
import { useMemo } from "react";
import { graphql } from "../gql";
import { useQuery, useSubscription } from "../hooks/api";
import { defineText, useText } from "../i18n";
import { Link } from "../components/Link";
import { Card, DataTable, Page, Stat, StatusBadge, ErrorText, formatNumber, formatTime } from "../components/ui";
import { LineChart } from "../components/charts";
import { daysBetween, errorRate, usageSeries } from "./dashboard/series";

const text = defineText({
  en: {
    title: "Dashboard", running: "Deployments running", deployments: "Deployments", gpus: "GPUs in use",
    errorRate: "Gateway error rate", errorHint: "Non-2xx answers since this API process started",
    training: "Training jobs running", evaluations: "Evaluations running", none: "no traffic",
    requestsByModel: "Requests per day by model", tokensByModel: "Tokens per day by model",
    requestsByChannel: "Requests per day by channel", runningJobs: "Running training jobs",
    runningEvals: "Running evaluations", byStatus: "Deployments by status", job: "Job", model: "Model",
    progress: "Progress", started: "Started", status: "Status", count: "Count", days: "last {n} days",
  },
  zh: {
    title: "概览", running: "运行中的部署", deployments: "部署", gpus: "已用 GPU",
    errorRate: "网关错误率", errorHint: "本 API 进程启动以来的非 2xx 响应",
    training: "运行中的训练", evaluations: "运行中的评测", none: "暂无流量",
    requestsByModel: "每日请求数（按模型）", tokensByModel: "每日 Token 数（按模型）",
    requestsByChannel: "每日请求数（按渠道）", runningJobs: "运行中的训练任务",
    runningEvals: "运行中的评测", byStatus: "部署状态", job: "任务", model: "模型",
    progress: "进度", started: "开始时间", status: "状态", count: "数量", days: "最近 {n} 天",
  },
});

const DAYS = 14;

const Overview = graphql(`
  query DashboardOverview($start: Date!, $end: Date!) {
    dashboard {
      deployments { status count }
      gpuTotal
      gpuInUse
      gatewayRequests { model status requests }
    }
    channelUsage(start: $start, end: $end) { channelId model day requests promptTokens completionTokens }
    channels(pagination: { offset: 0, limit: 100 }) { items { id name alias } }
    fineTuningJobs(status: [RUNNING], pagination: { offset: 0, limit: 10 }) {
      totalCount
      items { id jobId baseModel progress startTrainTime }
    }
    evaluations(status: [RUNNING], pagination: { offset: 0, limit: 10 }) {
      totalCount
      items { id modelName done total startedAt }
    }
  }
`);

const DeploymentChanged = graphql(`
  subscription DashboardDeploymentChanged { deploymentsStatusChanged { id status } }
`);

export default function Dashboard() {
  const t = useText(text);
  const range = useMemo(() => {
    const end = new Date();
    const start = new Date(end.getTime() - (DAYS - 1) * 86_400_000);
    return { start: start.toISOString().slice(0, 10), end: end.toISOString().slice(0, 10), days: daysBetween(start, end) };
  }, []);
  const { data, error, reload } = useQuery(Overview, { start: range.start, end: range.end });
  useSubscription(DeploymentChanged, {}, () => void reload());

  const d = data?.dashboard;
  const running = d?.deployments.find((x) => x.status === "RUNNING")?.count ?? 0;
  const total = d?.deployments.reduce((n, x) => n + x.count, 0) ?? 0;
  const rate = d ? errorRate(d.gatewayRequests) : null;
  const channelNames = new Map((data?.channels.items ?? []).map((c) => [c.id, c.alias || c.name || `#${c.id}`]));
  const usage = data?.channelUsage ?? [];
  const dayLabel = (x: number) => range.days[Math.round(x)]?.slice(5) ?? "";

  return (
    <Page title={t("title")}>
      <ErrorText error={error} />
      <div className="stats" data-testid="dashboard-stats" data-ready={data ? "true" : "false"}>
        <Stat label={t("running")} value={`${running} / ${total}`} />
        <Stat label={t("gpus")} value={d ? `${d.gpuInUse} / ${d.gpuTotal}` : "—"} />
        <Stat label={t("errorRate")} value={rate === null ? t("none") : `${formatNumber(rate * 100, 1)} %`} hint={t("errorHint")} />
        <Stat label={t("training")} value={data?.fineTuningJobs.totalCount ?? "—"} />
        <Stat label={t("evaluations")} value={data?.evaluations.totalCount ?? "—"} />
      </div>
      <div className="grid">
        <Card title={`${t("requestsByModel")} · ${t("days", { n: DAYS })}`}>
          <LineChart title={t("requestsByModel")} formatX={dayLabel} formatY={(y) => formatNumber(y)}
            series={usageSeries(usage, range.days, (r) => r.model, "requests")} />
        </Card>
        <Card title={`${t("tokensByModel")} · ${t("days", { n: DAYS })}`}>
          <LineChart title={t("tokensByModel")} formatX={dayLabel} formatY={(y) => formatNumber(y)}
            series={usageSeries(usage, range.days, (r) => r.model, "tokens")} />
        </Card>
        <Card title={`${t("requestsByChannel")} · ${t("days", { n: DAYS })}`}>
          <LineChart title={t("requestsByChannel")} formatX={dayLabel} formatY={(y) => formatNumber(y)}
            series={usageSeries(usage, range.days, (r) => channelNames.get(r.channelId) ?? `#${r.channelId}`, "requests")} />
        </Card>
        <Card title={t("byStatus")}>
          <DataTable caption={t("byStatus")} rows={d?.deployments} rowKey={(r) => r.status} columns={[
            { key: "status", title: t("status"), render: (r) => <StatusBadge status={r.status} /> },
            { key: "count", title: t("count"), className: "num", render: (r) => r.count },
          ]} />
        </Card>
      </div>
      <div className="grid">
        <Card title={t("runningJobs")}>
          <DataTable caption={t("runningJobs")} rows={data?.fineTuningJobs.items} rowKey={(r) => r.id} columns={[
            { key: "job", title: t("job"), render: (r) => (
              <Link to={`/finetune/${r.id}`}>{r.jobId}</Link>) },
            { key: "model", title: t("model"), render: (r) => r.baseModel },
            { key: "progress", title: t("progress"), className: "num", render: (r) => `${formatNumber(r.progress * 100, 0)} %` },
            { key: "started", title: t("started"), render: (r) => formatTime(r.startTrainTime) },
          ]} />
        </Card>
        <Card title={t("runningEvals")}>
          <DataTable caption={t("runningEvals")} rows={data?.evaluations.items} rowKey={(r) => r.id} columns={[
            { key: "model", title: t("model"), render: (r) => (
              <Link to={`/evaluations/${r.id}`}>{r.modelName}</Link>) },
            { key: "progress", title: t("progress"), className: "num", render: (r) => `${r.done} / ${r.total}` },
            { key: "started", title: t("started"), render: (r) => formatTime(r.startedAt) },
          ]} />
        </Card>
      </div>
    </Page>
  );
}
