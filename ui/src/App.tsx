// The frame: sign-in until there is a session, then the sidebar, the top bar (tenant, language, theme, account)
// and the area for the current path.
import { Suspense, useEffect } from "react";
import { Login } from "./pages/Login";
import { AREAS, allowed, areaFor, type AreaKey } from "./routes";
import { navigate, usePath } from "./router";
import { setLang, useLang, defineText, useText } from "./i18n";
import { setTheme, useTheme } from "./state/theme";
import { useSession } from "./state/session";
import { useQuery } from "./hooks/api";
import { graphql } from "./gql";
import { Button } from "./components/ui";

const text = defineText({
  en: {
    dashboard: "Dashboard", models: "Models", deployments: "Deployments", files: "Files", finetune: "Fine-tuning",
    datasets: "Datasets", evaluations: "Evaluations", assistants: "Assistants", tools: "Tools & MCP",
    channels: "Channels", playground: "Chat playground", audit: "Audit log", tenants: "Tenants", accounts: "Accounts",
    dicts: "Dictionaries", templates: "Templates", system: "System", tenant: "Tenant", noTenant: "All (platform)",
    signOut: "Sign out", dark: "Dark theme", light: "Light theme", notFound: "This page does not exist.",
    forbidden: "You may not open this page.", chooseTenant: "Choose a tenant above to see its {area}.",
    createTenant: "Create a tenant", noMembership: "Your account is not a member of any tenant yet: ask an administrator.",
    loading: "Loading…", skip: "Skip to content", graphiql: "GraphiQL", language: "Language", theme: "Theme", menu: "Main",
  },
  zh: {
    dashboard: "概览", models: "模型", deployments: "部署", files: "文件", finetune: "微调",
    datasets: "数据集", evaluations: "评测", assistants: "助手", tools: "工具与 MCP",
    channels: "渠道", playground: "对话测试", audit: "审计日志", tenants: "租户", accounts: "账号",
    dicts: "字典", templates: "模板", system: "系统", tenant: "租户", noTenant: "全部（平台）",
    signOut: "退出登录", dark: "深色主题", light: "浅色主题", notFound: "页面不存在。",
    forbidden: "无权打开此页面。", chooseTenant: "请先在上方选择租户，以查看其{area}。",
    createTenant: "创建租户", noMembership: "您的账号尚未加入任何租户，请联系管理员。",
    loading: "加载中…", skip: "跳到内容", graphiql: "GraphiQL", language: "语言", theme: "主题", menu: "主导航",
  },
});

const AdminTenants = graphql(`
  query AdminTenants { tenants(pagination: { offset: 0, limit: 100 }) { items { id name code } } }
`);

export function App() {
  const session = useSession();
  const path = usePath();
  if (session.loading && !session.me) return <p className="muted center">…</p>;
  if (!session.me) {
    return <Login />;
  }
  if (path === "/login") {
    navigate("/", true);
  }
  return <Shell path={path} />;
}

function Shell({ path }: { path: string }) {
  const t = useText(text);
  const lang = useLang();
  const theme = useTheme();
  const session = useSession();
  const admins = useQuery(AdminTenants, {}, { skip: !session.me?.account.isPlatformAdmin });
  const { setAdminTenants } = session;
  useEffect(() => {
    if (admins.data) setAdminTenants(admins.data.tenants.items);
  }, [admins.data, setAdminTenants]);

  const area = areaFor(path);
  const Component = area?.component;
  const mayOpen = area ? allowed(area.need, session.role) : false;
  const nav = AREAS.filter((a) => a.nav && allowed(a.need, session.role));
  const main = nav.filter((a) => !a.path.startsWith("/system"));
  const system = nav.filter((a) => a.path.startsWith("/system"));
  const link = (key: AreaKey, to: string) => (
    <a key={key} href={to} aria-current={area?.key === key ? "page" : undefined}
      onClick={(e) => { e.preventDefault(); navigate(to); }}>{t(key)}</a>
  );

  return (
    <div className="shell">
      <a className="skip" href="#main">{t("skip")}</a>
      <nav className="sidebar" aria-label={t("menu")}>
        <div className="brand">aigc-admin</div>
        {main.map((a) => link(a.key, a.path))}
        {system.length ? <div className="nav-group">{t("system")}</div> : null}
        {system.map((a) => link(a.key, a.path))}
      </nav>
      <div className="body">
        <header className="topbar">
          <label className="inline">
            <span>{t("tenant")}</span>
            <select data-testid="tenant-switcher" value={session.tenantId ?? ""}
              onChange={(e) => session.setTenant(e.target.value || null)}>
              {session.isAdmin || session.me?.account.isPlatformAdmin ? <option value="">{t("noTenant")}</option> : null}
              {session.tenants.map((x) => <option key={x.id} value={x.id}>{x.name}</option>)}
            </select>
          </label>
          <span className="spacer" />
          <a href="/graphql" target="_blank" rel="noreferrer">{t("graphiql")}</a>
          <label className="inline">
            <span className="sr-only">{t("language")}</span>
            <select value={lang} onChange={(e) => setLang(e.target.value === "zh" ? "zh" : "en")} aria-label={t("language")}>
              <option value="en">English</option>
              <option value="zh">中文</option>
            </select>
          </label>
          <Button onClick={() => setTheme(theme === "dark" ? "light" : "dark")} title={t("theme")}>
            {theme === "dark" ? t("light") : t("dark")}
          </Button>
          <span className="account" data-testid="account-name">{session.me?.account.nickname || session.me?.account.username}</span>
          <Button onClick={session.logout}>{t("signOut")}</Button>
        </header>
        <main id="main" className="content">
          {session.role === "NONE" ? (
            <p className="notice">{t("noMembership")}</p>
          ) : !Component ? (
            <p className="notice">{t("notFound")}</p>
          ) : !mayOpen ? (
            <p className="notice">{t("forbidden")}</p>
          ) : !session.tenantId && !area?.platform ? (
            <p className="notice" data-testid="choose-tenant">
              {t("chooseTenant", { area: t(area!.key) })}{" "}
              {session.isAdmin ? <a href="/system/tenants" onClick={(e) => { e.preventDefault(); navigate("/system/tenants"); }}>{t("createTenant")}</a> : null}
            </p>
          ) : (
            <Suspense fallback={<p className="muted">{t("loading")}</p>}>
              <Component key={`${area?.key}:${session.tenantId ?? ""}`} path={path} />
            </Suspense>
          )}
        </main>
      </div>
    </div>
  );
}
