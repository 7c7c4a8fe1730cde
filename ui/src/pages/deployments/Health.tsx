// Worker health: the deployment's recent probes (deploymentHealth, refreshed every few seconds) and FastChat's view
// (the fastchatHealth subscription: controller liveness and the tenant's workers after every probe).
import { useEffect, useMemo, useState } from "react";
import { Card, DataTable, ErrorText, Stat, StatusBadge, formatNumber, formatTime, type Column } from "../../components/ui";
import type { DeploymentsPageFastChatSubscription, DeploymentsPageHealthQuery } from "../../gql/graphql";
import { useQuery, useSubscription } from "../../hooks/api";
import { useText } from "../../i18n";
import { DeploymentHealth, FastChatHealth } from "./documents";
import { HEALTH_POLL_MS, latestProbes } from "./live";
import { text } from "./text";

type Probe = DeploymentsPageHealthQuery["deploymentHealth"][number];
type FastChat = DeploymentsPageFastChatSubscription["fastchatHealth"];

function useProbeColumns(): Column<Probe>[] {
  const t = useText(text);
  return [
    { key: "checked", title: t("checked"), render: (p) => formatTime(p.checkedAt) },
    { key: "worker", title: t("worker"), render: (p) => <code>{p.workerAddress}</code> },
    { key: "healthy", title: t("healthy"), render: (p) => <StatusBadge status={p.healthy ? "HEALTHY" : "UNHEALTHY"} /> },
    { key: "speed", title: t("speed"), className: "num", render: (p) => formatNumber(p.speed, 2) },
    { key: "queue", title: t("queue"), className: "num", render: (p) => formatNumber(p.queueLength) },
    { key: "detail", title: t("detail"), render: (p) => p.detail || "—" },
  ];
}

export function HealthCard({ deploymentId }: { deploymentId: string }) {
  const t = useText(text);
  const health = useQuery(DeploymentHealth, { id: deploymentId, limit: 50 });
  const { reload } = health;
  useEffect(() => {
    const timer = setInterval(() => void reload(), HEALTH_POLL_MS);
    return () => clearInterval(timer);
  }, [reload]);
  const probes = health.data?.deploymentHealth;
  const latest = useMemo(() => latestProbes(probes ?? []), [probes]);
  const columns = useProbeColumns();
  return (
    <Card title={t("health")}>
      <div className="stats">
        <Stat label={t("queueTotal")} value={latest.length ? formatNumber(latest.reduce((n, p) => n + p.queueLength, 0)) : "—"} />
        <Stat label={t("healthy")} value={latest.length ? `${latest.filter((p) => p.healthy).length} / ${latest.length}` : "—"} />
      </div>
      <ErrorText error={health.error} />
      <small className="muted">{t("refreshEvery", { s: HEALTH_POLL_MS / 1000 })}</small>
      <DataTable columns={columns} rows={probes} rowKey={(p) => `${p.workerAddress}@${p.checkedAt}`}
        loading={health.loading && !health.data} caption={t("healthCaption")} />
    </Card>
  );
}

/** FastChat's view; with `addresses`, only those workers (a deployment's). */
export function FastChatCard({ addresses }: { addresses?: readonly string[] }) {
  const t = useText(text);
  const [state, setState] = useState<FastChat | null>(null);
  const [error, setError] = useState<string | null>(null);
  useSubscription(FastChatHealth, {}, (data) => {
    setError(null);
    setState(data.fastchatHealth);
  }, { onError: setError });
  const columns = useProbeColumns();
  const workers = state ? (addresses ? state.workers.filter((w) => addresses.includes(w.workerAddress)) : state.workers) : [];
  return (
    <Card title={t("fastchat")}>
      <ErrorText error={error ? t("reconnecting", { reason: error }) : null} />
      {!state ? <p className="muted" aria-live="polite">{t("waitingProbe")}</p> : (
        <>
          <div className="stats" data-testid="fastchat-health" data-controller-alive={state.controllerAlive}>
            <Stat label={t("controller")}
              value={<StatusBadge status={state.controllerAlive ? "HEALTHY" : "UNHEALTHY"} />}
              hint={state.controllerAlive ? t("alive") : t("down")} />
            <Stat label={t("checked")} value={<small>{formatTime(state.checkedAt)}</small>}
              hint={t("tenantWorkers", { n: state.workers.length })} />
          </div>
          <DataTable columns={columns} rows={workers} rowKey={(w) => w.workerAddress} caption={t("fastchatCaption")} />
        </>
      )}
    </Card>
  );
}
