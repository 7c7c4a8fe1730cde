// Create or edit an assistant: every field of AssistantInput.
import { useState } from "react";
import { graphql } from "../../gql";
import { mutate, useAction } from "../../hooks/api";
import { useText } from "../../i18n";
import { Button, Checkbox, ErrorText, Field, Loading, Modal, NumberInput, Select, TextArea, TextInput } from "../../components/ui";
import type { AgentMode, AssistantInput, AssistantsPageDetailQuery } from "../../gql/graphql";
import { CheckGroup, STACK } from "./fields";
import { channelLabel, useAssistantOptions } from "./options";
import { text } from "./text";

export type AssistantFull = NonNullable<AssistantsPageDetailQuery["assistant"]>;

const Create = graphql(`
  mutation AssistantsPageCreate($input: AssistantInput!) {
    createAssistant(input: $input) { assistant { id } errors { field code message } }
  }
`);

const Update = graphql(`
  mutation AssistantsPageUpdate($id: ID!, $input: AssistantInput!) {
    updateAssistant(id: $id, input: $input) { assistant { id } errors { field code message } }
  }
`);

const MODES: readonly AgentMode[] = ["AUTO", "NATIVE", "REACT"];

/** AssistantInput with every field present, metadata as JSON text. */
interface Form {
  name: string; modelName: string; instructions: string; description: string; avatar: string; remark: string;
  metadata: string; maxSteps: number; maxTokens: number; timeoutSeconds: number; mode: AgentMode; enabled: boolean;
  toolIds: string[]; mcpServerIds: string[]; channelIds: string[];
}

function formOf(a: AssistantFull | null): Form {
  if (!a) {
    return {
      name: "", modelName: "", instructions: "", description: "", avatar: "", remark: "", metadata: "{}", maxSteps: 5,
      maxTokens: 4096, timeoutSeconds: 120, mode: "AUTO", enabled: true, toolIds: [], mcpServerIds: [], channelIds: [],
    };
  }
  return {
    name: a.name, modelName: a.modelName, instructions: a.instructions, description: a.description, avatar: a.avatar,
    remark: a.remark, metadata: JSON.stringify(a.metadata ?? {}, null, 2), maxSteps: a.maxSteps, maxTokens: a.maxTokens,
    timeoutSeconds: a.timeoutSeconds, mode: a.mode, enabled: a.enabled, toolIds: a.toolIds, mcpServerIds: a.mcpServerIds,
    channelIds: a.channelIds,
  };
}

export function AssistantForm({ assistant, onClose, onSaved }: {
  assistant: AssistantFull | null; onClose: () => void; onSaved: (id: string) => void;
}) {
  const t = useText(text);
  const options = useAssistantOptions();
  const action = useAction();
  const [form, setForm] = useState<Form>(() => formOf(assistant));
  const [problem, setProblem] = useState<string | null>(null);
  const set = <K extends keyof Form>(key: K) => (value: Form[K]) => setForm((f) => ({ ...f, [key]: value }));
  const published = (assistant?.publishedVersion ?? 0) > 0;
  const title = assistant ? t("editTitle", { name: assistant.name }) : t("createTitle");

  const models = options.data?.models.items ?? [];
  const modelOptions = [{ value: "", label: t("choose") }, ...models.map((m) => ({ value: m.name, label: `${m.name} (${m.provider})` }))];
  if (form.modelName && !models.some((m) => m.name === form.modelName)) modelOptions.push({ value: form.modelName, label: form.modelName });

  const save = () => {
    if (!form.name.trim() || !form.modelName) {
      setProblem(t("nameRequired"));
      return;
    }
    let metadata: unknown = null;
    if (form.metadata.trim()) {
      try {
        metadata = JSON.parse(form.metadata);
      } catch {
        metadata = undefined;
      }
      if (!metadata || typeof metadata !== "object" || Array.isArray(metadata)) {
        setProblem(t("metadataInvalid"));
        return;
      }
    }
    setProblem(null);
    const input: AssistantInput = { ...form, name: form.name.trim(), metadata };
    void action.run(async () => {
      if (assistant) {
        await mutate(Update, { id: assistant.id, input });
        onSaved(assistant.id);
      } else {
        const data = await mutate(Create, { input });
        if (data.createAssistant.assistant) onSaved(data.createAssistant.assistant.id);
      }
    });
  };

  return (
    <Modal title={title} onClose={onClose} wide>
      <form style={STACK} aria-label={title} onSubmit={(e) => { e.preventDefault(); save(); }}>
        <ErrorText error={options.error} />
        <Loading loading={options.loading && !options.data} />
        <div className="form-grid">
          {published ? (
            <Field label={t("name")} hint={t("namePublished")}>
              {(id) => <input id={id} name="name" value={form.name} readOnly />}
            </Field>
          ) : (
            <TextInput label={t("name")} name="name" value={form.name} onChange={set("name")} required hint={t("nameHint")} />
          )}
          <Select label={t("modelName")} name="modelName" value={form.modelName} onChange={set("modelName")} options={modelOptions}
            hint={t("modelHint")} />
          <Select<AgentMode> label={t("mode")} name="mode" value={form.mode} onChange={set("mode")}
            options={MODES.map((m) => ({ value: m, label: t(`mode${m}`) }))} />
          <Checkbox label={t("enabled")} name="enabled" checked={form.enabled} onChange={set("enabled")} />
        </div>
        <TextArea label={t("instructions")} name="instructions" value={form.instructions} onChange={set("instructions")} rows={6} />
        <div className="form-grid">
          <TextInput label={t("description")} name="description" value={form.description} onChange={set("description")} />
          <TextInput label={t("avatar")} name="avatar" value={form.avatar} onChange={set("avatar")} />
          <TextInput label={t("remark")} name="remark" value={form.remark} onChange={set("remark")} />
        </div>
        <div className="form-grid">
          <NumberInput label={t("maxSteps")} name="maxSteps" value={form.maxSteps} onChange={(v) => set("maxSteps")(v ?? 5)}
            min={1} max={20} step={1} hint={t("maxStepsHint")} />
          <NumberInput label={t("maxTokens")} name="maxTokens" value={form.maxTokens} onChange={(v) => set("maxTokens")(v ?? 4096)}
            min={1} step={1} hint={t("maxTokensHint")} />
          <NumberInput label={t("timeoutSeconds")} name="timeoutSeconds" value={form.timeoutSeconds}
            onChange={(v) => set("timeoutSeconds")(v ?? 120)} min={1} />
        </div>
        <CheckGroup label={t("toolIds")} name="toolIds" selected={form.toolIds} onChange={set("toolIds")} empty={options.data ? t("noTools") : undefined}
          options={(options.data?.tools.items ?? []).map((x) => ({ value: x.id, label: x.name }))} />
        <CheckGroup label={t("mcpServerIds")} name="mcpServerIds" selected={form.mcpServerIds} onChange={set("mcpServerIds")}
          empty={options.data ? t("noServers") : undefined}
          options={(options.data?.mcpServers.items ?? []).map((x) => ({ value: x.id, label: `${x.name} (${t("serverTools", { n: x.tools.length })})` }))} />
        <CheckGroup label={t("channelIds")} name="channelIds" selected={form.channelIds} onChange={set("channelIds")}
          empty={options.data ? t("noChannels") : undefined} hint={t("channelIdsHint")}
          options={(options.data?.channels.items ?? []).map((c) => ({ value: c.id, label: channelLabel(c) }))} />
        <TextArea label={t("metadata")} name="metadata" value={form.metadata} onChange={set("metadata")} rows={3} mono />
        <ErrorText error={problem ?? action.error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={action.busy}>{assistant ? t("save") : t("create")}</Button>
          <Button onClick={onClose}>{t("cancel")}</Button>
        </div>
      </form>
    </Modal>
  );
}
