// Sign-in: local and LDAP accounts use the same form (the platform tries the directory for LDAP accounts).
import { useState } from "react";
import { defineText, setLang, useLang, useText } from "../i18n";
import { useSession } from "../state/session";
import { Button, ErrorText, TextInput } from "../components/ui";

const text = defineText({
  en: { title: "Sign in", username: "Username", password: "Password", submit: "Sign in",
        hint: "Local or LDAP account.", failed: "Sign-in failed: {reason}" },
  zh: { title: "登录", username: "用户名", password: "密码", submit: "登录",
        hint: "本地账号或 LDAP 账号。", failed: "登录失败：{reason}" },
});

export function Login() {
  const t = useText(text);
  const lang = useLang();
  const { login } = useSession();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <main className="login">
      <form
        className="card"
        aria-labelledby="login-title"
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          login(username, password)
            .then((reason) => reason && setError(t("failed", { reason })))
            .catch((err: unknown) => setError(t("failed", { reason: err instanceof Error ? err.message : String(err) })))
            .finally(() => setBusy(false));
        }}
      >
        <h1 id="login-title">aigc-admin · {t("title")}</h1>
        <TextInput label={t("username")} name="username" value={username} onChange={setUsername} required />
        <TextInput label={t("password")} name="password" type="password" value={password} onChange={setPassword} required />
        <small className="muted">{t("hint")}</small>
        <ErrorText error={error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={busy}>{t("submit")}</Button>
          <Button onClick={() => setLang(lang === "zh" ? "en" : "zh")}>{lang === "zh" ? "English" : "中文"}</Button>
        </div>
      </form>
    </main>
  );
}
