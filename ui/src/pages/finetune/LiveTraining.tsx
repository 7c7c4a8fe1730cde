// A job's live view: the log tail (fineTuneLogs subscription, stored lines first, then live ones) and the loss and
// learning-rate curves (fineTuningMetrics, then the step lines as they arrive). Lines and points are applied at
// most once per animation frame; the log keeps its newest LOG_CAP lines.
import { useMemo, useRef, useState } from "react";
import { LogView, type LogLine } from "../../components/LogView";
import { LineChart } from "../../components/charts";
import { Card, ErrorText } from "../../components/ui";
import { graphql } from "../../gql";
import type { JobStatus } from "../../gql/graphql";
import { FrameBatcher, useLiveList } from "../../hooks/batched";
import { useQuery, useSubscription } from "../../hooks/api";
import { useText } from "../../i18n";
import { formatRate, isFinished } from "./format";
import { LogCursor, chartSeries, mergePoints, type StepPoint } from "./metrics";
import { text } from "./text";

export const LOG_CAP = 20000;

const Metrics = graphql(`
  query FineTuneAreaMetrics($id: ID!) {
    fineTuningMetrics(id: $id) { step epoch loss learningRate }
  }
`);

const Logs = graphql(`
  subscription FineTuneAreaLogs($jobId: ID!, $after: Int!) {
    fineTuneLogs(jobId: $jobId, after: $after) { status lines { seq line } }
  }
`);

/** Where to start the log: the last LOG_CAP lines of what is stored (the charts have every point anyway). */
export function tailStart(logCursor: number): number {
  return Math.max(0, logCursor - LOG_CAP);
}

export function LiveTraining({ jobId, logCursor, onStatus, onEnd }: {
  jobId: string;
  /** The job's logCursor when the view opened (read once). */
  logCursor: number;
  onStatus: (status: JobStatus) => void;
  onEnd: () => void;
}) {
  const t = useText(text);
  const [after] = useState(() => tailStart(logCursor));
  const log = useLiveList<LogLine>(LOG_CAP);
  const metrics = useQuery(Metrics, { id: jobId });
  const [live, setLive] = useState<StepPoint[]>([]);
  const [ended, setEnded] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const cursor = useRef(new LogCursor(after));
  const points = useRef<FrameBatcher<StepPoint> | null>(null);
  if (!points.current) points.current = new FrameBatcher<StepPoint>((batch) => setLive((prev) => prev.concat(batch)));

  const lastStatus = useRef<JobStatus | null>(null);
  useSubscription(Logs, { jobId, after }, (data) => {
    const batch = data.fineTuneLogs;
    const taken = cursor.current.take(batch.lines);
    if (taken.lines.length) log.append(...taken.lines);
    if (taken.points.length) points.current?.push(...taken.points);
    lastStatus.current = batch.status;
    onStatus(batch.status);
  }, {
    onError: setError,
    onComplete: () => {
      // graphql-ws also reports "complete" when we unsubscribe ourselves (unmount, StrictMode's second effect run):
      // the server ends the stream only after a batch with the finished status
      if (!lastStatus.current || !isFinished(lastStatus.current)) return;
      setEnded(true);
      onEnd();
    },
  });

  const stored = useMemo<StepPoint[]>(() => (metrics.data?.fineTuningMetrics ?? []).map((p) => ({
    step: p.step, epoch: p.epoch, loss: p.loss ?? null, learningRate: p.learningRate ?? null,
  })), [metrics.data]);
  const merged = useMemo(() => mergePoints(stored, live), [stored, live]);
  const lossName = t("loss");
  const rateName = t("learningRate");
  const series = useMemo(() => chartSeries(merged, { loss: lossName, learningRate: rateName }), [merged, lossName, rateName]);

  return (
    <>
      <Card title={t("charts")}>
        <ErrorText error={metrics.error} />
        {merged.length === 0 ? <p className="muted">{t("noPoints")}</p> : null}
        <div className="grid-2">
          <LineChart title={t("loss")} series={series.loss} />
          <LineChart title={t("learningRate")} series={series.learningRate} formatY={(y) => formatRate(y)} />
        </div>
      </Card>
      <Card title={t("trainingLog")}>
        <ErrorText error={error} />
        {after + log.dropped > 0 ? (
          <p className="muted">{t("logDropped", { n: LOG_CAP, dropped: after + log.dropped })}</p>
        ) : null}
        <LogView label={t("trainingLog")} lines={log.items} dropped={log.dropped} height={360} />
        {ended ? <p className="muted" role="status">{t("logEnded")}</p> : null}
      </Card>
    </>
  );
}
