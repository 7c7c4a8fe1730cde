// One model: its fields, its deployments (live), deploy / edit / delete, and a link to its evaluations.
import { useMemo, useState, type ReactNode } from "react";
import {
  Button, Card, ConfirmButton, DataTable, ErrorText, Loading, Page, StatusBadge, formatNumber, formatTime, type Column,
} from "../../components/ui";
import { mutate, useAction, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { navigate } from "../../router";
import { useSession } from "../../state/session";
import { Link } from "../../components/Link";
import { ACTIVE_STATUSES, compareIds } from "../deployments/live";
import { useLiveDeployments, type Deployment } from "../deployments/useLiveDeployments";
import { DeployDialog } from "./DeployDialog";
import { DeploymentCell } from "./DeploymentCell";
import { DeleteModel, ModelGet } from "./documents";
import { ModelDialog } from "./ModelDialog";
import { text } from "./text";

function Fields({ items }: { items: [string, ReactNode][] }) {
  return (
    <dl className="form-grid">
      {items.map(([label, value]) => (
        <div key={label}>
          <dt className="muted">{label}</dt>
          <dd style={{ margin: 0, overflowWrap: "anywhere" }}>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

export function ModelDetail({ id }: { id: string }) {
  const t = useText(text);
  const session = useSession();
  const isPlatformAdmin = Boolean(session.me?.account.isPlatformAdmin);
  const hasTenant = session.tenantId !== null;
  const canDeploy = session.canManage && hasTenant;
  const query = useQuery(ModelGet, { id });
  const modelIds = useMemo(() => [id], [id]);
  const live = useLiveDeployments({ status: null, offset: 0, limit: 100, enabled: hasTenant, modelIds });
  const [editing, setEditing] = useState(false);
  const [deploying, setDeploying] = useState(false);
  const action = useAction();
  const model = query.data?.model ?? null;

  const deployments = useMemo(
    () => [...live.rows, ...live.extra].filter((d) => d.modelId === id).sort((a, b) => compareIds(b.id, a.id)),
    [live.rows, live.extra, id],
  );
  const latest = deployments[0];
  const active = latest !== undefined && ACTIVE_STATUSES.has(latest.status);

  if (!model) {
    return (
      <Page title={t("title")} actions={<Link to="/models">{t("back")}</Link>}>
        <Loading loading={query.loading} />
        <ErrorText error={query.error} />
        {!query.loading && !query.error ? <p className="notice">{t("notFound")}</p> : null}
      </Page>
    );
  }

  const columns: Column<Deployment>[] = [
    { key: "id", title: t("deploymentId"), render: (d) => <Link to={`/deployments/${d.id}`}>#{d.id}</Link> },
    { key: "status", title: t("status"), render: (d) => <StatusBadge status={d.status} /> },
    { key: "replicas", title: t("replicas"), className: "num", render: (d) => formatNumber(d.replicas) },
    { key: "gpus", title: t("gpusPerReplica"), className: "num", render: (d) => formatNumber(d.gpusPerReplica) },
    { key: "engine", title: t("engine"), render: (d) => t(d.engine) },
    { key: "created", title: t("created"), render: (d) => formatTime(d.createdAt) },
    { key: "stopped", title: t("stopped"), render: (d) => formatTime(d.stoppedAt) },
  ];

  return (
    <Page title={model.name} actions={(
      <>
        <Link to="/models">{t("back")}</Link>
        {session.canManage && model.provider === "LOCAL" ? (
          <Button kind="primary" disabled={!canDeploy || active} title={active ? t("notDeployable") : undefined}
            onClick={() => setDeploying(true)}>{t("deploy")}</Button>
        ) : null}
        {isPlatformAdmin ? <Button onClick={() => setEditing(true)}>{t("edit")}</Button> : null}
        {isPlatformAdmin ? (
          <ConfirmButton busy={action.busy} onConfirm={() => void action.run(async () => {
            await mutate(DeleteModel, { id: model.id });
            navigate("/models");
          })}>{t("delete")}</ConfirmButton>
        ) : null}
      </>
    )}>
      <ErrorText error={action.error ?? live.error} />
      {!hasTenant ? <p className="notice">{t("noTenant")}</p> : null}
      <Card title={t("details")}>
        <Fields items={[
          [t("provider"), t(model.provider)],
          [t("modelType"), t(model.modelType)],
          [t("maxTokens"), formatNumber(model.maxTokens)],
          [t("parameters"), formatNumber(model.parameters, 1)],
          [t("enabled"), <StatusBadge status={model.enabled ? "ENABLED" : "DISABLED"} />],
          [t("fineTuned"), model.isFineTuned ? t("yes") : t("no")],
          ...(model.provider === "LOCAL" ? [
            [t("modelPath"), <code>{model.modelPath || "—"}</code>],
            [t("conversationTemplate"), model.conversationTemplate || "—"],
            [t("chatTemplate"), model.hasChatTemplate ? t("yes") : t("no")],
            [t("deployment"), hasTenant ? <DeploymentCell deployment={latest} none={t("notDeployed")} /> : "—"],
          ] as [string, ReactNode][] : [
            [t("baseUrl"), <code>{model.baseUrl || "—"}</code>],
            [t("hasCredentials"), model.hasCredentials ? t("yes") : t("no")],
          ] as [string, ReactNode][]),
          [t("tenantIds"), model.tenantIds.map((tid) => session.tenants.find((x) => x.id === tid)?.name ?? `#${tid}`).join(", ") || "—"],
          [t("created"), formatTime(model.createdAt)],
          [t("operator"), model.lastOperator || "—"],
          [t("remark"), model.remark || "—"],
        ]} />
      </Card>
      {model.provider === "LOCAL" ? (
        <Card title={t("deployments")}>
          {hasTenant ? (
            <DataTable columns={columns} rows={deployments} rowKey={(d) => d.id} loading={live.loading}
              caption={t("deploymentsCaption")} />
          ) : <p className="muted">{t("noTenant")}</p>}
        </Card>
      ) : <p className="muted">{t("external")}</p>}
      <Card title={t("evaluations")}>
        <p><Link to={`/evaluations?modelId=${encodeURIComponent(model.id)}`}>{t("evaluationsLink")}</Link></p>
      </Card>
      {editing ? (
        <ModelDialog model={model} onClose={() => setEditing(false)}
          onSaved={() => { setEditing(false); void query.reload(); }} />
      ) : null}
      {deploying ? (
        <DeployDialog model={model} onClose={() => setDeploying(false)}
          onDeployed={(d) => { live.put(d); setDeploying(false); }} />
      ) : null}
    </Page>
  );
}
