// Templates (platform admins): how workers and training jobs are started. Inference templates (model_worker,
// vllm_worker) and training templates (engine "finetune") are the same API; the JSON content is checked here
// before it is saved, as the platform checks it.
import { useState } from "react";
import {
  Button, Card, Checkbox, ConfirmButton, DataTable, ErrorText, Modal, Page, Select, StatusBadge, Tabs, TextArea,
  TextInput, type Column,
} from "../../components/ui";
import { graphql } from "../../gql";
import type { TemplatesPageListQuery } from "../../gql/graphql";
import { mutate, useAction, useQuery } from "../../hooks/api";
import { defineText, useText } from "../../i18n";
import { formatJson, isTraining, templateProblem, variablesFor, type TemplateProblem } from "./templates";

const text = defineText({
  en: {
    title: "Templates", inference: "Inference templates", training: "Training templates", name: "Name",
    engine: "Engine", content: "Content (JSON)", enabled: "Enabled", remark: "Remark", actions: "Actions",
    create: "Create template", createTitle: "Create template", submitCreate: "Create", edit: "Edit",
    editTitle: "Edit template {name}", save: "Save", cancel: "Cancel", del: "Delete", format: "Format JSON",
    variables: "Variables: {list}. {host} and {port} are filled per replica.", valid: "Valid template.",
    json: "Not JSON: {detail}", shape: "The template must be an object with only image, command and env.",
    command: "command must be a non-empty list of strings.", env: "env must map strings to strings.",
    image: "image must be a string.", variable: "Unknown variable ${{detail}}.", fixed: "Name and engine cannot be changed.",
    model_worker: "model_worker (FastChat)", vllm_worker: "vllm_worker (vLLM)", finetune: "finetune (training)",
  },
  zh: {
    title: "模板", inference: "推理模板", training: "训练模板", name: "名称",
    engine: "引擎", content: "内容（JSON）", enabled: "启用", remark: "备注", actions: "操作",
    create: "创建模板", createTitle: "创建模板", submitCreate: "创建", edit: "编辑",
    editTitle: "编辑模板 {name}", save: "保存", cancel: "取消", del: "删除", format: "格式化 JSON",
    variables: "可用变量：{list}。{host} 和 {port} 由每个副本填入。", valid: "模板有效。",
    json: "不是合法的 JSON：{detail}", shape: "模板必须是只包含 image、command 和 env 的对象。",
    command: "command 必须是非空的字符串列表。", env: "env 必须是字符串到字符串的映射。",
    image: "image 必须是字符串。", variable: "未知变量 ${{detail}}。", fixed: "名称和引擎不可修改。",
    model_worker: "model_worker（FastChat）", vllm_worker: "vllm_worker（vLLM）", finetune: "finetune（训练）",
  },
});

const List = graphql(`
  query TemplatesPageList {
    inferenceTemplates { id name engine content enabled remark }
  }
`);

const Create = graphql(`
  mutation TemplatesPageCreate($input: CreateInferenceTemplateInput!) {
    createInferenceTemplate(input: $input) { template { id } errors { code message field } }
  }
`);

const Update = graphql(`
  mutation TemplatesPageUpdate($input: UpdateInferenceTemplateInput!) {
    updateInferenceTemplate(input: $input) { template { id } errors { code message field } }
  }
`);

const Delete = graphql(`
  mutation TemplatesPageDelete($id: ID!) {
    deleteInferenceTemplate(id: $id) { errors { code message field } }
  }
`);

type Template = TemplatesPageListQuery["inferenceTemplates"][number];
type Kind = "inference" | "training";

const STARTER: Record<Kind, string> = {
  inference: JSON.stringify({
    image: "${image}",
    command: ["${python}", "-m", "fastchat.serve.model_worker", "--model-path", "${model_path}", "--model-names",
      "${model_name}", "--controller-address", "${controller_address}", "--worker-address", "http://{host}:{port}",
      "--host", "{host}", "--port", "{port}", "${worker_args}"],
    env: {},
  }, null, 2),
  training: JSON.stringify({
    image: "${image}",
    command: ["${python}", "${program}", "--base-model-path", "${base_model_path}", "--data-path", "${data_path}",
      "--output-dir", "${output_dir}", "${lora_args}"],
    env: { PYTHONUNBUFFERED: "1" },
  }, null, 2),
};

export default function Templates(_: { path: string }) {
  const t = useText(text);
  const [kind, setKind] = useState<Kind>("inference");
  const list = useQuery(List, {});
  const [dialog, setDialog] = useState<{ kind: "create" } | { kind: "edit"; template: Template } | null>(null);
  const action = useAction();
  const remove = useAction();
  const rows = (list.data?.inferenceTemplates ?? []).filter((x) => isTraining(x.engine) === (kind === "training"));

  const columns: Column<Template>[] = [
    { key: "name", title: t("name"), render: (x) => x.name },
    { key: "engine", title: t("engine"), render: (x) => <code>{x.engine}</code> },
    { key: "enabled", title: t("enabled"), render: (x) => <StatusBadge status={x.enabled ? "ENABLED" : "DISABLED"} /> },
    { key: "remark", title: t("remark"), render: (x) => x.remark || "—" },
    {
      key: "actions", title: t("actions"),
      render: (x) => (
        <div className="actions">
          <Button onClick={() => { action.clear(); setDialog({ kind: "edit", template: x }); }}>{t("edit")}</Button>
          <ConfirmButton busy={remove.busy} onConfirm={() => void remove.run(async () => {
            await mutate(Delete, { id: x.id });
            await list.reload();
          })}>{t("del")}</ConfirmButton>
        </div>
      ),
    },
  ];

  return (
    <Page title={t("title")}
      actions={<Button kind="primary" onClick={() => { action.clear(); setDialog({ kind: "create" }); }}>{t("create")}</Button>}>
      <Tabs value={kind} onChange={setKind} tabs={[{ value: "inference", label: t("inference") }, { value: "training", label: t("training") }]} />
      <Card>
        <ErrorText error={list.error ?? remove.error} />
        <DataTable columns={columns} rows={rows} rowKey={(x) => x.id} loading={list.loading} caption={t(kind)} />
      </Card>
      {dialog ? (
        <TemplateForm template={dialog.kind === "edit" ? dialog.template : null} kind={kind} busy={action.busy}
          error={action.error} onClose={() => setDialog(null)}
          onSubmit={(v) => void action.run(async () => {
            if (dialog.kind === "edit") {
              await mutate(Update, { input: { id: dialog.template.id, content: v.content, enabled: v.enabled, remark: v.remark } });
            } else {
              await mutate(Create, { input: v });
            }
            setDialog(null);
            await list.reload();
          })} />
      ) : null}
    </Page>
  );
}

function problemText(t: ReturnType<typeof useText<keyof (typeof text)["en"]>>, p: TemplateProblem): string {
  return p.detail !== undefined ? t(p.code, { detail: p.detail }) : t(p.code);
}

function TemplateForm({ template, kind, busy, error, onClose, onSubmit }: {
  template: Template | null; kind: Kind; busy: boolean; error: string | null; onClose: () => void;
  onSubmit: (v: { name: string; engine: string; content: string; enabled: boolean; remark: string }) => void;
}) {
  const t = useText(text);
  const [name, setName] = useState(template?.name ?? "");
  const [engine, setEngine] = useState(template?.engine ?? (kind === "training" ? "finetune" : "model_worker"));
  const [content, setContent] = useState(() => template ? (formatJson(template.content) ?? template.content) : STARTER[kind]);
  const [enabled, setEnabled] = useState(template?.enabled ?? true);
  const [remark, setRemark] = useState(template?.remark ?? "");
  const [checked, setChecked] = useState(false);
  const problem = templateProblem(content, engine);
  const engines = kind === "training" ? ["finetune"] : ["model_worker", "vllm_worker"];
  return (
    <Modal title={template ? t("editTitle", { name: template.name }) : t("createTitle")} onClose={onClose} wide>
      <form onSubmit={(e) => {
        e.preventDefault();
        setChecked(true);
        if (problem) return;
        onSubmit({ name: name.trim(), engine, content, enabled, remark });
      }}>
        {template ? (
          <p className="muted">{t("name")}: <strong>{template.name}</strong> · {t("engine")}: <code>{template.engine}</code> — {t("fixed")}</p>
        ) : (
          <div className="form-grid">
            <TextInput label={t("name")} name="name" value={name} onChange={setName} required />
            <Select label={t("engine")} name="engine" value={engine} onChange={setEngine}
              options={engines.map((x) => ({ value: x, label: t(x as "model_worker" | "vllm_worker" | "finetune") }))} />
          </div>
        )}
        <TextArea label={t("content")} name="content" rows={16} mono value={content}
          onChange={(v) => { setContent(v); setChecked(true); }}
          hint={t("variables", { list: variablesFor(engine).map((v) => `\${${v}}`).join(", ") })} />
        {checked && problem ? (
          <p className="error" role="alert" data-testid="template-problem">{problemText(t, problem)}</p>
        ) : checked ? <p className="muted">{t("valid")}</p> : null}
        <div className="actions">
          <Button onClick={() => { const f = formatJson(content); if (f !== null) setContent(f); setChecked(true); }}>{t("format")}</Button>
        </div>
        <Checkbox label={t("enabled")} name="enabled" checked={enabled} onChange={setEnabled} />
        <TextArea label={t("remark")} name="remark" rows={2} value={remark} onChange={setRemark} />
        <ErrorText error={error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={busy}>{template ? t("save") : t("submitCreate")}</Button>
          <Button onClick={onClose}>{t("cancel")}</Button>
        </div>
      </form>
    </Modal>
  );
}
