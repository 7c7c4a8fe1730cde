// Every field of ChannelInput / UpdateChannelInput; inputs are named after the GraphQL fields.
import { useState } from "react";
import { Button, Checkbox, ErrorText, MultiSelect, NumberInput, TextArea, TextInput } from "../../components/ui";
import { useText } from "../../i18n";
import { channelFormProblem, type ChannelForm } from "./form";
import { text } from "./text";

export function ChannelFormView({ initial, submitLabel, busy, error, models, onSubmit, onCancel }: {
  initial: ChannelForm;
  submitLabel: string;
  busy: boolean;
  error: string | null;
  models: readonly { value: string; label: string }[];
  onSubmit: (form: ChannelForm) => void;
  onCancel: () => void;
}) {
  const t = useText(text);
  const [form, setForm] = useState<ChannelForm>(initial);
  const [problem, setProblem] = useState<string | null>(null);
  const set = <K extends keyof ChannelForm>(key: K, value: ChannelForm[K]) => setForm((f) => ({ ...f, [key]: value }));
  // options for models the channel has but the tenant no longer lists stay visible, so they can be removed
  const options = [
    ...models,
    ...form.modelIds.filter((id) => !models.some((m) => m.value === id)).map((id) => ({ value: id, label: `#${id}` })),
  ];
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        const bad = channelFormProblem(form);
        if (bad) {
          setProblem(t("problem", { field: t(bad === "modelIds" ? "models" : bad) }));
          return;
        }
        setProblem(null);
        onSubmit(form);
      }}
    >
      <div className="form-grid">
        <TextInput label={t("alias")} name="alias" value={form.alias} onChange={(v) => set("alias", v)} hint={t("aliasHint")} />
        <TextInput label={t("email")} name="email" type="email" value={form.email} onChange={(v) => set("email", v)} />
        <NumberInput label={t("quota")} name="quota" min={0} step={1} value={form.unlimitedQuota ? null : form.quota}
          onChange={(v) => setForm((f) => ({ ...f, quota: v, unlimitedQuota: v === null }))} />
        <Checkbox label={t("unlimitedQuota")} name="unlimitedQuota" checked={form.unlimitedQuota}
          onChange={(v) => setForm((f) => ({ ...f, unlimitedQuota: v, quota: v ? null : f.quota }))} />
        <NumberInput label={t("rpmLimit")} name="rpmLimit" min={1} step={1} value={form.unlimitedRpm ? null : form.rpmLimit}
          onChange={(v) => setForm((f) => ({ ...f, rpmLimit: v, unlimitedRpm: v === null }))} />
        <Checkbox label={t("unlimitedRpm")} name="unlimitedRpm" checked={form.unlimitedRpm}
          onChange={(v) => setForm((f) => ({ ...f, unlimitedRpm: v, rpmLimit: v ? null : f.rpmLimit }))} />
        <NumberInput label={t("tpmLimit")} name="tpmLimit" min={1} step={1} value={form.unlimitedTpm ? null : form.tpmLimit}
          onChange={(v) => setForm((f) => ({ ...f, tpmLimit: v, unlimitedTpm: v === null }))} />
        <Checkbox label={t("unlimitedTpm")} name="unlimitedTpm" checked={form.unlimitedTpm}
          onChange={(v) => setForm((f) => ({ ...f, unlimitedTpm: v, tpmLimit: v ? null : f.tpmLimit }))} />
        <TextInput label={t("expiresAt")} name="expiresAt" type="datetime-local" value={form.neverExpires ? "" : form.expiresAt}
          onChange={(v) => setForm((f) => ({ ...f, expiresAt: v, neverExpires: v === "" }))} />
        <Checkbox label={t("neverExpires")} name="neverExpires" checked={form.neverExpires}
          onChange={(v) => setForm((f) => ({ ...f, neverExpires: v, expiresAt: v ? "" : f.expiresAt }))} />
        <Checkbox label={t("enabled")} name="enabled" checked={form.enabled} onChange={(v) => set("enabled", v)} />
      </div>
      {options.length ? (
        <MultiSelect label={t("models")} options={options} selected={form.modelIds} onChange={(v) => set("modelIds", v)} />
      ) : (
        <p className="muted">{t("noModels")}</p>
      )}
      <TextArea label={t("remark")} name="remark" rows={2} value={form.remark} onChange={(v) => set("remark", v)} />
      <ErrorText error={problem ?? error} />
      <div className="actions">
        <Button kind="primary" type="submit" busy={busy}>{submitLabel}</Button>
        <Button onClick={onCancel}>{t("cancel")}</Button>
      </div>
    </form>
  );
}
