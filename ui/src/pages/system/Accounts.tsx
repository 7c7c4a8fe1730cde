// Accounts (platform admins): list, search, create local accounts, edit (nickname, e-mail, enabled, platform
// admin, a new password for local accounts), delete. LDAP accounts keep their password in the directory.
import { useEffect, useState } from "react";
import {
  Button, Card, Checkbox, ConfirmButton, DataTable, ErrorText, Modal, Page, Pager, StatusBadge, TextInput, formatTime,
  type Column,
} from "../../components/ui";
import { graphql } from "../../gql";
import type { AccountsPageListQuery, UpdateAccountInput } from "../../gql/graphql";
import { mutate, useAction, usePaging, useQuery } from "../../hooks/api";
import { defineText, useText } from "../../i18n";
import { useSession } from "../../state/session";
import { useDebounced } from "./useDebounced";

const MIN_PASSWORD = 8;

const text = defineText({
  en: {
    title: "Accounts", search: "Search", searchHint: "Username, nickname or e-mail.", create: "Create account",
    createTitle: "Create local account", submitCreate: "Create", edit: "Edit", editTitle: "Edit account {name}",
    save: "Save", cancel: "Cancel", del: "Delete", username: "Username", password: "Password",
    newPassword: "New password", newPasswordHint: "Leave empty to keep the current one.",
    passwordHint: "At least {n} characters.", email: "E-mail", nickname: "Nickname", source: "Source",
    isPlatformAdmin: "Platform administrator", enabled: "Enabled", lastLogin: "Last sign-in", createdAt: "Created",
    actions: "Actions", yes: "yes", no: "no", you: "(you)", short: "The password needs at least {n} characters.",
    ldapPassword: "An LDAP account's password is kept in the directory.",
  },
  zh: {
    title: "账号", search: "搜索", searchHint: "用户名、昵称或邮箱。", create: "创建账号",
    createTitle: "创建本地账号", submitCreate: "创建", edit: "编辑", editTitle: "编辑账号 {name}",
    save: "保存", cancel: "取消", del: "删除", username: "用户名", password: "密码",
    newPassword: "新密码", newPasswordHint: "留空则保持不变。",
    passwordHint: "至少 {n} 个字符。", email: "邮箱", nickname: "昵称", source: "来源",
    isPlatformAdmin: "平台管理员", enabled: "启用", lastLogin: "最近登录", createdAt: "创建时间",
    actions: "操作", yes: "是", no: "否", you: "（您）", short: "密码至少需要 {n} 个字符。",
    ldapPassword: "LDAP 账号的密码保存在目录服务中。",
  },
});

const List = graphql(`
  query AccountsPageList($pagination: Pagination, $search: String) {
    accounts(pagination: $pagination, search: $search) {
      totalCount
      items { id username email nickname source isPlatformAdmin enabled createdAt lastLoginAt }
    }
  }
`);

const Create = graphql(`
  mutation AccountsPageCreate($input: CreateAccountInput!) {
    createAccount(input: $input) { account { id } errors { code message field } }
  }
`);

const Update = graphql(`
  mutation AccountsPageUpdate($input: UpdateAccountInput!) {
    updateAccount(input: $input) { account { id } errors { code message field } }
  }
`);

const Delete = graphql(`
  mutation AccountsPageDelete($id: ID!) {
    deleteAccount(id: $id) { ok errors { code message field } }
  }
`);

type Account = AccountsPageListQuery["accounts"]["items"][number];

export default function Accounts(_: { path: string }) {
  const t = useText(text);
  const { me } = useSession();
  const [search, setSearch] = useState("");
  const query = useDebounced(search.trim());
  const paging = usePaging(20);
  const { setOffset } = paging;
  useEffect(() => setOffset(0), [query, setOffset]);
  const list = useQuery(List, { pagination: paging.pagination, search: query || null });
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<Account | null>(null);
  const action = useAction();
  const remove = useAction();
  const selfId = me?.account.id;

  const columns: Column<Account>[] = [
    { key: "username", title: t("username"), render: (a) => <>{a.username} {a.id === selfId ? <span className="muted">{t("you")}</span> : null}</> },
    { key: "nickname", title: t("nickname"), render: (a) => a.nickname || "—" },
    { key: "email", title: t("email"), render: (a) => a.email || "—" },
    { key: "source", title: t("source"), render: (a) => <span className="badge tone-off" data-source={a.source}>{a.source}</span> },
    { key: "admin", title: t("isPlatformAdmin"), render: (a) => (a.isPlatformAdmin ? t("yes") : t("no")) },
    { key: "enabled", title: t("enabled"), render: (a) => <StatusBadge status={a.enabled ? "ENABLED" : "DISABLED"} /> },
    { key: "login", title: t("lastLogin"), render: (a) => formatTime(a.lastLoginAt) },
    { key: "created", title: t("createdAt"), render: (a) => formatTime(a.createdAt) },
    {
      key: "actions", title: t("actions"),
      render: (a) => (
        <div className="actions">
          <Button onClick={() => { action.clear(); setEditing(a); }}>{t("edit")}</Button>
          {a.id !== selfId ? (
            <ConfirmButton busy={remove.busy} onConfirm={() => void remove.run(async () => {
              await mutate(Delete, { id: a.id });
              await list.reload();
            })}>{t("del")}</ConfirmButton>
          ) : null}
        </div>
      ),
    },
  ];

  return (
    <Page title={t("title")}
      actions={<Button kind="primary" onClick={() => { action.clear(); setCreating(true); }}>{t("create")}</Button>}>
      <Card>
        <div className="form-grid">
          <TextInput label={t("search")} name="search" type="search" value={search} onChange={setSearch} hint={t("searchHint")} />
        </div>
        <ErrorText error={list.error ?? remove.error} />
        <DataTable columns={columns} rows={list.data?.accounts.items} rowKey={(a) => a.id} loading={list.loading} caption={t("title")} />
        <Pager offset={paging.offset} limit={paging.limit} total={list.data?.accounts.totalCount ?? 0} onChange={paging.setOffset} />
      </Card>
      {creating ? (
        <CreateAccount busy={action.busy} error={action.error} onClose={() => setCreating(false)}
          onSubmit={(input) => void action.run(async () => {
            await mutate(Create, { input });
            setCreating(false);
            await list.reload();
          })} />
      ) : null}
      {editing ? (
        <EditAccount account={editing} busy={action.busy} error={action.error} onClose={() => setEditing(null)}
          onSubmit={(input) => void action.run(async () => {
            await mutate(Update, { input });
            setEditing(null);
            await list.reload();
          })} />
      ) : null}
    </Page>
  );
}

function CreateAccount({ busy, error, onClose, onSubmit }: {
  busy: boolean; error: string | null; onClose: () => void;
  onSubmit: (input: { username: string; password: string; email: string; nickname: string; isPlatformAdmin: boolean }) => void;
}) {
  const t = useText(text);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [email, setEmail] = useState("");
  const [nickname, setNickname] = useState("");
  const [isPlatformAdmin, setIsPlatformAdmin] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  return (
    <Modal title={t("createTitle")} onClose={onClose}>
      <form onSubmit={(e) => {
        e.preventDefault();
        if (password.length < MIN_PASSWORD) {
          setProblem(t("short", { n: MIN_PASSWORD }));
          return;
        }
        setProblem(null);
        onSubmit({ username: username.trim(), password, email: email.trim(), nickname: nickname.trim(), isPlatformAdmin });
      }}>
        <div className="form-grid">
          <TextInput label={t("username")} name="username" value={username} onChange={setUsername} required />
          <TextInput label={t("password")} name="password" type="password" value={password} onChange={setPassword}
            hint={t("passwordHint", { n: MIN_PASSWORD })} required />
          <TextInput label={t("email")} name="email" type="email" value={email} onChange={setEmail} />
          <TextInput label={t("nickname")} name="nickname" value={nickname} onChange={setNickname} />
        </div>
        <Checkbox label={t("isPlatformAdmin")} name="isPlatformAdmin" checked={isPlatformAdmin} onChange={setIsPlatformAdmin} />
        <ErrorText error={problem ?? error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={busy}>{t("submitCreate")}</Button>
          <Button onClick={onClose}>{t("cancel")}</Button>
        </div>
      </form>
    </Modal>
  );
}

function EditAccount({ account, busy, error, onClose, onSubmit }: {
  account: Account; busy: boolean; error: string | null; onClose: () => void; onSubmit: (input: UpdateAccountInput) => void;
}) {
  const t = useText(text);
  const [email, setEmail] = useState(account.email);
  const [nickname, setNickname] = useState(account.nickname);
  const [enabled, setEnabled] = useState(account.enabled);
  const [isPlatformAdmin, setIsPlatformAdmin] = useState(account.isPlatformAdmin);
  const [password, setPassword] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const local = account.source === "LOCAL";
  return (
    <Modal title={t("editTitle", { name: account.username })} onClose={onClose}>
      <form onSubmit={(e) => {
        e.preventDefault();
        if (password && password.length < MIN_PASSWORD) {
          setProblem(t("short", { n: MIN_PASSWORD }));
          return;
        }
        setProblem(null);
        const input: UpdateAccountInput = { id: account.id, email: email.trim(), nickname: nickname.trim(), enabled, isPlatformAdmin };
        if (local && password) input.password = password;
        onSubmit(input);
      }}>
        <div className="form-grid">
          <TextInput label={t("nickname")} name="nickname" value={nickname} onChange={setNickname} />
          <TextInput label={t("email")} name="email" type="email" value={email} onChange={setEmail} />
          {local ? (
            <TextInput label={t("newPassword")} name="password" type="password" value={password} onChange={setPassword}
              hint={t("newPasswordHint")} />
          ) : (
            <p className="muted">{t("ldapPassword")}</p>
          )}
        </div>
        <Checkbox label={t("enabled")} name="enabled" checked={enabled} onChange={setEnabled} />
        <Checkbox label={t("isPlatformAdmin")} name="isPlatformAdmin" checked={isPlatformAdmin} onChange={setIsPlatformAdmin} />
        <ErrorText error={problem ?? error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={busy}>{t("save")}</Button>
          <Button onClick={onClose}>{t("cancel")}</Button>
        </div>
      </form>
    </Modal>
  );
}
