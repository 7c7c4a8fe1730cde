// Deployments of the tenant: the list (status filter, server paging) kept live by deploymentsStatusChanged, with
// undeploy / scale / redeploy for maintainers, and a deployment's page at /deployments/:id.
import { useEffect, useRef, useState } from "react";
import {
  DataTable, ErrorText, Page, Pager, Select, StatusBadge, formatNumber, formatTime, type Column,
} from "../components/ui";
import type { DeploymentStatus } from "../gql/graphql";
import { usePaging } from "../hooks/api";
import { useText } from "../i18n";
import { matchPath } from "../router";
import { useSession } from "../state/session";
import { DeploymentActions } from "./deployments/DeploymentActions";
import { DeploymentDetail } from "./deployments/DeploymentDetail";
import { FastChatCard } from "./deployments/Health";
import { Link } from "../components/Link";
import { DEPLOYMENT_STATUSES, matchesFilter } from "./deployments/live";
import { text } from "./deployments/text";
import { useLiveDeployments, type Deployment } from "./deployments/useLiveDeployments";

export default function Deployments({ path }: { path: string }) {
  const detail = matchPath("/deployments/:id", path);
  if (detail) return <DeploymentDetail key={detail.id} id={detail.id} />;
  return <DeploymentListPage />;
}

function DeploymentListPage() {
  const t = useText(text);
  const { tenantId, canManage } = useSession();
  const hasTenant = tenantId !== null;
  const paging = usePaging(20);
  const { setOffset } = paging;
  const [status, setStatus] = useState<DeploymentStatus | "">("");
  const filter = status ? [status] : [];
  const live = useLiveDeployments({ status: status ? [status] : null, offset: paging.offset, limit: paging.limit, enabled: hasTenant });

  // A deployment this page does not hold changed: on the first page a new one belongs at the top, so reload.
  const { extra, refresh } = live;
  const lastReload = useRef(0);
  const wantsReload = paging.offset === 0 && extra.some((d) => matchesFilter(d.status, filter));
  useEffect(() => {
    if (!wantsReload) return;
    const wait = Math.max(0, lastReload.current + 1000 - Date.now());
    const timer = setTimeout(() => {
      lastReload.current = Date.now();
      void refresh();
    }, wait);
    return () => clearTimeout(timer);
  }, [wantsReload, extra, refresh]);

  if (!hasTenant) return <Page title={t("title")}><p className="notice">{t("noTenant")}</p></Page>;

  const columns: Column<Deployment>[] = [
    { key: "id", title: t("id"), render: (d) => <Link to={`/deployments/${d.id}`} testId="deployment-link">#{d.id}</Link> },
    { key: "model", title: t("model"), render: (d) => <Link to={`/models/${d.modelId}`}>{d.modelName}</Link> },
    { key: "status", title: t("status"), render: (d) => <StatusBadge status={d.status} /> },
    { key: "replicas", title: t("replicas"), className: "num", render: (d) => formatNumber(d.replicas) },
    { key: "gpus", title: t("gpusPerReplica"), className: "num", render: (d) => formatNumber(d.gpusPerReplica) },
    { key: "engine", title: t("engine"), render: (d) => d.engine },
    { key: "restarts", title: t("restarts"), className: "num", render: (d) => formatNumber(d.restarts) },
    { key: "created", title: t("created"), render: (d) => formatTime(d.createdAt) },
    { key: "reason", title: t("reason"), render: (d) => (d.reason ? <small>{d.reason}</small> : "—") },
  ];
  if (canManage) {
    columns.push({
      key: "actions", title: t("actions"),
      render: (d) => <DeploymentActions deployment={d} onChanged={live.put} />,
    });
  }

  return (
    <Page title={t("title")}>
      <div className="actions">
        <Select<DeploymentStatus | ""> label={t("status")} name="status" value={status}
          onChange={(v) => { setStatus(v); setOffset(0); }}
          options={[{ value: "", label: t("allStatuses") }, ...DEPLOYMENT_STATUSES.map((s) => ({ value: s, label: s }))]} />
      </div>
      <ErrorText error={live.error} />
      {live.liveError ? <p className="muted" role="status">{t("reconnecting", { reason: live.liveError })}</p> : null}
      <DataTable columns={columns} rows={live.rows} rowKey={(d) => d.id} loading={live.loading} caption={t("caption")} />
      <Pager offset={paging.offset} limit={paging.limit} total={live.total} onChange={setOffset} />
      <FastChatCard />
    </Page>
  );
}
