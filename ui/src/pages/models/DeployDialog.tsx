// The deploy form: the runtime options of DeployModelInput for one local model.
import { useState } from "react";
import { Button, Checkbox, ErrorText, Modal, NumberInput, Select, TextInput } from "../../components/ui";
import { mutate, useAction, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { AdapterBases, DeployModel } from "../deployments/documents";
import type { Deployment } from "../deployments/useLiveDeployments";
import {
  checkDeployForm, DTYPES, emptyDeployForm, ENGINES, MAX_GPUS_PER_REPLICA, MAX_REPLICAS, QUANTIZATIONS, toDeployInput,
  type DeployForm, type Quantization,
} from "./form";
import { text } from "./text";

export function DeployDialog({ model, onClose, onDeployed }: {
  model: { id: string; name: string }; onClose: () => void; onDeployed: (d: Deployment) => void;
}) {
  const t = useText(text);
  const [form, setForm] = useState<DeployForm>(emptyDeployForm);
  const [shown, setShown] = useState(false);
  const action = useAction();
  const set = <K extends keyof DeployForm>(key: K) => (value: DeployForm[K]) => setForm((f) => ({ ...f, [key]: value }));
  const bases = useQuery(AdapterBases, {});
  // running vllm deployments with LoRA slots: a LoRA adapter (fine-tune) can be served on one of them
  const adapterBases = (bases.data?.deployments.items ?? []).filter(
    (d) => d.engine === "VLLM" && d.engineOptions.maxLoras > 0 && !d.baseDeploymentId);
  const problems = form.baseDeploymentId ? {} : checkDeployForm(form);
  const messages = [
    problems.replicas ? t(problems.replicas, { max: MAX_REPLICAS }) : null,
    problems.gpusPerReplica ? t(problems.gpusPerReplica, { max: MAX_GPUS_PER_REPLICA }) : null,
    problems.label ? t(problems.label) : null,
  ].filter(Boolean).join(" ");

  return (
    <Modal title={t("deployTitle", { name: model.name })} onClose={onClose}>
      <form aria-label={t("deployForm")} data-testid="deploy-form" onSubmit={(e) => {
        e.preventDefault();
        setShown(true);
        if (Object.keys(problems).length) return;
        void action.run(async () => {
          const data = await mutate(DeployModel, { input: toDeployInput(model.id, form) });
          if (data.deployModel.deployment) onDeployed(data.deployModel.deployment);
        });
      }}>
        <div className="form-grid">
          {adapterBases.length > 0 &&
            <Select label={t("servedOn")} name="baseDeploymentId" value={form.baseDeploymentId ?? ""}
              onChange={set("baseDeploymentId")} hint={t("servedOnHint")}
              options={[{ value: "", label: t("ownReplicas") },
                ...adapterBases.map((d) => ({ value: d.id, label: `${d.modelName} (#${d.id})` }))]} />}
        </div>
        {!form.baseDeploymentId && <div className="form-grid">
          <NumberInput label={t("replicas")} name="replicas" value={form.replicas} onChange={set("replicas")}
            min={1} max={MAX_REPLICAS} step={1} />
          <NumberInput label={t("gpusPerReplica")} name="gpusPerReplica" value={form.gpusPerReplica}
            onChange={set("gpusPerReplica")} min={0} max={MAX_GPUS_PER_REPLICA} step={1} />
          <Select label={t("engine")} name="engine" value={form.engine} onChange={set("engine")}
            options={ENGINES.map((e) => ({ value: e, label: t(e) }))} />
          <Select<Quantization> label={t("quantization")} name="quantization" value={form.quantization}
            onChange={set("quantization")}
            options={QUANTIZATIONS[form.engine].map((q) => ({
              value: q, label: q === "" ? t("noQuantization") : q === "8bit" ? t("q8bit") : q }))} />
          <TextInput label={t("label")} name="label" value={form.label} onChange={set("label")} hint={t("labelHint")} />
          {form.engine === "VLLM" && <>
            <NumberInput label={t("maxModelLen")} name="maxModelLen" value={form.maxModelLen ?? 0}
              onChange={set("maxModelLen")} min={0} step={1} hint={t("zeroDefault")} />
            <NumberInput label={t("tensorParallelSize")} name="tensorParallelSize" value={form.tensorParallelSize ?? 0}
              onChange={set("tensorParallelSize")} min={0} max={MAX_GPUS_PER_REPLICA} step={1} hint={t("zeroDefault")} />
            <NumberInput label={t("gpuMemoryUtilization")} name="gpuMemoryUtilization"
              value={form.gpuMemoryUtilization ?? 0} onChange={set("gpuMemoryUtilization")} min={0} max={1} step={0.05}
              hint={t("zeroDefault")} />
            <Select label={t("dtype")} name="dtype" value={form.dtype ?? ""} onChange={set("dtype")}
              options={DTYPES.map((d) => ({ value: d, label: d || t("zeroDefault") }))} />
            <NumberInput label={t("maxLoras")} name="maxLoras" value={form.maxLoras ?? 0} onChange={set("maxLoras")}
              min={0} max={64} step={1} hint={t("maxLorasHint")} />
            <Checkbox label={t("enforceEager")} name="enforceEager" checked={form.enforceEager ?? false}
              onChange={set("enforceEager")} />
            <NumberInput label={t("nodes")} name="nodes" value={form.nodes ?? 0} onChange={set("nodes")}
              min={0} max={16} step={1} hint={t("nodesHint")} />
          </>}
        </div>}
        <ErrorText error={shown && messages ? messages : action.error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={action.busy}>{t("deploy")}</Button>
          <Button onClick={onClose}>{t("cancel")}</Button>
        </div>
      </form>
    </Modal>
  );
}
