// One deployment: its status kept live (deploymentStatusChanged), its settings and workers, health probes,
// FastChat's view of its workers, and a live log tail per replica.
import { useCallback, useEffect, useState } from "react";
import { Card, ErrorText, Loading, Page, Stat, StatusBadge, Tabs, formatNumber, formatTime } from "../../components/ui";
import { useQuery, useSubscription } from "../../hooks/api";
import { useText } from "../../i18n";
import { useSession } from "../../state/session";
import { DeploymentActions } from "./DeploymentActions";
import { DeploymentChanged, DeploymentGet } from "./documents";
import { FastChatCard, HealthCard } from "./Health";
import { Link } from "../../components/Link";
import { TRANSITIONAL_STATUSES } from "./live";
import { LogTail } from "./LogTail";
import { text } from "./text";
import { POLL_MS, type Deployment } from "./useLiveDeployments";

export function DeploymentDetail({ id }: { id: string }) {
  const t = useText(text);
  const { tenantId } = useSession();
  const hasTenant = tenantId !== null;
  const query = useQuery(DeploymentGet, { id }, { skip: !hasTenant });
  // The newest word wins: the query's answer, a live event, or what a mutation answered.
  const [current, setCurrent] = useState<Deployment | null>(null);
  const [liveError, setLiveError] = useState<string | null>(null);
  useEffect(() => {
    if (query.data?.deployment) setCurrent(query.data.deployment);
  }, [query.data]);
  useSubscription(DeploymentChanged, { id }, (data) => {
    setLiveError(null);
    setCurrent(data.deploymentStatusChanged);
  }, { enabled: hasTenant, onError: setLiveError });
  const { reload } = query;
  const moving = current !== null && TRANSITIONAL_STATUSES.has(current.status);
  useEffect(() => {
    if (!moving) return;
    const timer = setInterval(() => void reload(), POLL_MS);
    return () => clearInterval(timer);
  }, [moving, reload]);
  const onChanged = useCallback((d: Deployment) => setCurrent(d), []);
  const [replica, setReplica] = useState("0");

  const back = <Link to="/deployments">{t("back")}</Link>;
  if (!hasTenant) return <Page title={t("title")} actions={back}><p className="notice">{t("noTenant")}</p></Page>;
  const d = current;
  if (!d) {
    return (
      <Page title={t("title")} actions={back}>
        <Loading loading={query.loading} />
        <ErrorText error={query.error} />
        {!query.loading && !query.error ? <p className="notice">{t("notFound")}</p> : null}
      </Page>
    );
  }
  const replicas = Array.from({ length: Math.max(1, d.replicas) }, (_, i) => String(i));
  const shownReplica = replicas.includes(replica) ? replica : "0";

  return (
    <Page title={t("detailTitle", { id: d.id, model: d.modelName })} actions={(
      <>
        {back}
        <span data-testid="deployment-status"><StatusBadge status={d.status} /></span>
        <DeploymentActions deployment={d} onChanged={onChanged} />
      </>
    )}>
      {liveError ? <p className="muted" role="status">{t("reconnecting", { reason: liveError })}</p> : null}
      {d.reason ? <p className="notice" data-testid="deployment-reason"><strong>{t("reason")}</strong>: {d.reason}</p> : null}
      <Card title={t("overview")}>
        <div className="stats">
          <Stat label={t("replicas")} value={formatNumber(d.replicas)} />
          <Stat label={t("gpusPerReplica")} value={formatNumber(d.gpusPerReplica)} />
          <Stat label={t("restarts")} value={formatNumber(d.restarts)} />
        </div>
        <dl className="form-grid">
          {([
            [t("model"), <Link to={`/models/${d.modelId}`}>{d.modelName}</Link>],
            [t("engine"), d.engine],
            [t("quantization"), d.quantization || t("none")],
            [t("label"), d.label || "—"],
            [t("runtime"), d.runtimeBackend || "—"],
            [t("operator"), d.operator || "—"],
            [t("created"), formatTime(d.createdAt)],
            [t("started"), formatTime(d.startedAt)],
            [t("stopped"), formatTime(d.stoppedAt)],
          ] as const).map(([label, value]) => (
            <div key={label}>
              <dt className="muted">{label}</dt>
              <dd style={{ margin: 0, overflowWrap: "anywhere" }}>{value}</dd>
            </div>
          ))}
        </dl>
        <div>
          <h3>{t("workers")}</h3>
          {d.workerAddresses.length ? (
            <ul data-testid="worker-addresses">{d.workerAddresses.map((a) => <li key={a}><code>{a}</code></li>)}</ul>
          ) : <p className="muted">{t("noWorkers")}</p>}
        </div>
      </Card>
      <HealthCard deploymentId={d.id} />
      <FastChatCard addresses={d.workerAddresses} />
      <Card title={t("logs")}>
        {replicas.length > 1 ? (
          <Tabs tabs={replicas.map((r) => ({ value: r, label: t("replica", { n: Number(r) + 1 }) }))}
            value={shownReplica} onChange={setReplica} />
        ) : null}
        <LogTail key={`${d.id}:${shownReplica}:${d.startedAt ?? ""}`} deploymentId={d.id} replica={Number(shownReplica)} />
      </Card>
    </Page>
  );
}
