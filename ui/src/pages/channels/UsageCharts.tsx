// channelUsage over a range of UTC days: totals, and requests and tokens per day as one line per model.
import { useMemo, useState } from "react";
import { LineChart } from "../../components/charts";
import { Card, ErrorText, Loading, Stat, TextInput, formatNumber } from "../../components/ui";
import { graphql } from "../../gql";
import { useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { text } from "./text";
import { utcDay } from "./time";
import { dayLabel, usageSeries, usageTotals } from "./usage";

const Usage = graphql(`
  query ChannelsPageUsage($channelId: ID, $start: Date, $end: Date) {
    channelUsage(channelId: $channelId, start: $start, end: $end) {
      channelId model day requests promptTokens completionTokens
    }
  }
`);

const formatDay = (x: number) => dayLabel(x);
const formatCount = (y: number) => formatNumber(y);

export function UsageCharts({ channelId, title }: { channelId: string | null; title: string }) {
  const t = useText(text);
  const [start, setStart] = useState(() => utcDay(new Date(), -29));
  const [end, setEnd] = useState(() => utcDay(new Date()));
  const usage = useQuery(Usage, { channelId, start: start || null, end: end || null });
  const rows = useMemo(() => usage.data?.channelUsage ?? [], [usage.data]);
  const requests = useMemo(() => usageSeries(rows, "requests", { start, end }), [rows, start, end]);
  const tokens = useMemo(() => usageSeries(rows, "tokens", { start, end }), [rows, start, end]);
  const totals = usageTotals(rows);
  return (
    <Card title={title}>
      <div className="form-grid">
        <TextInput label={t("start")} name="start" type="date" value={start} onChange={setStart} />
        <TextInput label={t("end")} name="end" type="date" value={end} onChange={setEnd} />
      </div>
      <ErrorText error={usage.error} />
      <Loading loading={usage.loading && !usage.data} />
      <div className="stats">
        <Stat label={t("requests")} value={formatNumber(totals.requests)} />
        <Stat label={t("promptTokens")} value={formatNumber(totals.promptTokens)} />
        <Stat label={t("completionTokens")} value={formatNumber(totals.completionTokens)} />
      </div>
      {usage.data && rows.length === 0 ? <p className="muted">{t("noUsage")}</p> : null}
      {rows.length ? (
        <div className="grid" data-testid="channel-usage">
          <LineChart title={t("requestsChart")} series={requests} formatX={formatDay} formatY={formatCount} />
          <LineChart title={t("tokensChart")} series={tokens} formatX={formatDay} formatY={formatCount} />
        </div>
      ) : null}
    </Card>
  );
}
