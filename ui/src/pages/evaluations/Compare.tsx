// Compare (/evaluations/compare?ids=41,42): each metric's means per evaluation with 95 % intervals (e.g. the base
// model against the fine-tuned one), the paired differences to the first with their intervals, and the samples
// they scored differently, paged on the server.
import { useState } from "react";
import { graphql } from "../../gql";
import { usePaging, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { navigate, useQueryParam } from "../../router";
import { BarChart } from "../../components/charts";
import { Button, Card, DataTable, ErrorText, Loading, Page, Pager, Select, StatusBadge, type Column } from "../../components/ui";
import type { EvaluationsPageCompareQuery } from "../../gql/graphql";
import { DeltaChart } from "./DeltaChart";
import { DiffView } from "./DiffView";
import { comparisonBars, deltaRows, evaluationLabel, parseIds, question, signed, type DeltaRow } from "./logic";
import { WIDE } from "./DiffView";
import { text } from "./text";

const CompareQuery = graphql(`
  query EvaluationsPageCompare($ids: [ID!]!, $pagination: Pagination) {
    compareEvaluations(ids: $ids, pagination: $pagination) {
      evaluations { id modelName gateRole status metrics total done failed fileId holdoutPercent createdAt }
      metrics {
        metric
        estimates { metric mean low high n }
        deltas { evaluationId mean low high n significant }
      }
      disagreementsTotal
      disagreements {
        idx messages reference
        answers { evaluationId status output scores { metric value } error }
      }
    }
  }
`);

type Comparison = EvaluationsPageCompareQuery["compareEvaluations"];
type Against = "reference" | "first";

export function Compare() {
  const t = useText(text);
  const ids = parseIds(useQueryParam("ids"));
  const paging = usePaging(10);
  const [against, setAgainst] = useState<Against>("reference");
  const enough = ids.length >= 2 && ids.length <= 10;
  const result = useQuery(CompareQuery, { ids, pagination: paging.pagination }, { skip: !enough });
  const back = <Button onClick={() => navigate("/evaluations")}>{t("back")}</Button>;
  const data = result.data?.compareEvaluations;

  if (!enough) {
    return <Page title={t("compareTitle")} actions={back}><p className="notice">{t("compareNeedIds")}</p></Page>;
  }
  return (
    <Page title={t("compareTitle")} actions={back}>
      <Loading loading={result.loading && !data} />
      <ErrorText error={result.error} />
      {data ? <ComparisonView data={data} against={against} setAgainst={setAgainst} paging={paging} /> : null}
    </Page>
  );
}

function ComparisonView({ data, against, setAgainst, paging }: {
  data: Comparison; against: Against; setAgainst: (v: Against) => void; paging: ReturnType<typeof usePaging>;
}) {
  const t = useText(text);
  const first = data.evaluations[0];
  const evColumns: Column<Comparison["evaluations"][number]>[] = [
    { key: "id", title: t("id"), render: (e) => (
      <a href={`/evaluations/${e.id}`} onClick={(ev) => { ev.preventDefault(); navigate(`/evaluations/${e.id}`); }}>#{e.id}</a>
    ) },
    { key: "model", title: t("model"), render: (e) => <span className="mono">{e.modelName}</span> },
    { key: "role", title: t("gateRole"), render: (e) => e.gateRole || "—" },
    { key: "status", title: t("status"), render: (e) => <StatusBadge status={e.status} /> },
    { key: "progress", title: t("progress"), render: (e) => `${e.done} / ${e.total}${e.failed ? ` · ${t("failedCount", { n: e.failed })}` : ""}` },
  ];
  const deltas = deltaRows(data.evaluations, data.metrics);
  const deltaColumns: Column<DeltaRow>[] = [
    { key: "label", title: t("metric"), render: (r) => r.label },
    { key: "mean", title: t("difference"), className: "num", render: (r) => signed(r.mean) },
    { key: "interval", title: t("interval"), className: "num", render: (r) => `${signed(r.low)} – ${signed(r.high)}` },
    { key: "sig", title: t("significance"), render: (r) => (
      <span className={`badge tone-${r.significant ? (r.mean >= 0 ? "ok" : "bad") : "off"}`}>
        {r.significant ? t("significant") : t("notSignificant")}
      </span>
    ) },
  ];

  return (
    <>
      <Card title={t("compared")}>
        <DataTable caption={t("compared")} columns={evColumns} rows={data.evaluations} rowKey={(e) => e.id} />
      </Card>
      <Card title={t("meansChart")}>
        <BarChart title={t("meansChart")} max={1} bars={comparisonBars(data.evaluations, data.metrics)} />
      </Card>
      {first && deltas.length ? (
        <Card title={t("deltas", { id: first.id })}>
          <p className="muted">{t("deltasHint")}</p>
          <DeltaChart title={t("deltaChart")} rows={deltas} />
          <DataTable caption={t("deltasCaption")} columns={deltaColumns} rows={deltas} rowKey={(r) => r.label} />
        </Card>
      ) : null}
      <Card title={t("disagreements", { n: data.disagreementsTotal })}>
        {data.disagreementsTotal ? (
          <>
            <Select<Against> label={t("vsFirst")} name="against" value={against} onChange={setAgainst}
              options={[{ value: "reference", label: t("vsReference") }, { value: "first", label: t("vsFirstAnswer") }]} />
            <p className="muted">{t("diffLegend")}</p>
          </>
        ) : null}
        <ol aria-label={t("disagreements", { n: data.disagreementsTotal })}
          style={{ listStyle: "none", padding: 0, display: "flex", flexDirection: "column", gap: ".7rem" }}>
          {data.disagreements.map((d) => {
            const base = d.answers[0]?.output ?? "";
            return (
              <li key={d.idx} className="card" data-testid="disagreement">
                <h3>#{d.idx}</h3>
                <div><strong>{t("question")}</strong><div className="msg user" style={WIDE}>{question(d.messages)}</div></div>
                <div><strong>{t("reference")}</strong><pre>{d.reference}</pre></div>
                {d.answers.map((a, i) => {
                  const ev = data.evaluations.find((e) => e.id === a.evaluationId) ?? data.evaluations[i];
                  const name = ev ? evaluationLabel(ev) : `#${a.evaluationId}`;
                  const expected = against === "first" && i > 0 ? base : d.reference;
                  return (
                    <div key={a.evaluationId}>
                      <strong>{name}</strong>{" "}
                      {a.scores.map((s) => <span key={s.metric} className="badge tone-off">{s.metric} {s.value.toFixed(3)}</span>)}
                      {a.error ? <p className="error">{a.error}</p> : null}
                      {a.output !== null && a.output !== undefined ? (
                        against === "first" && i === 0 ? <pre>{a.output}</pre>
                          : <DiffView expected={expected} actual={a.output} label={`#${d.idx} ${name}`} />
                      ) : <p className="muted">{t("noAnswer")}</p>}
                    </div>
                  );
                })}
              </li>
            );
          })}
        </ol>
        <Pager offset={paging.offset} limit={paging.limit} total={data.disagreementsTotal} onChange={paging.setOffset} />
      </Card>
    </>
  );
}
