// The app's building blocks: page frame, buttons, fields, tables with server paging, dialogs, badges.
// Pages compose these; they hold no data logic.
import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import { defineText, useText } from "../i18n";

const text = defineText({
  en: {
    loading: "Loading…", empty: "Nothing here yet.", prev: "Previous", next: "Next",
    range: "{from}–{to} of {total}", close: "Close", cancel: "Cancel", confirm: "Confirm",
    copy: "Copy", copied: "Copied", table: "Table", sure: "Are you sure?", keyOnce: "Shown once: copy it now. It cannot be shown again.",
  },
  zh: {
    loading: "加载中…", empty: "暂无数据。", prev: "上一页", next: "下一页",
    range: "第 {from}–{to} 条，共 {total} 条", close: "关闭", cancel: "取消", confirm: "确认",
    copy: "复制", copied: "已复制", table: "表格", sure: "确定吗？", keyOnce: "仅显示一次：请立即复制，之后无法再次查看。",
  },
});

export function Page({ title, actions, children }: { title: string; actions?: ReactNode; children: ReactNode }) {
  useEffect(() => {
    document.title = `${title} · aigc-admin`;
  }, [title]);
  return (
    <section className="page" aria-labelledby="page-title">
      <header className="page-head">
        <h1 id="page-title">{title}</h1>
        {actions ? <div className="actions">{actions}</div> : null}
      </header>
      {children}
    </section>
  );
}

export function Card({ title, children, actions }: { title?: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="card">
      {title || actions ? (
        <header className="card-head">
          {title ? <h2>{title}</h2> : <span />}
          {actions}
        </header>
      ) : null}
      {children}
    </section>
  );
}

type ButtonProps = React.ButtonHTMLAttributes<HTMLButtonElement> & { kind?: "primary" | "danger" | "plain"; busy?: boolean };

export function Button({ kind = "plain", busy, children, className, disabled, ...rest }: ButtonProps) {
  return (
    <button type="button" className={`btn btn-${kind} ${className ?? ""}`} disabled={disabled || busy} aria-busy={busy} {...rest}>
      {children}
    </button>
  );
}

/** A destructive action that asks once more in place. */
export function ConfirmButton({ onConfirm, children, busy, kind = "danger" }: {
  onConfirm: () => void; children: ReactNode; busy?: boolean; kind?: "danger" | "plain" | "primary";
}) {
  const t = useText(text);
  const [asking, setAsking] = useState(false);
  if (!asking) return <Button kind={kind} busy={busy} onClick={() => setAsking(true)}>{children}</Button>;
  return (
    <span className="confirm" role="group" aria-label={t("sure")}>
      <span className="muted">{t("sure")}</span>
      <Button kind="danger" onClick={() => { setAsking(false); onConfirm(); }}>{t("confirm")}</Button>
      <Button onClick={() => setAsking(false)}>{t("cancel")}</Button>
    </span>
  );
}

export function ErrorText({ error }: { error: string | null | undefined }) {
  if (!error) return null;
  return <p className="error" role="alert">{error}</p>;
}

export function Loading({ loading }: { loading: boolean }) {
  const t = useText(text);
  return loading ? <p className="muted" aria-live="polite">{t("loading")}</p> : null;
}

export function Field({ label, hint, children }: { label: string; hint?: string; children: (id: string) => ReactNode }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children(id)}
      {hint ? <small className="muted">{hint}</small> : null}
    </div>
  );
}

export function TextInput({ label, value, onChange, type = "text", hint, required, placeholder, name }: {
  label: string; value: string; onChange: (v: string) => void; type?: string; hint?: string; required?: boolean;
  placeholder?: string; name?: string;
}) {
  return (
    <Field label={label} hint={hint}>
      {(id) => (
        <input id={id} name={name} type={type} value={value} required={required} placeholder={placeholder}
          onChange={(e) => onChange(e.target.value)} />
      )}
    </Field>
  );
}

export function NumberInput({ label, value, onChange, min, max, step, hint, name }: {
  label: string; value: number | null; onChange: (v: number | null) => void; min?: number; max?: number;
  step?: number | "any"; hint?: string; name?: string;
}) {
  return (
    <Field label={label} hint={hint}>
      {(id) => (
        <input id={id} name={name} type="number" value={value ?? ""} min={min} max={max} step={step ?? "any"}
          onChange={(e) => onChange(e.target.value === "" ? null : Number(e.target.value))} />
      )}
    </Field>
  );
}

export function TextArea({ label, value, onChange, rows = 4, hint, name, mono }: {
  label: string; value: string; onChange: (v: string) => void; rows?: number; hint?: string; name?: string; mono?: boolean;
}) {
  return (
    <Field label={label} hint={hint}>
      {(id) => (
        <textarea id={id} name={name} rows={rows} value={value} className={mono ? "mono" : undefined}
          onChange={(e) => onChange(e.target.value)} />
      )}
    </Field>
  );
}

export function Select<T extends string>({ label, value, onChange, options, hint, name }: {
  label: string; value: T; onChange: (v: T) => void; options: readonly { value: T; label: string }[]; hint?: string;
  name?: string;
}) {
  return (
    <Field label={label} hint={hint}>
      {(id) => (
        <select id={id} name={name} value={value} onChange={(e) => onChange(e.target.value as T)}>
          {options.map((o) => <option key={o.value} value={o.value}>{o.label}</option>)}
        </select>
      )}
    </Field>
  );
}

export function Checkbox({ label, checked, onChange, name }: {
  label: string; checked: boolean; onChange: (v: boolean) => void; name?: string;
}) {
  const id = useId();
  return (
    <div className="field checkbox">
      <input id={id} name={name} type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} />
      <label htmlFor={id}>{label}</label>
    </div>
  );
}

/** Several choices as checkboxes (allowed models, tenants, tools); each input carries `name` (the GraphQL field). */
export function MultiSelect({ label, options, selected, onChange, name, hint, empty }: {
  label: string; options: readonly { value: string; label: ReactNode }[]; selected: readonly string[];
  onChange: (v: string[]) => void; name?: string; hint?: string; empty?: string;
}) {
  return (
    <fieldset className="field multi">
      <legend>{label}</legend>
      {options.map((o) => (
        <label key={o.value} className="chip-check">
          <input type="checkbox" name={name} value={o.value} checked={selected.includes(o.value)}
            onChange={(e) => onChange(e.target.checked ? [...selected, o.value] : selected.filter((v) => v !== o.value))} />
          {o.label}
        </label>
      ))}
      {options.length === 0 && empty ? <small className="muted">{empty}</small> : null}
      {hint ? <small className="muted" style={{ flexBasis: "100%" }}>{hint}</small> : null}
    </fieldset>
  );
}

export interface Column<T> {
  key: string;
  title: string;
  render: (row: T) => ReactNode;
  className?: string;
}

export function DataTable<T>({ columns, rows, rowKey, loading, caption }: {
  columns: Column<T>[]; rows: readonly T[] | undefined; rowKey: (row: T) => string; loading?: boolean; caption?: string;
}) {
  const t = useText(text);
  return (
    <div className="table-wrap" tabIndex={0} role="region" aria-label={caption ?? t("table")}>
      <table>
        {caption ? <caption className="sr-only">{caption}</caption> : null}
        <thead>
          <tr>{columns.map((c) => <th key={c.key} scope="col" className={c.className}>{c.title}</th>)}</tr>
        </thead>
        <tbody>
          {(rows ?? []).map((row) => (
            <tr key={rowKey(row)}>
              {columns.map((c) => <td key={c.key} className={c.className}>{c.render(row)}</td>)}
            </tr>
          ))}
          {!loading && (rows ?? []).length === 0 ? (
            <tr><td colSpan={columns.length} className="muted">{t("empty")}</td></tr>
          ) : null}
        </tbody>
      </table>
      <Loading loading={Boolean(loading)} />
    </div>
  );
}

export function Pager({ offset, limit, total, onChange }: {
  offset: number; limit: number; total: number; onChange: (offset: number) => void;
}) {
  const t = useText(text);
  if (total <= limit && offset === 0) return null;
  return (
    <nav className="pager" aria-label="pagination">
      <Button onClick={() => onChange(Math.max(0, offset - limit))} disabled={offset === 0}>{t("prev")}</Button>
      <span className="muted">{t("range", { from: total ? offset + 1 : 0, to: Math.min(offset + limit, total), total })}</span>
      <Button onClick={() => onChange(offset + limit)} disabled={offset + limit >= total}>{t("next")}</Button>
    </nav>
  );
}

export function Modal({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ReactNode; wide?: boolean }) {
  const t = useText(text);
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  return (
    <dialog ref={ref} className={wide ? "modal wide" : "modal"} aria-labelledby="modal-title" onCancel={onClose}>
      <header className="card-head">
        <h2 id="modal-title">{title}</h2>
        <Button onClick={onClose} aria-label={t("close")}>×</Button>
      </header>
      {children}
    </dialog>
  );
}

const STATUS_TONE: Record<string, string> = {
  RUNNING: "ok", SUCCEEDED: "ok", READY: "ok", ENABLED: "ok", PASSED: "ok", HEALTHY: "ok",
  DEGRADED: "bad", STOPPING: "wait", WAITING: "wait",
  PENDING: "wait", QUEUED: "wait", DEPLOYING: "wait", STARTING: "wait", CANCELLING: "wait", SCALING: "wait",
  FAILED: "bad", ERROR: "bad", UNHEALTHY: "bad", STOPPED: "off", CANCELLED: "off", DISABLED: "off",
};

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge tone-${STATUS_TONE[status] ?? "off"}`} data-status={status}>{status}</span>;
}

/** A secret shown once, with copy. */
export function KeyOnce({ value }: { value: string }) {
  const t = useText(text);
  const [copied, setCopied] = useState(false);
  return (
    <div className="key-once" role="status">
      <p>{t("keyOnce")}</p>
      <code data-testid="secret-key">{value}</code>
      <Button onClick={() => void navigator.clipboard?.writeText(value).then(() => setCopied(true), () => setCopied(false))}>
        {copied ? t("copied") : t("copy")}
      </Button>
    </div>
  );
}

export function Tabs<T extends string>({ tabs, value, onChange }: {
  tabs: readonly { value: T; label: string }[]; value: T; onChange: (v: T) => void;
}) {
  return (
    <div className="tabs" role="tablist">
      {tabs.map((tab) => (
        <button key={tab.value} type="button" role="tab" aria-selected={tab.value === value}
          className={tab.value === value ? "tab active" : "tab"} onClick={() => onChange(tab.value)}>
          {tab.label}
        </button>
      ))}
    </div>
  );
}

export function Stat({ label, value, hint }: { label: string; value: ReactNode; hint?: string }) {
  return (
    <div className="stat">
      <div className="stat-value">{value}</div>
      <div className="stat-label">{label}</div>
      {hint ? <small className="muted">{hint}</small> : null}
    </div>
  );
}

export function formatTime(value: string | null | undefined): string {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}

export function formatNumber(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return value.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
