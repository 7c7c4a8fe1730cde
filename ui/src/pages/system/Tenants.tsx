// Tenants (platform admins): list, search, create, edit, delete (it cascades: a warning says what goes), and
// members with their roles.
import { useEffect, useMemo, useState } from "react";
import {
  Button, Card, ConfirmButton, DataTable, ErrorText, Modal, Page, Pager, Select, TextArea, TextInput, formatTime,
  type Column,
} from "../../components/ui";
import { graphql } from "../../gql";
import type { TenantRole, TenantsPageListQuery } from "../../gql/graphql";
import { mutate, useAction, usePaging, useQuery } from "../../hooks/api";
import { defineText, useText } from "../../i18n";
import { useSession } from "../../state/session";
import { useDebounced } from "./useDebounced";

const text = defineText({
  en: {
    title: "Tenants", search: "Search", create: "Create tenant", createTitle: "Create tenant", submitCreate: "Create",
    edit: "Edit", editTitle: "Edit tenant", save: "Save", cancel: "Cancel", del: "Delete", deleteTitle: "Delete tenant",
    deleteWarning: "Deleting \"{name}\" removes everything it owns: its members lose access at once, its deployments and training jobs are stopped, its channel keys are revoked, and its files, datasets and other records are deleted. This cannot be undone.",
    deleteConfirm: "Delete tenant and all its data", name: "Name", code: "Code", codeHint: "1–64 lowercase letters, digits, '-' or '_'; cannot be changed later.",
    remark: "Remark", publicId: "Public ID", createdAt: "Created", members: "Members", actions: "Actions",
    deleting: "DELETING", membersTitle: "Members of {name}", account: "Account", role: "Role", remove: "Remove",
    addMember: "Add member", findAccount: "Find account", pickAccount: "Account to add", noAccount: "No matching account",
    MAINTAINER: "Maintainer", MEMBER: "Member", noMembers: "No members yet.", count: "{n} members",
    username: "Username",
  },
  zh: {
    title: "租户", search: "搜索", create: "创建租户", createTitle: "创建租户", submitCreate: "创建",
    edit: "编辑", editTitle: "编辑租户", save: "保存", cancel: "取消", del: "删除", deleteTitle: "删除租户",
    deleteWarning: "删除“{name}”将移除其拥有的一切：成员立即失去访问权限，部署和训练任务被停止，渠道密钥被吊销，文件、数据集及其他记录被删除。此操作不可撤销。",
    deleteConfirm: "删除租户及其全部数据", name: "名称", code: "编码", codeHint: "1–64 位小写字母、数字、'-' 或 '_'；创建后不可修改。",
    remark: "备注", publicId: "公开 ID", createdAt: "创建时间", members: "成员", actions: "操作",
    deleting: "DELETING", membersTitle: "{name} 的成员", account: "账号", role: "角色", remove: "移除",
    addMember: "添加成员", findAccount: "查找账号", pickAccount: "要添加的账号", noAccount: "没有匹配的账号",
    MAINTAINER: "维护者", MEMBER: "成员", noMembers: "暂无成员。", count: "{n} 名成员",
    username: "用户名",
  },
});

const List = graphql(`
  query TenantsPageList($pagination: Pagination, $search: String) {
    tenants(pagination: $pagination, search: $search) {
      totalCount
      items { id name code publicTenantId remark createdAt deleting members { accountId username role } }
    }
  }
`);

const Switcher = graphql(`
  query TenantsPageSwitcher { tenants(pagination: { offset: 0, limit: 100 }) { items { id name code } } }
`);

const Accounts = graphql(`
  query TenantsPageAccounts($search: String) {
    accounts(search: $search, pagination: { offset: 0, limit: 20 }) { items { id username nickname } }
  }
`);

const Create = graphql(`
  mutation TenantsPageCreate($input: CreateTenantInput!) {
    createTenant(input: $input) { tenant { id } errors { code message field } }
  }
`);

const Update = graphql(`
  mutation TenantsPageUpdate($input: UpdateTenantInput!) {
    updateTenant(input: $input) { tenant { id } errors { code message field } }
  }
`);

const Delete = graphql(`
  mutation TenantsPageDelete($id: ID!) {
    deleteTenant(id: $id) { ok errors { code message field } }
  }
`);

const SetMember = graphql(`
  mutation TenantsPageSetMember($input: SetMembershipInput!) {
    setTenantMembership(input: $input) { tenant { id } errors { code message field } }
  }
`);

const RemoveMember = graphql(`
  mutation TenantsPageRemoveMember($input: RemoveMembershipInput!) {
    removeTenantMembership(input: $input) { tenant { id } errors { code message field } }
  }
`);

type Tenant = TenantsPageListQuery["tenants"]["items"][number];
type Dialog = { kind: "create" } | { kind: "edit"; id: string } | { kind: "delete"; id: string } | { kind: "members"; id: string };

const ROLES: TenantRole[] = ["MAINTAINER", "MEMBER"];

export default function Tenants(_: { path: string }) {
  const t = useText(text);
  const session = useSession();
  const [search, setSearch] = useState("");
  const query = useDebounced(search.trim());
  const paging = usePaging(20);
  const { setOffset } = paging;
  useEffect(() => setOffset(0), [query, setOffset]);
  const list = useQuery(List, { pagination: paging.pagination, search: query || null });
  const [dialog, setDialog] = useState<Dialog | null>(null);
  const action = useAction();
  const items = list.data?.tenants.items ?? [];
  const current = dialog && dialog.kind !== "create" ? items.find((x) => x.id === dialog.id) : undefined;

  // the top bar's tenant switcher lists every tenant for platform admins: keep it in step
  const { setAdminTenants } = session;
  const switcher = useQuery(Switcher, {});
  useEffect(() => {
    if (switcher.data) setAdminTenants(switcher.data.tenants.items);
  }, [switcher.data, setAdminTenants]);
  const refresh = async () => {
    await Promise.all([list.reload(), switcher.reload()]);
  };

  const columns: Column<Tenant>[] = [
    { key: "name", title: t("name"), render: (x) => x.name },
    { key: "code", title: t("code"), render: (x) => <code>{x.code}</code> },
    { key: "public", title: t("publicId"), render: (x) => <code>{x.publicTenantId}</code> },
    { key: "members", title: t("members"), render: (x) => t("count", { n: x.members.length }) },
    { key: "remark", title: t("remark"), render: (x) => x.remark || "—" },
    { key: "created", title: t("createdAt"), render: (x) => formatTime(x.createdAt) },
    {
      key: "actions", title: t("actions"),
      render: (x) => x.deleting ? <span className="badge tone-wait">{t("deleting")}</span> : (
        <div className="actions">
          <Button onClick={() => setDialog({ kind: "members", id: x.id })}>{t("members")}</Button>
          <Button onClick={() => { action.clear(); setDialog({ kind: "edit", id: x.id }); }}>{t("edit")}</Button>
          <Button kind="danger" onClick={() => { action.clear(); setDialog({ kind: "delete", id: x.id }); }}>{t("del")}</Button>
        </div>
      ),
    },
  ];

  return (
    <Page title={t("title")}
      actions={<Button kind="primary" onClick={() => { action.clear(); setDialog({ kind: "create" }); }}>{t("create")}</Button>}>
      <Card>
        <div className="form-grid">
          <TextInput label={t("search")} name="search" type="search" value={search} onChange={setSearch} />
        </div>
        <ErrorText error={list.error} />
        <DataTable columns={columns} rows={items} rowKey={(x) => x.id} loading={list.loading} caption={t("title")} />
        <Pager offset={paging.offset} limit={paging.limit} total={list.data?.tenants.totalCount ?? 0} onChange={paging.setOffset} />
      </Card>
      {dialog?.kind === "create" ? (
        <TenantForm title={t("createTitle")} submit={t("submitCreate")} busy={action.busy} error={action.error}
          onClose={() => setDialog(null)}
          onSubmit={(v) => void action.run(async () => {
            await mutate(Create, { input: { name: v.name.trim(), code: v.code.trim(), remark: v.remark } });
            setDialog(null);
            await refresh();
          })} />
      ) : null}
      {dialog?.kind === "edit" && current ? (
        <TenantForm title={t("editTitle")} submit={t("save")} busy={action.busy} error={action.error} tenant={current}
          onClose={() => setDialog(null)}
          onSubmit={(v) => void action.run(async () => {
            await mutate(Update, { input: { id: current.id, name: v.name.trim(), remark: v.remark } });
            setDialog(null);
            await refresh();
          })} />
      ) : null}
      {dialog?.kind === "delete" && current ? (
        <Modal title={t("deleteTitle")} onClose={() => setDialog(null)}>
          <p className="error" data-testid="tenant-delete-warning">{t("deleteWarning", { name: current.name })}</p>
          <ErrorText error={action.error} />
          <div className="actions">
            <ConfirmButton busy={action.busy} onConfirm={() => void action.run(async () => {
              await mutate(Delete, { id: current.id });
              setDialog(null);
              if (session.tenantId === current.id) session.setTenant(null);
              await refresh();
            })}>
              {t("deleteConfirm")}
            </ConfirmButton>
            <Button onClick={() => setDialog(null)}>{t("cancel")}</Button>
          </div>
        </Modal>
      ) : null}
      {dialog?.kind === "members" && current ? (
        <MembersDialog tenant={current} onClose={() => setDialog(null)} onChanged={() => void list.reload()} />
      ) : null}
    </Page>
  );
}

function TenantForm({ title, submit, busy, error, tenant, onClose, onSubmit }: {
  title: string; submit: string; busy: boolean; error: string | null; tenant?: Tenant; onClose: () => void;
  onSubmit: (v: { name: string; code: string; remark: string }) => void;
}) {
  const t = useText(text);
  const [name, setName] = useState(tenant?.name ?? "");
  const [code, setCode] = useState(tenant?.code ?? "");
  const [remark, setRemark] = useState(tenant?.remark ?? "");
  return (
    <Modal title={title} onClose={onClose}>
      <form onSubmit={(e) => { e.preventDefault(); onSubmit({ name, code, remark }); }}>
        <TextInput label={t("name")} name="name" value={name} onChange={setName} required />
        {tenant ? (
          <p><span className="muted">{t("code")}: </span><code>{tenant.code}</code></p>
        ) : (
          <TextInput label={t("code")} name="code" value={code} onChange={(v) => setCode(v.toLowerCase())} hint={t("codeHint")} required />
        )}
        <TextArea label={t("remark")} name="remark" rows={2} value={remark} onChange={setRemark} />
        <ErrorText error={error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={busy}>{submit}</Button>
          <Button onClick={onClose}>{t("cancel")}</Button>
        </div>
      </form>
    </Modal>
  );
}

function MembersDialog({ tenant, onClose, onChanged }: { tenant: Tenant; onClose: () => void; onChanged: () => void }) {
  const t = useText(text);
  const action = useAction();
  const [find, setFind] = useState("");
  const search = useDebounced(find.trim());
  const accounts = useQuery(Accounts, { search: search || null });
  const [accountId, setAccountId] = useState("");
  const [role, setRole] = useState<TenantRole>("MEMBER");
  const candidates = useMemo(
    () => (accounts.data?.accounts.items ?? []).filter((a) => !tenant.members.some((m) => m.accountId === a.id)),
    [accounts.data, tenant.members],
  );
  useEffect(() => {
    if (!candidates.some((a) => a.id === accountId)) setAccountId(candidates[0]?.id ?? "");
  }, [candidates, accountId]);
  const roleOptions = ROLES.map((r) => ({ value: r, label: t(r) }));
  const setMember = (id: string, r: TenantRole) => action.run(async () => {
    await mutate(SetMember, { input: { tenantId: tenant.id, accountId: id, role: r } });
    onChanged();
  });

  const columns: Column<Tenant["members"][number]>[] = [
    { key: "username", title: t("username"), render: (m) => m.username },
    {
      key: "role", title: t("role"),
      render: (m) => (
        <Select label={`${t("role")} · ${m.username}`} name="role" value={m.role} options={roleOptions}
          onChange={(r) => void setMember(m.accountId, r)} />
      ),
    },
    {
      key: "remove", title: t("actions"),
      render: (m) => (
        <ConfirmButton busy={action.busy} onConfirm={() => void action.run(async () => {
          await mutate(RemoveMember, { input: { tenantId: tenant.id, accountId: m.accountId } });
          onChanged();
        })}>{t("remove")}</ConfirmButton>
      ),
    },
  ];

  return (
    <Modal title={t("membersTitle", { name: tenant.name })} onClose={onClose} wide>
      <DataTable columns={columns} rows={tenant.members} rowKey={(m) => m.accountId} caption={t("members")} />
      <form className="card" aria-label={t("addMember")}
        onSubmit={(e) => { e.preventDefault(); if (accountId) void setMember(accountId, role); }}>
        <div className="form-grid">
          <TextInput label={t("findAccount")} name="accountSearch" type="search" value={find} onChange={setFind} />
          {candidates.length ? (
            <Select label={t("pickAccount")} name="accountId" value={accountId} onChange={setAccountId}
              options={candidates.map((a) => ({ value: a.id, label: a.nickname ? `${a.username} (${a.nickname})` : a.username }))} />
          ) : (
            <p className="muted">{t("noAccount")}</p>
          )}
          <Select label={t("role")} name="role" value={role} options={roleOptions} onChange={setRole} />
        </div>
        <ErrorText error={action.error ?? accounts.error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={action.busy} disabled={!accountId}>{t("addMember")}</Button>
        </div>
      </form>
    </Modal>
  );
}
