// Create or edit a tool: the fields of ToolInput, the HTTP ones only for the HTTP function type (the one served).
import { useState } from "react";
import { graphql } from "../../gql";
import { mutate, useAction } from "../../hooks/api";
import { useText } from "../../i18n";
import { Button, Checkbox, ErrorText, Modal, NumberInput, Select, TextArea, TextInput } from "../../components/ui";
import { RadioGroup, STACK } from "../assistants/fields";
import { text } from "./text";
import {
  bodyRelevant, EMPTY_TOOL, formOfTool, METHODS, SERVED_TOOL_TYPES, TOOL_TYPES, toolInput, urlPlaceholders,
  type FormProblem, type SecretMode, type ToolForm,
} from "./toolForm";
import type { ToolsPageListQuery } from "../../gql/graphql";

export type ToolRow = ToolsPageListQuery["tools"]["items"][number];

const CreateTool = graphql(`
  mutation ToolsPageCreate($input: ToolInput!) {
    createTool(input: $input) { tool { id name } errors { field code message } }
  }
`);

const UpdateTool = graphql(`
  mutation ToolsPageUpdate($id: ID!, $input: ToolInput!) {
    updateTool(id: $id, input: $input) { tool { id name } errors { field code message } }
  }
`);

export function useProblemText(): (p: FormProblem) => string {
  const t = useText(text);
  return (p) => {
    const vars = { field: p.field, line: p.line ?? 0, detail: p.detail ?? "" };
    switch (p.code) {
      case "required": return t("problemRequired", vars);
      case "json": return t("problemJson", vars);
      case "notObject": return t("problemNotObject", vars);
      default: return t("problemHeaderLine", vars);
    }
  };
}

export function ToolEditor({ tool, onClose, onSaved }: { tool: ToolRow | null; onClose: () => void; onSaved: () => void }) {
  const t = useText(text);
  const problemText = useProblemText();
  const action = useAction();
  const [form, setForm] = useState<ToolForm>(() => (tool ? formOfTool(tool) : EMPTY_TOOL));
  const [problem, setProblem] = useState<string | null>(null);
  const set = <K extends keyof ToolForm>(key: K) => (value: ToolForm[K]) => setForm((f) => ({ ...f, [key]: value }));
  const served = SERVED_TOOL_TYPES.includes(form.toolType);
  const http = form.toolType === "FUNCTION";
  const args = urlPlaceholders(form.url);
  const imported = tool && (tool.http.queryParams.length > 0 || tool.http.headerParams.length > 0);

  const save = () => {
    const built = toolInput(form, tool !== null);
    if ("problem" in built) {
      setProblem(problemText(built.problem));
      return;
    }
    setProblem(null);
    void action.run(async () => {
      if (tool) await mutate(UpdateTool, { id: tool.id, input: built.input });
      else await mutate(CreateTool, { input: built.input });
      onSaved();
    });
  };

  return (
    <Modal title={tool ? t("editTitle", { name: tool.name }) : t("createTitle")} onClose={onClose} wide>
      <form style={STACK} onSubmit={(e) => { e.preventDefault(); save(); }} aria-label={tool ? t("editTitle", { name: tool.name }) : t("createTitle")}>
        <div className="form-grid">
          <TextInput label={t("name")} name="name" value={form.name} onChange={set("name")} required hint={t("nameHint")} />
          <Select label={t("toolType")} name="toolType" value={form.toolType} onChange={set("toolType")}
            options={TOOL_TYPES.map((v) => ({ value: v, label: t(`type${v}`) }))} />
          <TextInput label={t("remark")} name="remark" value={form.remark} onChange={set("remark")} />
          <Checkbox label={t("enabled")} name="enabled" checked={form.enabled} onChange={set("enabled")} />
        </div>
        <TextArea label={t("description")} name="description" value={form.description} onChange={set("description")} rows={2} />
        {!served ? <p className="notice" role="status">{t("notServed")}</p> : null}
        {http ? (
          <>
            {imported ? (
              <p className="notice">{t("importedParams", {
                query: tool.http.queryParams.join(", ") || "—", header: tool.http.headerParams.join(", ") || "—",
              })}</p>
            ) : null}
            <div style={{ display: "grid", gridTemplateColumns: "minmax(110px, 160px) 1fr", gap: ".7rem 1rem" }}>
              <Select label={t("method")} name="method" value={form.method} onChange={set("method")}
                options={METHODS.map((m) => ({ value: m, label: m }))} />
              <TextInput label={t("url")} name="url" value={form.url} onChange={set("url")} required type="url"
                hint={args.length ? t("urlArgs", { names: args.join(", ") }) : t("urlHint")}
                placeholder="https://api.example.com/v1/cities/{city}" />
            </div>
            <TextArea label={t("parameters")} name="parameters" value={form.parameters} onChange={set("parameters")} rows={6} mono
              hint={t("parametersHint")} />
            <TextArea label={t("headers")} name="headers" value={form.headers} onChange={set("headers")} rows={2} mono
              hint={t("headersHint")} />
            {tool ? (
              <>
                <p className="muted">{tool.http.secretHeaderNames.length
                  ? t("secretStored", { names: tool.http.secretHeaderNames.join(", ") }) : t("secretNone")}</p>
                <RadioGroup<SecretMode> label={t("secretMode")} name="secretMode" value={form.secretMode} onChange={set("secretMode")}
                  options={[
                    { value: "keep", label: t("secretKeep") },
                    { value: "replace", label: t("secretReplace") },
                    { value: "remove", label: t("secretRemove") },
                  ]} />
              </>
            ) : null}
            {!tool || form.secretMode === "replace" ? (
              <TextArea label={t("secretHeaders")} name="secretHeaders" value={form.secretHeaders} onChange={set("secretHeaders")}
                rows={2} mono hint={t("secretHeadersHint")} />
            ) : null}
            {bodyRelevant(form.method, form.body) ? (
              <TextArea label={t("body")} name="body" value={form.body} onChange={set("body")} rows={4} mono hint={t("bodyHint")} />
            ) : null}
            <div className="form-grid">
              <NumberInput label={t("timeoutSeconds")} name="timeoutSeconds" value={form.timeoutSeconds} onChange={set("timeoutSeconds")}
                min={0.1} max={600} />
              <NumberInput label={t("maxResponseBytes")} name="maxResponseBytes" value={form.maxResponseBytes}
                onChange={set("maxResponseBytes")} min={1} max={1048576} step={1} hint={t("maxResponseHint")} />
              <TextInput label={t("extract")} name="extract" value={form.extract} onChange={set("extract")} hint={t("extractHint")} />
              <TextInput label={t("userAgent")} name="userAgent" value={form.userAgent} onChange={set("userAgent")} />
            </div>
          </>
        ) : null}
        <ErrorText error={problem ?? action.error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={action.busy} disabled={!served}>{tool ? t("save") : t("create")}</Button>
          <Button onClick={onClose}>{t("cancel")}</Button>
        </div>
      </form>
    </Modal>
  );
}
