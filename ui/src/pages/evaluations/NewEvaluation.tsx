// "New evaluation": every field of CreateEvaluationInput. The samples are an evaluation file, or the held-out
// part of a fine-tune file (filled in from a fine-tuning job when one is chosen); judge settings show when a
// judged metric is chosen, deployment settings for a local model.
import { useEffect, useState } from "react";
import { graphql } from "../../gql";
import { mutate, useAction, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { Button, Checkbox, ErrorText, Loading, Modal, NumberInput, Select, TextArea, TextInput } from "../../components/ui";
import type { CreateEvaluationInput, EvaluationMetric } from "../../gql/graphql";
import { CheckGroup, Group, RadioGroup, STACK } from "../assistants/fields";
import { channelLabel } from "../assistants/options";
import { METRICS } from "./logic";
import { text } from "./text";

const Options = graphql(`
  query EvaluationsPageOptions {
    models(pagination: { offset: 0, limit: 100 }) { items { id name provider enabled isFineTuned } }
    channels(pagination: { offset: 0, limit: 100 }) { items { id name alias enabled modelIds } }
    evalFiles: files(purpose: FINE_TUNE_EVAL, pagination: { offset: 0, limit: 100 }) { items { id name lineCount } }
    trainFiles: files(purpose: FINE_TUNE, pagination: { offset: 0, limit: 100 }) { items { id name lineCount } }
    fineTuningJobs(pagination: { offset: 0, limit: 50 }) {
      items { id jobId fileId holdoutPercent holdoutSeed fineTunedModel baseModel status channelId }
    }
  }
`);

const Create = graphql(`
  mutation EvaluationsPageCreate($input: CreateEvaluationInput!) {
    createEvaluation(input: $input) { evaluation { id status total } errors { field code message } }
  }
`);

type Source = "eval" | "holdout";

interface Form {
  modelId: string; channelId: string; fileId: string; metrics: EvaluationMetric[]; holdoutPercent: number | null;
  holdoutSeed: number | null; temperature: number | null; maxTokens: number | null; concurrency: number | null;
  timeoutSeconds: number | null; retries: number | null; judgeModelId: string; rubric: string;
  judgeMaxTokens: number | null; baselineModelId: string; deployForRun: boolean; deployGpus: number | null;
  repeatHours: number | null; remark: string;
}

const DEFAULTS: Form = {
  modelId: "", channelId: "", fileId: "", metrics: ["EXACT_MATCH"], holdoutPercent: 10, holdoutSeed: 0, temperature: 0,
  maxTokens: 256, concurrency: 4, timeoutSeconds: 120, retries: 2, judgeModelId: "", rubric: "", judgeMaxTokens: 512,
  baselineModelId: "", deployForRun: false, deployGpus: 0, repeatHours: 0, remark: "",
};

export function NewEvaluation({ initialModelId, initialJobId, onClose, onCreated }: {
  initialModelId: string | null; initialJobId: string | null; onClose: () => void; onCreated: (id: string) => void;
}) {
  const t = useText(text);
  const options = useQuery(Options, {});
  const action = useAction();
  const [form, setForm] = useState<Form>({ ...DEFAULTS, modelId: initialModelId ?? "" });
  const [source, setSource] = useState<Source>("eval");
  const [jobId, setJobId] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const set = <K extends keyof Form>(key: K) => (value: Form[K]) => setForm((f) => ({ ...f, [key]: value }));

  const models = options.data?.models.items ?? [];
  const channels = options.data?.channels.items ?? [];
  const jobs = (options.data?.fineTuningJobs.items ?? []).filter((j) => j.holdoutPercent > 0);
  const model = models.find((m) => m.id === form.modelId);
  const usable = form.modelId ? channels.filter((c) => c.modelIds.includes(form.modelId)) : channels;
  const channelChoices = usable.length ? usable : channels;
  const files = source === "eval" ? options.data?.evalFiles.items ?? [] : options.data?.trainFiles.items ?? [];
  const judged = form.metrics.includes("JUDGE") || form.metrics.includes("PAIRWISE");
  const pairwise = form.metrics.includes("PAIRWISE");

  const chooseJob = (id: string) => {
    setJobId(id);
    const job = jobs.find((j) => j.id === id);
    if (!job) return;
    const tuned = models.find((m) => m.name === job.fineTunedModel);
    setForm((f) => ({
      ...f, fileId: job.fileId, holdoutPercent: job.holdoutPercent, holdoutSeed: job.holdoutSeed,
      modelId: tuned?.id ?? f.modelId, channelId: job.channelId ?? f.channelId,
    }));
  };

  // ?fineTuningJobId= opens the form on that job's held-out split
  useEffect(() => {
    if (initialJobId && options.data && !jobId && jobs.some((j) => j.id === initialJobId)) {
      setSource("holdout");
      chooseJob(initialJobId);
    }
  }, [initialJobId, options.data]); // eslint-disable-line react-hooks/exhaustive-deps

  const submit = () => {
    if (!form.modelId || !form.channelId || !form.fileId) return setProblem(t("needRequired"));
    if (form.metrics.length === 0) return setProblem(t("needMetric"));
    if (judged && !form.judgeModelId) return setProblem(t("needJudge"));
    if (pairwise && !form.baselineModelId) return setProblem(t("needBaseline"));
    const percent = form.holdoutPercent ?? 0;
    if (source === "holdout" && !(percent > 0 && percent < 100)) return setProblem(t("needHoldout"));
    setProblem(null);
    const local = model?.provider === "LOCAL";
    const input: CreateEvaluationInput = {
      modelId: form.modelId, channelId: form.channelId, fileId: form.fileId, metrics: form.metrics,
      holdoutPercent: source === "holdout" ? percent : 0, holdoutSeed: source === "holdout" ? form.holdoutSeed ?? 0 : 0,
      temperature: form.temperature ?? 0, maxTokens: form.maxTokens ?? 256, concurrency: form.concurrency ?? 4,
      timeoutSeconds: form.timeoutSeconds ?? 120, retries: form.retries ?? 2,
      judge: judged ? { modelId: form.judgeModelId, rubric: form.rubric, maxTokens: form.judgeMaxTokens ?? 512 } : null,
      baselineModelId: pairwise ? form.baselineModelId : null,
      deployForRun: local && form.deployForRun, deployGpus: local && form.deployForRun ? form.deployGpus ?? 0 : 0,
      repeatHours: form.repeatHours ?? 0, remark: form.remark,
    };
    void action.run(async () => {
      const data = await mutate(Create, { input });
      const created = data.createEvaluation.evaluation;
      if (created) onCreated(created.id);
    });
  };

  const modelOptions = [{ value: "", label: t("choose") }, ...models.map((m) => ({ value: m.id, label: `${m.name} (${m.provider})` }))];

  return (
    <Modal title={t("createTitle")} onClose={onClose} wide>
      <form style={STACK} aria-label={t("createTitle")} onSubmit={(e) => { e.preventDefault(); submit(); }}>
        <ErrorText error={options.error} />
        <Loading loading={options.loading && !options.data} />
        <div className="form-grid">
          <Select label={t("modelId")} name="modelId" value={form.modelId} onChange={set("modelId")} options={modelOptions} />
          <Select label={t("channelId")} name="channelId" value={form.channelId} onChange={set("channelId")} hint={t("channelHint")}
            options={[{ value: "", label: t("choose") }, ...channelChoices.map((c) => ({ value: c.id, label: channelLabel(c) }))]} />
        </div>
        <RadioGroup<Source> label={t("source")} name="source" value={source}
          onChange={(v) => { setSource(v); setJobId(""); set("fileId")(""); }}
          options={[{ value: "eval", label: t("sourceEval") }, { value: "holdout", label: t("sourceHoldout") }]} />
        <div className="form-grid">
          {source === "holdout" && jobs.length ? (
            <Select label={t("fromJob")} name="fineTuningJobId" value={jobId} onChange={chooseJob} hint={t("fromJobHint")}
              options={[{ value: "", label: t("choose") }, ...jobs.map((j) => ({
                value: j.id, label: `#${j.id} ${j.fineTunedModel ?? j.baseModel} (${j.status}, ${j.holdoutPercent} %)`,
              }))]} />
          ) : null}
          <Select label={t("fileId")} name="fileId" value={form.fileId} onChange={set("fileId")}
            options={[{ value: "", label: t("choose") }, ...files.map((f) => ({ value: f.id, label: `${f.name} · ${t("lines", { n: f.lineCount })}` })),
              ...(form.fileId && !files.some((f) => f.id === form.fileId) ? [{ value: form.fileId, label: form.fileId }] : [])]} />
          {source === "holdout" ? (
            <>
              <NumberInput label={t("holdoutPercent")} name="holdoutPercent" value={form.holdoutPercent} onChange={set("holdoutPercent")}
                min={0.01} max={99.99} hint={t("holdoutPercentHint")} />
              <NumberInput label={t("holdoutSeed")} name="holdoutSeed" value={form.holdoutSeed} onChange={set("holdoutSeed")} step={1} />
            </>
          ) : null}
        </div>
        <CheckGroup label={t("metricsLabel")} name="metrics" selected={form.metrics} hint={t("metricsHint")}
          onChange={(v) => set("metrics")(v as EvaluationMetric[])} options={METRICS.map((m) => ({ value: m, label: m }))} />
        <Group label={t("generation")}>
          <div className="form-grid">
            <NumberInput label={t("temperature")} name="temperature" value={form.temperature} onChange={set("temperature")} min={0} max={2} step={0.1} />
            <NumberInput label={t("maxTokens")} name="maxTokens" value={form.maxTokens} onChange={set("maxTokens")} min={1} max={32768} step={1} />
            <NumberInput label={t("concurrency")} name="concurrency" value={form.concurrency} onChange={set("concurrency")} min={1} max={64} step={1} />
            <NumberInput label={t("timeoutSeconds")} name="timeoutSeconds" value={form.timeoutSeconds} onChange={set("timeoutSeconds")} min={1} max={3600} />
            <NumberInput label={t("retries")} name="retries" value={form.retries} onChange={set("retries")} min={0} max={10} step={1} hint={t("retriesHint")} />
          </div>
        </Group>
        {judged ? (
          <Group label={t("judge")}>
            <div className="form-grid">
              <Select label={t("judgeModel")} name="judge.modelId" value={form.judgeModelId} onChange={set("judgeModelId")}
                options={modelOptions} hint={t("judgeModelHint")} />
              <NumberInput label={t("judgeMaxTokens")} name="judge.maxTokens" value={form.judgeMaxTokens} onChange={set("judgeMaxTokens")} min={1} step={1} />
              {pairwise ? (
                <Select label={t("baselineModelId")} name="baselineModelId" value={form.baselineModelId} onChange={set("baselineModelId")}
                  options={modelOptions} />
              ) : null}
            </div>
            <TextArea label={t("rubric")} name="judge.rubric" value={form.rubric} onChange={set("rubric")} rows={4} hint={t("rubricHint")} />
          </Group>
        ) : null}
        <div className="form-grid">
          {model?.provider === "LOCAL" ? (
            <>
              <Checkbox label={t("deployForRun")} name="deployForRun" checked={form.deployForRun} onChange={set("deployForRun")} />
              {form.deployForRun ? (
                <NumberInput label={t("deployGpus")} name="deployGpus" value={form.deployGpus} onChange={set("deployGpus")} min={0} step={1} />
              ) : null}
            </>
          ) : null}
          <NumberInput label={t("repeatHours")} name="repeatHours" value={form.repeatHours} onChange={set("repeatHours")} min={0} step={1}
            hint={t("repeatHoursHint")} />
          <TextInput label={t("remark")} name="remark" value={form.remark} onChange={set("remark")} />
        </div>
        <ErrorText error={problem ?? action.error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={action.busy}>{t("create")}</Button>
          <Button onClick={onClose}>{t("close")}</Button>
        </div>
      </form>
    </Modal>
  );
}
