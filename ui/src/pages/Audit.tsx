// Audit log: every AuditLogFilter field, server paging, a row's variables on demand, and (platform admins)
// new rows as they are written, prepended and marked new.
import { Fragment, useMemo, useState } from "react";
import {
  Button, Card, Checkbox, ErrorText, Loading, NumberInput, Page, Pager, Select, TextInput, formatNumber, formatTime,
} from "../components/ui";
import { graphql } from "../gql";
import type { AuditLogFilter, AuditPageListQuery } from "../gql/graphql";
import { usePaging, useQuery, useSubscription } from "../hooks/api";
import { useLiveList } from "../hooks/batched";
import { defineText, useText } from "../i18n";
import { useSession } from "../state/session";
import { emptyAuditFilter, matchesAuditFilter, prettyJson, toAuditFilter, type AuditFilterForm } from "./system/audit";

const text = defineText({
  en: {
    title: "Audit log", filters: "Filters", operator: "Operator", tenantId: "Tenant", anyTenant: "Any tenant",
    operation: "Operation", traceId: "Trace ID", success: "Result", any: "Any", succeeded: "Succeeded",
    failed: "Failed", minDurationMs: "Min. duration (ms)", start: "From", end: "Until", search: "Search",
    reset: "Reset", refresh: "Refresh", live: "Show new rows live", time: "Time", duration: "Duration (ms)",
    details: "Details", hide: "Hide", variables: "Variables", error: "Error", remoteAddr: "Remote address",
    newRow: "New", ok: "OK", fail: "FAILED", forbidden: "Only tenant maintainers and platform administrators may read the audit log.",
    liveCount: "{n} new", empty: "No rows.", exact: "Operator, operation and trace ID match exactly.", platform: "platform",
  },
  zh: {
    title: "审计日志", filters: "筛选", operator: "操作人", tenantId: "租户", anyTenant: "任意租户",
    operation: "操作", traceId: "Trace ID", success: "结果", any: "全部", succeeded: "成功",
    failed: "失败", minDurationMs: "最短耗时（毫秒）", start: "起始时间", end: "截止时间", search: "查询",
    reset: "重置", refresh: "刷新", live: "实时显示新记录", time: "时间", duration: "耗时（毫秒）",
    details: "详情", hide: "收起", variables: "变量", error: "错误", remoteAddr: "来源地址",
    newRow: "新", ok: "成功", fail: "失败", forbidden: "只有租户维护者和平台管理员可以查看审计日志。",
    liveCount: "{n} 条新记录", empty: "暂无记录。", exact: "操作人、操作和 Trace ID 需完全匹配。", platform: "平台",
  },
});

const List = graphql(`
  query AuditPageList($filter: AuditLogFilter, $pagination: Pagination) {
    auditLogs(filter: $filter, pagination: $pagination) {
      totalCount
      items { id traceId operator tenantId operation variables durationMs success error remoteAddr createdAt }
    }
  }
`);

const Added = graphql(`
  subscription AuditPageAdded {
    auditLogAdded { id traceId operator tenantId operation variables durationMs success error remoteAddr createdAt }
  }
`);

type Row = AuditPageListQuery["auditLogs"]["items"][number];

export default function Audit(_: { path: string }) {
  const t = useText(text);
  const { me, canManage } = useSession();
  const isPlatformAdmin = Boolean(me?.account.isPlatformAdmin);
  if (!isPlatformAdmin && !canManage) {
    return <Page title={t("title")}><p className="notice">{t("forbidden")}</p></Page>;
  }
  return <AuditLog isPlatformAdmin={isPlatformAdmin} />;
}

function AuditLog({ isPlatformAdmin }: { isPlatformAdmin: boolean }) {
  const t = useText(text);
  const { tenants } = useSession();
  const paging = usePaging(20);
  const [form, setForm] = useState<AuditFilterForm>(emptyAuditFilter);
  const [filter, setFilter] = useState<AuditLogFilter>({});
  const list = useQuery(List, { filter, pagination: paging.pagination });
  const [open, setOpen] = useState<Set<string>>(() => new Set());
  const [live, setLive] = useState(true);
  const added = useLiveList<Row>(200);

  useSubscription(Added, {}, (data) => added.append(data.auditLogAdded), { enabled: isPlatformAdmin && live });

  const tenantName = useMemo(() => new Map(tenants.map((x) => [x.id, x.name])), [tenants]);
  const pageRows = list.data?.auditLogs.items ?? [];
  const newRows = useMemo(() => {
    if (paging.offset !== 0) return [];
    const seen = new Set(pageRows.map((r) => r.id));
    const out: Row[] = [];
    for (let i = added.items.length - 1; i >= 0; i--) {
      const row = added.items[i];
      if (!seen.has(row.id) && matchesAuditFilter(row, filter)) {
        seen.add(row.id);
        out.push(row);
      }
    }
    return out;
  }, [added.items, pageRows, filter, paging.offset]);

  const set = <K extends keyof AuditFilterForm>(key: K, value: AuditFilterForm[K]) => setForm((f) => ({ ...f, [key]: value }));
  const apply = (next: AuditFilterForm) => {
    setFilter(toAuditFilter(next));
    paging.setOffset(0);
    added.reset();
  };
  const toggle = (id: string) => setOpen((s) => {
    const next = new Set(s);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    return next;
  });

  const renderRow = (row: Row, isNew: boolean) => {
    const expanded = open.has(row.id);
    const detailId = `audit-detail-${row.id}`;
    return (
      <Fragment key={row.id}>
        <tr data-new={isNew ? "true" : undefined} data-testid="audit-row">
          <td>
            <Button aria-expanded={expanded} aria-controls={expanded ? detailId : undefined} onClick={() => toggle(row.id)}>
              {expanded ? t("hide") : t("details")}
            </Button>
          </td>
          <td>
            {isNew ? <span className="badge tone-ok">{t("newRow")}</span> : null} {formatTime(row.createdAt)}
          </td>
          <td>{row.operator}</td>
          <td>{row.tenantId ? (tenantName.get(row.tenantId) ?? row.tenantId) : <span className="muted">{t("platform")}</span>}</td>
          <td><code>{row.operation}</code></td>
          <td className="num">{formatNumber(row.durationMs)}</td>
          <td><span className={`badge ${row.success ? "tone-ok" : "tone-bad"}`}>{row.success ? t("ok") : t("fail")}</span></td>
        </tr>
        {expanded ? (
          <tr id={detailId}>
            <td colSpan={7}>
              <dl className="form-grid">
                <div><dt className="muted">{t("traceId")}</dt><dd><code>{row.traceId || "—"}</code></dd></div>
                <div><dt className="muted">{t("remoteAddr")}</dt><dd>{row.remoteAddr || "—"}</dd></div>
                {row.error ? <div><dt className="muted">{t("error")}</dt><dd className="error">{row.error}</dd></div> : null}
              </dl>
              <h3 className="muted">{t("variables")}</h3>
              <pre data-testid="audit-variables">{prettyJson(row.variables)}</pre>
            </td>
          </tr>
        ) : null}
      </Fragment>
    );
  };

  return (
    <Page title={t("title")}
      actions={<Button onClick={() => { added.reset(); void list.reload(); }}>{t("refresh")}</Button>}>
      <Card title={t("filters")}>
        <form onSubmit={(e) => { e.preventDefault(); apply(form); }}>
          <div className="form-grid">
            <TextInput label={t("operator")} name="operator" value={form.operator} onChange={(v) => set("operator", v)} />
            {isPlatformAdmin ? (
              <Select label={t("tenantId")} name="tenantId" value={form.tenantId} onChange={(v) => set("tenantId", v)}
                options={[{ value: "", label: t("anyTenant") }, ...tenants.map((x) => ({ value: x.id, label: x.name }))]} />
            ) : null}
            <TextInput label={t("operation")} name="operation" value={form.operation} onChange={(v) => set("operation", v)} />
            <TextInput label={t("traceId")} name="traceId" value={form.traceId} onChange={(v) => set("traceId", v)} />
            <Select label={t("success")} name="success" value={form.success} onChange={(v) => set("success", v)}
              options={[{ value: "", label: t("any") }, { value: "true", label: t("succeeded") }, { value: "false", label: t("failed") }]} />
            <NumberInput label={t("minDurationMs")} name="minDurationMs" min={0} step={1} value={form.minDurationMs}
              onChange={(v) => set("minDurationMs", v)} />
            <TextInput label={t("start")} name="start" type="datetime-local" value={form.start} onChange={(v) => set("start", v)} />
            <TextInput label={t("end")} name="end" type="datetime-local" value={form.end} onChange={(v) => set("end", v)} />
          </div>
          <small className="muted">{t("exact")}</small>
          <div className="actions">
            <Button kind="primary" type="submit">{t("search")}</Button>
            <Button onClick={() => { const empty = emptyAuditFilter(); setForm(empty); apply(empty); }}>{t("reset")}</Button>
            {isPlatformAdmin ? <Checkbox label={t("live")} name="live" checked={live} onChange={setLive} /> : null}
            {newRows.length ? <span className="badge tone-ok" aria-live="polite">{t("liveCount", { n: newRows.length })}</span> : null}
          </div>
        </form>
      </Card>
      <Card>
        <ErrorText error={list.error} />
        <div className="table-wrap">
          <table>
            <caption className="sr-only">{t("title")}</caption>
            <thead>
              <tr>
                <th scope="col"><span className="sr-only">{t("details")}</span></th>
                <th scope="col">{t("time")}</th>
                <th scope="col">{t("operator")}</th>
                <th scope="col">{t("tenantId")}</th>
                <th scope="col">{t("operation")}</th>
                <th scope="col" className="num">{t("duration")}</th>
                <th scope="col">{t("success")}</th>
              </tr>
            </thead>
            <tbody>
              {newRows.map((row) => renderRow(row, true))}
              {pageRows.map((row) => renderRow(row, false))}
              {!list.loading && pageRows.length === 0 && newRows.length === 0 ? (
                <tr><td colSpan={7} className="muted">{t("empty")}</td></tr>
              ) : null}
            </tbody>
          </table>
          <Loading loading={list.loading} />
        </div>
        <Pager offset={paging.offset} limit={paging.limit} total={list.data?.auditLogs.totalCount ?? 0} onChange={paging.setOffset} />
      </Card>
    </Page>
  );
}
