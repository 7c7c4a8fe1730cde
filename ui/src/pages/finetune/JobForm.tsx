// A new fine-tuning job: every field of CreateFineTuneJobInput, named as in GraphQL (name="learningRate",
// name="gate.threshold"), checked here first (the platform checks again); on success, the job's page.
import { useState, type FormEvent } from "react";
import {
  Button, Card, Checkbox, ErrorText, NumberInput, Page, Select, TextInput,
} from "../../components/ui";
import { graphql } from "../../gql";
import type { EvaluationMetric } from "../../gql/graphql";
import { mutate, useAction, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { navigate } from "../../router";
import { useSession } from "../../state/session";
import { UploadForm } from "../files/UploadForm";
import {
  GATE_RANGES, METRICS, RANGES, buildInput, defaultForm, validate, type GateForm, type GateNumberField, type JobForm as Form,
  type NumberField, type Problem,
} from "./form";
import { Link } from "../../components/Link";
import { text } from "./text";

const Options = graphql(`
  query FineTuneAreaFormOptions {
    models(filter: { provider: LOCAL }, pagination: { offset: 0, limit: 100 }) {
      items { id name modelType modelPath enabled isFineTuned }
    }
    judges: models(pagination: { offset: 0, limit: 100 }) { items { id name provider } }
    trainFiles: files(purpose: FINE_TUNE, pagination: { offset: 0, limit: 100 }) {
      items { id name lineCount tokenCount createdAt }
    }
    evalFiles: files(purpose: FINE_TUNE_EVAL, pagination: { offset: 0, limit: 100 }) { items { id name lineCount } }
    channels(pagination: { offset: 0, limit: 100 }) { items { id name } }
  }
`);

const Create = graphql(`
  mutation FineTuneAreaCreate($input: CreateFineTuneJobInput!) {
    createFineTuningJob(input: $input) { job { id jobId status } errors { code message field } }
  }
`);

type TextKey = keyof typeof text.en;

const HYPER: readonly NumberField[] = [
  "epochs", "learningRate", "trainBatchSize", "evalBatchSize", "accumulationSteps", "weightDecay", "warmupRatio",
  "modelMaxLength", "loggingSteps", "evalSteps", "saveSteps", "saveTotalLimit", "procPerNode",
];

const FIELD_LABEL: Record<string, TextKey> = {
  baseModelId: "baseModelId", fileId: "fileId", suffix: "suffix", channelId: "channelId",
  ...Object.fromEntries(Object.keys(RANGES).map((k) => [k, k])),
  "gate.threshold": "threshold", "gate.minImprovement": "minImprovement", "gate.maxTokens": "maxTokens",
  "gate.concurrency": "concurrency", "gate.fileId": "gateFileId", "gate.judgeModelId": "judgeModelId",
} as Record<string, TextKey>;

export function JobForm() {
  const t = useText(text);
  const { canManage } = useSession();
  const options = useQuery(Options, {});
  const [form, setForm] = useState<Form>(defaultForm);
  const [problems, setProblems] = useState<Problem[]>([]);
  const action = useAction();

  if (!canManage) {
    return (
      <Page title={t("formTitle")} actions={<Link to="/finetune">{t("back")}</Link>}>
        <p className="notice">{t("forbidden")}</p>
      </Page>
    );
  }

  const set = (patch: Partial<Form>) => setForm((f) => ({ ...f, ...patch }));
  const setNumber = (name: NumberField, value: number | null) => setForm((f) => ({ ...f, numbers: { ...f.numbers, [name]: value } }));
  const setGate = (patch: Partial<GateForm>) => setForm((f) => ({ ...f, gate: { ...f.gate, ...patch } }));

  const label = (field: string) => t(FIELD_LABEL[field] ?? "job");
  const message = (p: Problem): string => {
    switch (p.code) {
      case "required": return t("required", { field: label(p.field) });
      case "range": return t("range", { field: label(p.field), min: p.min, max: p.max });
      case "integer": return t("integer", { field: label(p.field) });
      case "suffix": return t("suffixBad");
      default: return t(p.code);
    }
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const found = validate(form);
    setProblems(found);
    if (found.length) return;
    void action.run(async () => {
      const data = await mutate(Create, { input: buildInput(form) });
      const job = data.createFineTuningJob.job;
      if (job) navigate(`/finetune/${job.id}`);
    });
  };

  const data = options.data;
  const models = data?.models.items ?? [];
  const trainFiles = data?.trainFiles.items ?? [];
  const numberInput = (name: NumberField, hint?: string) => {
    const r = RANGES[name];
    return (
      <NumberInput key={name} label={t(name as TextKey)} name={name} value={form.numbers[name]}
        onChange={(v) => setNumber(name, v)} min={r.min} max={r.belowMax ? undefined : r.max}
        step={r.integer ? 1 : "any"} hint={hint} />
    );
  };
  const gateNumber = (name: GateNumberField, hint?: string) => {
    const r = GATE_RANGES[name];
    return (
      <NumberInput key={name} label={t(name)} name={`gate.${name}`} value={form.gate[name]}
        onChange={(v) => setGate({ [name]: v })} min={r.min} max={r.max} step={r.integer ? 1 : "any"} hint={hint} />
    );
  };

  return (
    <Page title={t("formTitle")} actions={<Link to="/finetune">{t("back")}</Link>}>
      <ErrorText error={options.error} />
      <Card title={t("uploadTrain")}>
        <small className="muted">{t("uploadHint")}</small>
        <UploadForm purposes={["FINE_TUNE"]} onUploaded={async (file) => {
          await options.reload();
          set({ fileId: file.id });
        }} />
      </Card>
      <form className="page" onSubmit={submit} noValidate aria-label={t("formTitle")}>
        <Card title={t("basics")}>
          <div className="form-grid">
            <Select label={t("baseModelId")} name="baseModelId" value={form.baseModelId}
              onChange={(v) => set({ baseModelId: v })} hint={data && models.length === 0 ? t("noModels") : undefined}
              options={[{ value: "", label: t("choose") }, ...models.map((m) => ({
                value: m.id, label: m.isFineTuned ? `${m.name} (ft)` : m.name,
              }))]} />
            <Select label={t("fileId")} name="fileId" value={form.fileId} onChange={(v) => set({ fileId: v })}
              hint={data && trainFiles.length === 0 ? t("noFiles") : undefined}
              options={[{ value: "", label: t("choose") }, ...trainFiles.map((f) => ({
                value: f.id, label: `${f.name} · ${f.lineCount} · ${f.id}`,
              }))]} />
            <TextInput label={t("suffix")} name="suffix" value={form.suffix} onChange={(v) => set({ suffix: v })}
              hint={t("suffixHint")} />
            <Select label={t("channelId")} name="channelId" value={form.channelId} onChange={(v) => set({ channelId: v })}
              options={[{ value: "", label: t("none") }, ...(data?.channels.items ?? []).map((c) => ({ value: c.id, label: c.name }))]} />
          </div>
          <div className="actions">
            <Checkbox label={t("lora")} name="lora" checked={form.lora} onChange={(v) => set({ lora: v })} />
            <Checkbox label={t("autoDeployLabel")} name="autoDeploy" checked={form.autoDeploy}
              onChange={(v) => set({ autoDeploy: v })} />
          </div>
        </Card>
        <Card title={t("hyper")}>
          <div className="form-grid">{HYPER.map((name) => numberInput(name))}</div>
        </Card>
        <Card title={t("holdoutSection")}>
          <small className="muted">{t("holdoutHint")}</small>
          <div className="form-grid">
            {numberInput("holdoutPercent")}
            {numberInput("holdoutSeed")}
          </div>
        </Card>
        <Card title={t("gateSection")}>
          <Checkbox label={t("gateOn")} name="gate" checked={form.gateOn} onChange={(v) => set({ gateOn: v })} />
          {form.gateOn ? (
            <div className="form-grid">
              <Select<EvaluationMetric> label={t("metric")} name="gate.metric" value={form.gate.metric}
                onChange={(v) => setGate({ metric: v })} options={METRICS.map((m) => ({ value: m, label: m }))} />
              {gateNumber("threshold", t("optional"))}
              {gateNumber("minImprovement", t("optional"))}
              <Select label={t("gateFileId")} name="gate.fileId" value={form.gate.fileId}
                onChange={(v) => setGate({ fileId: v })}
                options={[{ value: "", label: t("gateFileDefault") }, ...(data?.evalFiles.items ?? []).map((f) => ({
                  value: f.id, label: `${f.name} · ${f.lineCount} · ${f.id}`,
                }))]} />
              <Select label={t("judgeModelId")} name="gate.judgeModelId" value={form.gate.judgeModelId}
                onChange={(v) => setGate({ judgeModelId: v })}
                options={[{ value: "", label: t("none") }, ...(data?.judges.items ?? []).map((m) => ({ value: m.id, label: m.name }))]} />
              {gateNumber("maxTokens")}
              {gateNumber("concurrency")}
            </div>
          ) : null}
        </Card>
        {problems.length ? (
          <div role="alert" data-testid="form-problems">
            <ul className="error">
              {problems.map((p) => <li key={`${p.field}:${p.code}`} data-field={p.field}>{message(p)}</li>)}
            </ul>
          </div>
        ) : null}
        <ErrorText error={action.error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={action.busy}>{t("submit")}</Button>
          <Button onClick={() => navigate("/finetune")}>{t("back")}</Button>
        </div>
      </form>
    </Page>
  );
}
