// Register a model (CreateModelInput) or edit one (UpdateModelInput). Inputs are named after the input fields.
import { useState } from "react";
import { Button, Checkbox, ErrorText, Modal, NumberInput, Select, TextArea, TextInput } from "../../components/ui";
import type { ModelsPageModelFragment } from "../../gql/graphql";
import { mutate, useAction } from "../../hooks/api";
import { useText } from "../../i18n";
import { useSession } from "../../state/session";
import { CreateModel, UpdateModel } from "./documents";
import {
  checkModelForm, emptyModelForm, MODEL_TYPES, modelFormFrom, PROVIDERS, toCreateInput, toUpdateInput, type ModelForm,
} from "./form";
import { text } from "./text";

type Model = ModelsPageModelFragment;

/** Checkboxes named tenantIds (one per tenant), so the form reads like the input it sends. */
function TenantChecks({ label, options, selected, onChange, empty }: {
  label: string; options: { value: string; label: string }[]; selected: string[]; onChange: (v: string[]) => void;
  empty: string;
}) {
  return (
    <fieldset className="field multi">
      <legend>{label}</legend>
      {options.length === 0 ? <span className="muted">{empty}</span> : null}
      {options.map((o) => (
        <label key={o.value} className="chip-check">
          <input type="checkbox" name="tenantIds" value={o.value} checked={selected.includes(o.value)}
            onChange={(e) => onChange(e.target.checked ? [...selected, o.value] : selected.filter((v) => v !== o.value))} />
          {o.label}
        </label>
      ))}
    </fieldset>
  );
}

export function ModelDialog({ model, onClose, onSaved }: {
  /** Null: register a new one. */
  model: Model | null; onClose: () => void; onSaved: (m: Model | null) => void;
}) {
  const t = useText(text);
  const { tenants, tenantId } = useSession();
  const [form, setForm] = useState<ModelForm>(() => (model ? modelFormFrom(model) : emptyModelForm(tenantId)));
  const [shown, setShown] = useState(false);
  const action = useAction();
  const set = <K extends keyof ModelForm>(key: K) => (value: ModelForm[K]) => setForm((f) => ({ ...f, [key]: value }));
  const mode = model ? "edit" : "create";
  const problems = checkModelForm(form, mode);
  const messages = Object.values(problems).map((p) => t(p)).join(" ");
  // Tenants the switcher offers, plus any the model is granted that are not loaded (kept, shown by id).
  const tenantOptions = [
    ...tenants.map((x) => ({ value: x.id, label: x.code ? `${x.name} (${x.code})` : x.name })),
    ...form.tenantIds.filter((id) => !tenants.some((x) => x.id === id)).map((id) => ({ value: id, label: `#${id}` })),
  ];

  return (
    <Modal title={model ? t("editTitle", { name: model.name }) : t("registerTitle")} onClose={onClose} wide>
      <form aria-label={model ? t("editTitle", { name: model.name }) : t("registerTitle")} data-testid="model-form"
        onSubmit={(e) => {
          e.preventDefault();
          setShown(true);
          if (Object.keys(problems).length) return;
          void action.run(async () => {
            if (model) {
              const data = await mutate(UpdateModel, { input: toUpdateInput(model.id, form) });
              onSaved(data.updateModel.model ?? null);
            } else {
              const data = await mutate(CreateModel, { input: toCreateInput(form) });
              onSaved(data.createModel.model ?? null);
            }
          });
        }}>
        <div className="form-grid">
          {model ? (
            <p><strong>{t("name")}</strong>: {model.name} · {t(model.provider)}</p>
          ) : (
            <>
              <TextInput label={t("name")} name="name" value={form.name} onChange={set("name")} required />
              <Select label={t("provider")} name="provider" value={form.provider} onChange={set("provider")}
                options={PROVIDERS.map((p) => ({ value: p, label: t(p) }))} />
            </>
          )}
          <Select label={t("modelType")} name="modelType" value={form.modelType} onChange={set("modelType")}
            options={MODEL_TYPES.map((m) => ({ value: m, label: t(m) }))} />
          <NumberInput label={t("maxTokens")} name="maxTokens" value={form.maxTokens} onChange={set("maxTokens")}
            min={1} step={1} />
          <NumberInput label={t("parameters")} name="parameters" value={form.parameters} onChange={set("parameters")}
            min={0} />
          <TextInput label={t("modelPath")} name="modelPath" value={form.modelPath} onChange={set("modelPath")}
            hint={t("modelPathHint")} />
          <TextInput label={t("conversationTemplate")} name="conversationTemplate" value={form.conversationTemplate}
            onChange={set("conversationTemplate")} hint={t("conversationTemplateHint")} />
          <TextInput label={t("baseUrl")} name="baseUrl" type="url" value={form.baseUrl} onChange={set("baseUrl")}
            hint={t("baseUrlHint")} placeholder="https://" />
          <TextInput label={t("credentials")} name="credentials" type="password" value={form.credentials}
            onChange={set("credentials")}
            hint={model?.hasCredentials ? `${t("credentialsHint")} ${t("credentialsKeep")}` : t("credentialsHint")} />
        </div>
        {model?.hasCredentials ? (
          <Checkbox label={t("clearCredentials")} name="clearCredentials" checked={form.clearCredentials}
            onChange={set("clearCredentials")} />
        ) : null}
        <Checkbox label={t("enabled")} name="enabled" checked={form.enabled} onChange={set("enabled")} />
        <TenantChecks label={t("tenantIds")} options={tenantOptions} selected={form.tenantIds} onChange={set("tenantIds")}
          empty={t("noTenants")} />
        <TextArea label={t("remark")} name="remark" value={form.remark} onChange={set("remark")} rows={2} />
        <ErrorText error={shown && messages ? messages : action.error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={action.busy}>{t("save")}</Button>
          <Button onClick={onClose}>{t("cancel")}</Button>
        </div>
      </form>
    </Modal>
  );
}
