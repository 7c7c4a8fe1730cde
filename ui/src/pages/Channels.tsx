// Channels: API keys for applications (allowed models, quota, rate limits, expiry) and their usage.
// The key is shown once, after create and after rotate; maintainers manage, members look.
import { useMemo, useState } from "react";
import {
  Button, Card, DataTable, ErrorText, Modal, Page, Pager, StatusBadge, formatNumber, formatTime, type Column,
} from "../components/ui";
import { graphql } from "../gql";
import type { ChannelsPageListQuery } from "../gql/graphql";
import { mutate, useAction, usePaging, useQuery } from "../hooks/api";
import { useText } from "../i18n";
import { matchPath, navigate } from "../router";
import { useSession } from "../state/session";
import { ChannelActions, KeyDialog } from "./channels/ChannelActions";
import { ChannelFormView } from "./channels/ChannelForm";
import { emptyChannelForm, formToInput } from "./channels/form";
import { text } from "./channels/text";
import { UsageCharts } from "./channels/UsageCharts";

const List = graphql(`
  query ChannelsPageList($pagination: Pagination) {
    channels(pagination: $pagination) {
      totalCount
      items {
        id name alias remark email keyPrefix quota usedTokens expiresAt rpmLimit tpmLimit enabled modelIds
        createdAt lastOperator models { id name }
      }
    }
  }
`);

const One = graphql(`
  query ChannelsPageOne($id: ID!) {
    channel(id: $id) {
      id name alias remark email keyPrefix quota usedTokens expiresAt rpmLimit tpmLimit enabled modelIds
      createdAt lastOperator models { id name }
    }
  }
`);

const Models = graphql(`
  query ChannelsPageModels {
    models(pagination: { offset: 0, limit: 100 }) { items { id name enabled } }
  }
`);

const Create = graphql(`
  mutation ChannelsPageCreate($input: ChannelInput!) {
    createChannel(input: $input) { key channel { id alias } errors { code message field } }
  }
`);

type ChannelRow = ChannelsPageListQuery["channels"]["items"][number];

function useModelOptions(enabled: boolean) {
  const models = useQuery(Models, {}, { skip: !enabled });
  return useMemo(
    () => (models.data?.models.items ?? []).map((m) => ({ value: m.id, label: m.enabled ? m.name : `${m.name} (off)` })),
    [models.data],
  );
}

export default function Channels({ path }: { path: string }) {
  const t = useText(text);
  const { tenantId } = useSession();
  const detail = matchPath("/channels/:id", path);
  if (!tenantId) {
    return <Page title={t("title")}><p className="notice">{t("chooseTenant")}</p></Page>;
  }
  return detail ? <ChannelDetail id={detail.id} /> : <ChannelList />;
}

function expiry(t: (k: "never" | "expired") => string, expiresAt: string | null | undefined): string {
  if (!expiresAt) return t("never");
  const past = new Date(expiresAt).getTime() <= Date.now();
  return past ? `${formatTime(expiresAt)} (${t("expired")})` : formatTime(expiresAt);
}

function ChannelList() {
  const t = useText(text);
  const { canManage } = useSession();
  const paging = usePaging(20);
  const list = useQuery(List, { pagination: paging.pagination });
  const models = useModelOptions(canManage);
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);
  const create = useAction();
  const unlimited = t("unlimited");

  const columns: Column<ChannelRow>[] = [
    {
      key: "alias", title: t("alias"),
      render: (c) => (
        <a href={`/channels/${c.id}`} onClick={(e) => { e.preventDefault(); navigate(`/channels/${c.id}`); }}>{c.alias}</a>
      ),
    },
    { key: "key", title: t("key"), render: (c) => <code>{c.keyPrefix}…</code> },
    { key: "models", title: t("models"), render: (c) => c.models.map((m) => m.name).join(", ") || "—" },
    {
      key: "used", title: t("used"), className: "num",
      render: (c) => `${formatNumber(c.usedTokens)} / ${c.quota === null || c.quota === undefined ? unlimited : formatNumber(c.quota)}`,
    },
    {
      key: "limits", title: t("limits"), className: "num",
      render: (c) => `${c.rpmLimit ?? unlimited} / ${c.tpmLimit ?? unlimited}`,
    },
    { key: "expires", title: t("expiresAt"), render: (c) => expiry(t, c.expiresAt) },
    { key: "status", title: t("status"), render: (c) => <StatusBadge status={c.enabled ? "ENABLED" : "DISABLED"} /> },
    ...(canManage ? [{
      key: "actions", title: t("actions"),
      render: (c: ChannelRow) => (
        <ChannelActions channel={c} models={models} onChanged={() => void list.reload()} onDeleted={() => void list.reload()} />
      ),
    }] : []),
  ];

  return (
    <Page
      title={t("title")}
      actions={canManage ? <Button kind="primary" onClick={() => { create.clear(); setCreating(true); }}>{t("create")}</Button> : null}
    >
      {!canManage ? <p className="muted">{t("readOnly")}</p> : null}
      <Card>
        <ErrorText error={list.error} />
        <DataTable columns={columns} rows={list.data?.channels.items} rowKey={(c) => c.id} loading={list.loading}
          caption={t("title")} />
        <Pager offset={paging.offset} limit={paging.limit} total={list.data?.channels.totalCount ?? 0} onChange={paging.setOffset} />
      </Card>
      <UsageCharts channelId={null} title={t("usageAll")} />
      {creating ? (
        <Modal title={t("createTitle")} onClose={() => setCreating(false)} wide>
          <ChannelFormView initial={emptyChannelForm()} submitLabel={t("submitCreate")} busy={create.busy} error={create.error}
            models={models} onCancel={() => setCreating(false)}
            onSubmit={(form) => void create.run(async () => {
              const data = await mutate(Create, { input: formToInput(form) });
              setCreating(false);
              setSecret(data.createChannel.key ?? null);
              void list.reload();
            })} />
        </Modal>
      ) : null}
      {secret ? <KeyDialog title={t("created")} secret={secret} onClose={() => setSecret(null)} /> : null}
    </Page>
  );
}

function ChannelDetail({ id }: { id: string }) {
  const t = useText(text);
  const { canManage } = useSession();
  const one = useQuery(One, { id });
  const models = useModelOptions(canManage);
  const channel = one.data?.channel;
  const back = (
    <a href="/channels" onClick={(e) => { e.preventDefault(); navigate("/channels"); }}>← {t("back")}</a>
  );
  if (one.data && !channel) {
    return <Page title={t("title")} actions={back}><p className="notice">{t("notFound")}</p></Page>;
  }
  const unlimited = t("unlimited");
  return (
    <Page title={channel ? channel.alias : t("title")} actions={back}>
      <ErrorText error={one.error} />
      {channel ? (
        <Card title={t("overview")}
          actions={canManage ? (
            <ChannelActions channel={channel} models={models} onChanged={() => void one.reload()}
              onDeleted={() => navigate("/channels")} />
          ) : null}>
          <dl className="form-grid" data-testid="channel-detail">
            <div><dt className="muted">{t("name")}</dt><dd>{channel.name}</dd></div>
            <div><dt className="muted">{t("key")}</dt><dd><code>{channel.keyPrefix}…</code></dd></div>
            <div><dt className="muted">{t("status")}</dt><dd><StatusBadge status={channel.enabled ? "ENABLED" : "DISABLED"} /></dd></div>
            <div><dt className="muted">{t("used")}</dt>
              <dd>{formatNumber(channel.usedTokens)} / {channel.quota === null || channel.quota === undefined ? unlimited : formatNumber(channel.quota)}</dd></div>
            <div><dt className="muted">{t("rpmLimit")}</dt><dd>{channel.rpmLimit ?? unlimited}</dd></div>
            <div><dt className="muted">{t("tpmLimit")}</dt><dd>{channel.tpmLimit ?? unlimited}</dd></div>
            <div><dt className="muted">{t("expiresAt")}</dt><dd>{expiry(t, channel.expiresAt)}</dd></div>
            <div><dt className="muted">{t("email")}</dt><dd>{channel.email || "—"}</dd></div>
            <div><dt className="muted">{t("createdAt")}</dt><dd>{formatTime(channel.createdAt)}</dd></div>
            <div><dt className="muted">{t("lastOperator")}</dt><dd>{channel.lastOperator || "—"}</dd></div>
            <div><dt className="muted">{t("models")}</dt><dd>{channel.models.map((m) => m.name).join(", ") || "—"}</dd></div>
            <div><dt className="muted">{t("remark")}</dt><dd>{channel.remark || "—"}</dd></div>
          </dl>
        </Card>
      ) : null}
      {channel ? <UsageCharts channelId={channel.id} title={t("usage")} /> : null}
    </Page>
  );
}
