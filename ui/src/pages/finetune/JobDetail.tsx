// One fine-tuning job: status and progress, every parameter, cancel / retry / delete, the evaluation gate and its
// evaluations, the resulting model, and the live log and training curves.
import { useCallback, useEffect, useRef, useState } from "react";
import {
  Card, ConfirmButton, ErrorText, Loading, Page, Stat, StatusBadge, formatNumber, formatTime,
} from "../../components/ui";
import { graphql } from "../../gql";
import type { FineTuneAreaJobQuery, JobStatus } from "../../gql/graphql";
import { mutate, useAction, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { navigate } from "../../router";
import { useSession } from "../../state/session";
import { formatDuration, formatPercent, formatRate, isActive } from "./format";
import { Facts } from "./Facts";
import { Link } from "../../components/Link";
import { LiveTraining } from "./LiveTraining";
import { POLL_MS } from "./JobList";
import { text } from "./text";

const Job = graphql(`
  query FineTuneAreaJob($id: ID!) {
    fineTuningJob(id: $id) {
      id jobId baseModel fileId status suffix channelId autoDeploy fineTunedModel progress progressEpochs
      progressLoss progressLearningRate errorMessage logCursor estimatedSecondsLeft createdAt startTrainTime
      finishedAt holdoutPercent holdoutSeed
      params {
        epochs trainBatchSize evalBatchSize accumulationSteps learningRate weightDecay warmupRatio modelMaxLength
        evalSteps saveSteps saveTotalLimit loggingSteps lora procPerNode
      }
      gate {
        metric threshold minImprovement fileId judgeModelId maxTokens concurrency status reason
        evaluations { id status gateRole modelName progress results { metric mean low high n } }
      }
    }
  }
`);

const Cancel = graphql(`
  mutation FineTuneAreaCancel($id: ID!) { cancelFineTuningJob(id: $id) { job { id status } errors { code message field } } }
`);
const Retry = graphql(`
  mutation FineTuneAreaRetry($id: ID!) { retryFineTuningJob(id: $id) { job { id status } errors { code message field } } }
`);
const Delete = graphql(`
  mutation FineTuneAreaDelete($id: ID!) { deleteFineTuningJob(id: $id) { errors { code message field } } }
`);

type JobData = NonNullable<FineTuneAreaJobQuery["fineTuningJob"]>;

export function JobDetail({ id }: { id: string }) {
  const t = useText(text);
  const { canManage } = useSession();
  const job = useQuery(Job, { id });
  const action = useAction();
  const [run, setRun] = useState(0); // a retry starts a new log: the live view starts over
  const data = job.data?.fineTuningJob ?? null;
  const status = data?.status;
  const { reload } = job;

  // progress and ETA move while the job runs
  useEffect(() => {
    if (!status || !isActive(status)) return;
    const timer = setInterval(() => void reload(), POLL_MS);
    return () => clearInterval(timer);
  }, [status, reload]);

  // a status change seen on the log stream (WAITING → RUNNING, …) reloads the job at once
  const known = useRef<JobStatus | undefined>(undefined);
  known.current = status;
  const onStatus = useCallback((s: JobStatus) => {
    if (known.current && s !== known.current) {
      known.current = s;
      void reload();
    }
  }, [reload]);
  const onEnd = useCallback(() => void reload(), [reload]);

  if (!data) {
    return (
      <Page title={t("title")} actions={<Link to="/finetune">{t("back")}</Link>}>
        <ErrorText error={job.error} />
        <Loading loading={job.loading} />
        {!job.loading && !job.error ? <p className="notice">{t("notFound")}</p> : null}
      </Page>
    );
  }

  const act = (fn: () => Promise<unknown>) => void action.run(async () => {
    await fn();
    await reload();
  });
  const finished = !isActive(data.status);

  return (
    <Page title={t("jobTitle", { id: data.jobId })} actions={
      <>
        <StatusBadge status={data.status} />
        {canManage && isActive(data.status) ? (
          <ConfirmButton busy={action.busy} onConfirm={() => act(() => mutate(Cancel, { id }))}>{t("cancel")}</ConfirmButton>
        ) : null}
        {canManage && (data.status === "FAILED" || data.status === "CANCELLED") ? (
          <ConfirmButton kind="primary" busy={action.busy} onConfirm={() => act(async () => {
            await mutate(Retry, { id });
            setRun((r) => r + 1);
          })}>{t("retry")}</ConfirmButton>
        ) : null}
        {canManage && finished ? (
          <ConfirmButton busy={action.busy} onConfirm={() => void action.run(async () => {
            await mutate(Delete, { id });
            navigate("/finetune");
          })}>{t("delete")}</ConfirmButton>
        ) : null}
        <Link to="/finetune">{t("back")}</Link>
      </>
    }>
      <ErrorText error={action.error ?? job.error} />
      <div className="stats">
        <Stat label={t("progress")} value={formatPercent(data.progress)} />
        <Stat label={t("epoch")} value={`${formatNumber(data.progressEpochs, 2)} / ${data.params.epochs}`} />
        <Stat label={t("loss")} value={data.progress > 0 ? formatRate(data.progressLoss) : "—"} />
        <Stat label={t("learningRate")} value={data.progress > 0 ? formatRate(data.progressLearningRate) : "—"} />
        <Stat label={t("timeLeft")} value={formatDuration(data.estimatedSecondsLeft)} />
      </div>
      {data.errorMessage ? <p className="error" role="alert"><strong>{t("error")}:</strong> {data.errorMessage}</p> : null}

      <LiveTraining key={`${data.id}:${run}`} jobId={data.id} logCursor={run > 0 ? 0 : data.logCursor}
        onStatus={onStatus} onEnd={onEnd} />

      <div className="grid-2">
        <Card title={t("job")}>
          <Facts rows={[
            [t("job"), <code key="j">{data.jobId}</code>],
            [t("baseModel"), data.baseModel],
            [t("file"), <code key="f">{data.fileId}</code>],
            [t("suffix"), data.suffix || "—"],
            [t("channel"), data.channelId ?? t("none")],
            [t("autoDeploy"), data.autoDeploy ? t("yes") : t("no")],
            [t("holdout"), data.holdoutPercent > 0 ? `${data.holdoutPercent} % · ${t("seed", { seed: data.holdoutSeed })}` : t("none")],
            [t("created"), formatTime(data.createdAt)],
            [t("started"), formatTime(data.startTrainTime)],
            [t("finished"), formatTime(data.finishedAt)],
          ]} />
        </Card>
        <Card title={t("parameters")}>
          <Params params={data.params} />
        </Card>
      </div>

      <Card title={t("result")}>
        {data.fineTunedModel ? (
          <p data-testid="fine-tuned-model"><strong>{t("fineTunedModel")}:</strong> <code>{data.fineTunedModel}</code>{" "}
            <Link to="/models">{t("openModels")}</Link></p>
        ) : <p className="muted">{t("noModel")}</p>}
      </Card>

      <Gate gate={data.gate} />
    </Page>
  );
}

function Params({ params }: { params: JobData["params"] }) {
  const t = useText(text);
  return (
    <Facts rows={[
      [t("lora"), params.lora ? t("yes") : t("no")],
      [t("epochs"), params.epochs],
      [t("learningRate"), formatRate(params.learningRate)],
      [t("trainBatchSize"), params.trainBatchSize],
      [t("evalBatchSize"), params.evalBatchSize],
      [t("accumulationSteps"), params.accumulationSteps],
      [t("weightDecay"), params.weightDecay],
      [t("warmupRatio"), params.warmupRatio],
      [t("modelMaxLength"), params.modelMaxLength],
      [t("loggingSteps"), params.loggingSteps],
      [t("evalSteps"), params.evalSteps],
      [t("saveSteps"), params.saveSteps],
      [t("saveTotalLimit"), params.saveTotalLimit],
      [t("procPerNode"), params.procPerNode],
    ]} />
  );
}

function Gate({ gate }: { gate: JobData["gate"] }) {
  const t = useText(text);
  if (!gate) {
    return <Card title={t("gate")}><p className="muted">{t("gateNone")}</p></Card>;
  }
  return (
    <Card title={t("gate")} actions={gate.status ? <StatusBadge status={gate.status} /> : undefined}>
      <Facts rows={[
        [t("metric"), gate.metric],
        [t("threshold"), gate.threshold ?? "—"],
        [t("minImprovement"), gate.minImprovement ?? "—"],
        [t("gateFileId"), gate.fileId ? <code key="f">{gate.fileId}</code> : t("gateFileDefault")],
        [t("judgeModelId"), gate.judgeModelId ?? t("none")],
        [t("maxTokens"), gate.maxTokens],
        [t("concurrency"), gate.concurrency],
        [t("gateStatus"), gate.status || t("gatePending")],
        [t("gateReason"), gate.reason || "—"],
      ]} />
      {gate.evaluations.length ? (
        <div className="table-wrap">
          <table>
            <caption className="sr-only">{t("gateEvaluations")}</caption>
            <thead>
              <tr>
                <th scope="col">{t("evaluation")}</th><th scope="col">{t("role")}</th><th scope="col">{t("model")}</th>
                <th scope="col">{t("status")}</th><th scope="col">{t("mean")}</th>
              </tr>
            </thead>
            <tbody>
              {gate.evaluations.map((ev) => (
                <tr key={ev.id} data-evaluation={ev.id}>
                  <td><Link to={`/evaluations/${ev.id}`}>#{ev.id}</Link></td>
                  <td>{ev.gateRole || "—"}</td>
                  <td>{ev.modelName}</td>
                  <td><StatusBadge status={ev.status} /></td>
                  <td>{ev.results.length ? ev.results.map((r) => (
                    <div key={r.metric}>{r.metric}: {formatNumber(r.mean, 3)} ({formatNumber(r.low, 3)}–{formatNumber(r.high, 3)}, n={r.n})</div>
                  )) : formatPercent(ev.progress)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </Card>
  );
}
