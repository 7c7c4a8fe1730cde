// The model registry: the list (server paging, search, provider filter) with each model's latest deployment status
// kept live, register / edit / delete (platform administrators), deploy (maintainers of the chosen tenant), and a
// model's page at /models/:id.
import { useEffect, useMemo, useState } from "react";
import {
  Button, ConfirmButton, DataTable, ErrorText, Page, Pager, Select, StatusBadge, TextInput, formatNumber, formatTime,
  type Column,
} from "../components/ui";
import type { ModelsPageModelFragment, Provider } from "../gql/graphql";
import { mutate, useAction, usePaging, useQuery } from "../hooks/api";
import { useText } from "../i18n";
import { matchPath } from "../router";
import { useSession } from "../state/session";
import { Link } from "../components/Link";
import { ACTIVE_STATUSES, latestPerModel } from "./deployments/live";
import { useLiveDeployments, type Deployment } from "./deployments/useLiveDeployments";
import { DeployDialog } from "./models/DeployDialog";
import { DeleteModel, ModelList } from "./models/documents";
import { PROVIDERS } from "./models/form";
import { DeploymentCell } from "./models/DeploymentCell";
import { ModelDetail } from "./models/ModelDetail";
import { ModelDialog } from "./models/ModelDialog";
import { text } from "./models/text";

type Model = ModelsPageModelFragment;

export default function Models({ path }: { path: string }) {
  const detail = matchPath("/models/:id", path);
  if (detail) return <ModelDetail key={detail.id} id={detail.id} />;
  return <ModelListPage />;
}

function ModelListPage() {
  const t = useText(text);
  const session = useSession();
  const isPlatformAdmin = Boolean(session.me?.account.isPlatformAdmin);
  const hasTenant = session.tenantId !== null;
  const canDeploy = session.canManage && hasTenant;
  const paging = usePaging(20);
  const [search, setSearch] = useState("");
  const [searchNow, setSearchNow] = useState("");
  const [provider, setProvider] = useState<Provider | "">("");
  const [editing, setEditing] = useState<Model | "new" | null>(null);
  const [deploying, setDeploying] = useState<Model | null>(null);
  const [notice, setNotice] = useState<Deployment | null>(null);
  const action = useAction();
  const { setOffset } = paging;

  useEffect(() => {
    const timer = setTimeout(() => {
      setSearchNow(search.trim());
      setOffset(0);
    }, 300);
    return () => clearTimeout(timer);
  }, [search, setOffset]);

  const models = useQuery(ModelList, {
    filter: { search: searchNow || null, provider: provider || null },
    pagination: paging.pagination,
  });
  const pageModelIds = useMemo(() => (models.data?.models.items ?? []).map((m) => m.id), [models.data]);
  const live = useLiveDeployments({ status: null, offset: 0, limit: 100, enabled: hasTenant && pageModelIds.length > 0,
    modelIds: pageModelIds });
  const latest = useMemo(() => latestPerModel([...live.rows, ...live.extra]), [live.rows, live.extra]);

  const columns: Column<Model>[] = [
    { key: "name", title: t("name"), render: (m) => <Link to={`/models/${m.id}`} testId="model-link">{m.name}</Link> },
    { key: "provider", title: t("provider"), render: (m) => t(m.provider) },
    { key: "type", title: t("modelType"), render: (m) => t(m.modelType) },
    { key: "maxTokens", title: t("maxTokens"), className: "num", render: (m) => formatNumber(m.maxTokens) },
    { key: "parameters", title: t("parameters"), className: "num", render: (m) => formatNumber(m.parameters, 1) },
    { key: "enabled", title: t("enabled"), render: (m) => <StatusBadge status={m.enabled ? "ENABLED" : "DISABLED"} /> },
    {
      key: "deployment", title: t("deployment"),
      render: (m) => (m.provider === "LOCAL" && hasTenant
        ? <DeploymentCell deployment={latest.get(m.id)} none={t("notDeployed")} />
        : <span className="muted">—</span>),
    },
    { key: "created", title: t("created"), render: (m) => formatTime(m.createdAt) },
    {
      key: "actions", title: t("actions"),
      render: (m) => {
        const current = latest.get(m.id);
        const active = current !== undefined && ACTIVE_STATUSES.has(current.status);
        return (
          <span className="actions">
            {session.canManage && m.provider === "LOCAL" ? (
              <Button kind="primary" disabled={!canDeploy || active} title={active ? t("notDeployable") : hasTenant ? undefined : t("noTenant")}
                onClick={() => setDeploying(m)}>{t("deploy")}</Button>
            ) : null}
            {isPlatformAdmin ? <Button onClick={() => setEditing(m)}>{t("edit")}</Button> : null}
            {isPlatformAdmin ? (
              <ConfirmButton busy={action.busy} onConfirm={() => void action.run(async () => {
                await mutate(DeleteModel, { id: m.id });
                await models.reload();
              })}>{t("delete")}</ConfirmButton>
            ) : null}
          </span>
        );
      },
    },
  ];

  return (
    <Page title={t("title")} actions={isPlatformAdmin ? (
      <Button kind="primary" onClick={() => setEditing("new")}>{t("register")}</Button>
    ) : null}>
      {!hasTenant ? <p className="notice">{t("noTenant")}</p> : null}
      {notice ? (
        <p className="notice" role="status">
          <Link to={`/deployments/${notice.id}`}>{t("deployed", { id: notice.id })}</Link>
        </p>
      ) : null}
      <div className="actions">
        <TextInput label={t("search")} name="search" type="search" value={search} onChange={setSearch} />
        <Select<Provider | ""> label={t("provider")} name="provider" value={provider}
          onChange={(v) => { setProvider(v); setOffset(0); }}
          options={[{ value: "", label: t("allProviders") }, ...PROVIDERS.map((p) => ({ value: p, label: t(p) }))]} />
      </div>
      <ErrorText error={models.error ?? live.error ?? action.error} />
      {live.liveError ? <p className="muted" role="status">{t("liveError", { reason: live.liveError })}</p> : null}
      <DataTable columns={columns} rows={models.data?.models.items} rowKey={(m) => m.id}
        loading={models.loading && !models.data} caption={t("caption")} />
      <Pager offset={paging.offset} limit={paging.limit} total={models.data?.models.totalCount ?? 0} onChange={setOffset} />
      {editing ? (
        <ModelDialog model={editing === "new" ? null : editing} onClose={() => setEditing(null)}
          onSaved={() => { setEditing(null); void models.reload(); }} />
      ) : null}
      {deploying ? (
        <DeployDialog model={deploying} onClose={() => setDeploying(null)}
          onDeployed={(d) => { live.put(d); setNotice(d); setDeploying(null); }} />
      ) : null}
    </Page>
  );
}
