// Add or edit a sample: title, label, remark, and its messages as role/content rows or as JSON, checked with the
// dataset's rules before saving.
import { useState, type FormEvent } from "react";
import { Button, ErrorText, Field, Modal, Select, Tabs, TextArea, TextInput } from "../../components/ui";
import { graphql } from "../../gql";
import type { DatasetFormat } from "../../gql/graphql";
import { mutate, useAction } from "../../hooks/api";
import { useText } from "../../i18n";
import {
  ROLES, checkMessages, messagesJson, nextRole, parseMessages, type MessageProblem, type MessageRow,
} from "./messages";
import { stack } from "../files/style";
import { text } from "./text";

const CreateSample = graphql(`
  mutation DatasetsAreaCreateSample($input: CreateDatasetSampleInput!) {
    createDatasetSample(input: $input) { sample { id } errors { code message field line } }
  }
`);

const UpdateSample = graphql(`
  mutation DatasetsAreaUpdateSample($input: UpdateDatasetSampleInput!) {
    updateDatasetSample(input: $input) { sample { id } errors { code message field line } }
  }
`);

export interface SampleValues {
  id?: string;
  title: string;
  label: string;
  remark: string;
  rows: MessageRow[];
}

type Mode = "rows" | "json";

export function SampleEditor({ datasetId, format, initial, onClose, onSaved }: {
  datasetId: string; format: DatasetFormat; initial?: SampleValues; onClose: () => void; onSaved: () => void;
}) {
  const t = useText(text);
  const [values, setValues] = useState<SampleValues>(initial ?? {
    title: "", label: "", remark: "", rows: [{ role: "user", content: "" }, { role: "assistant", content: "" }],
  });
  const [mode, setMode] = useState<Mode>("rows");
  const [json, setJson] = useState("");
  const [problem, setProblem] = useState<MessageProblem | null>(null);
  const action = useAction();

  const say = (p: MessageProblem): string => {
    switch (p.code) {
      case "json": return t("jsonBad", { detail: p.detail });
      case "item": return t("item", { n: p.index + 1 });
      case "role": return t("roleBad", { n: p.index + 1 });
      case "content": return t("contentBad", { n: p.index + 1 });
      case "systemFirst": return t("systemFirst", { n: p.index + 1 });
      case "alternate": return t("alternate", { n: p.index + 1, expected: p.expected });
      default: return t(p.code);
    }
  };

  const setRows = (rows: MessageRow[]) => setValues((v) => ({ ...v, rows }));
  const setRow = (i: number, patch: Partial<MessageRow>) =>
    setRows(values.rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));

  /** The rows being edited, from the JSON text in JSON mode; null (with the problem shown) when unreadable. */
  const currentRows = (): MessageRow[] | null => {
    if (mode === "rows") return values.rows;
    const parsed = parseMessages(json);
    if ("problem" in parsed) {
      setProblem(parsed.problem);
      return null;
    }
    return parsed.rows;
  };

  const switchMode = (next: Mode) => {
    if (next === mode) return;
    if (next === "json") {
      setJson(messagesJson(values.rows));
      setProblem(null);
      setMode("json");
      return;
    }
    const rows = currentRows();
    if (!rows) return;
    setRows(rows);
    setProblem(null);
    setMode("rows");
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const rows = currentRows();
    if (!rows) return;
    const found = checkMessages(rows, format);
    setProblem(found);
    if (found) return;
    const conversations = rows.map((r) => ({ role: r.role, content: r.content }));
    const meta = { title: values.title, label: values.label, remark: values.remark };
    void action.run(async () => {
      if (values.id) await mutate(UpdateSample, { input: { id: values.id, ...meta, conversations } });
      else await mutate(CreateSample, { input: { datasetId, ...meta, conversations } });
      onSaved();
    });
  };

  const title = values.id ? t("editSample") : t("newSample");
  return (
    <Modal title={title} onClose={onClose} wide>
      <form style={stack} onSubmit={submit} noValidate aria-label={title}>
        <div className="form-grid">
          <TextInput label={t("sampleTitle")} name="title" value={values.title} hint={t("titleHint")}
            onChange={(v) => setValues((s) => ({ ...s, title: v }))} />
          <TextInput label={t("label")} name="label" value={values.label}
            onChange={(v) => setValues((s) => ({ ...s, label: v }))} />
          <TextInput label={t("remark")} name="remark" value={values.remark}
            onChange={(v) => setValues((s) => ({ ...s, remark: v }))} />
        </div>
        <Tabs<Mode> value={mode} onChange={switchMode}
          tabs={[{ value: "rows", label: t("messagesTab") }, { value: "json", label: t("jsonTab") }]} />
        {mode === "rows" ? (
          <ol className="message-rows" style={{ ...stack, paddingLeft: "1.4rem", margin: 0 }}>
            {values.rows.map((row, i) => (
              <li key={i} className="message-row" data-index={i} style={stack}>
                <div className="form-grid">
                  <Select label={t("role", { n: i + 1 })} name={`conversations.${i}.role`} value={row.role}
                    onChange={(v) => setRow(i, { role: v })}
                    options={(ROLES as readonly string[]).includes(row.role)
                      ? ROLES.map((r) => ({ value: r as string, label: r }))
                      : [{ value: row.role, label: row.role }, ...ROLES.map((r) => ({ value: r as string, label: r }))]} />
                </div>
                <TextArea label={t("content", { n: i + 1 })} name={`conversations.${i}.content`} value={row.content}
                  rows={3} onChange={(v) => setRow(i, { content: v })} />
                <div className="actions">
                  <Button onClick={() => setRows(values.rows.filter((_, j) => j !== i))}>
                    {t("removeMessage", { n: i + 1 })}
                  </Button>
                </div>
              </li>
            ))}
          </ol>
        ) : (
          <Field label={t("json")} hint={t("jsonHint")}>
            {(id) => (
              <textarea id={id} name="conversations" className="mono" rows={14} value={json} spellCheck={false}
                onChange={(e) => setJson(e.target.value)} />
            )}
          </Field>
        )}
        {mode === "rows" ? (
          <div className="actions">
            <Button onClick={() => setRows([...values.rows, { role: nextRole(values.rows), content: "" }])}>{t("addMessage")}</Button>
          </div>
        ) : null}
        {problem ? <p className="error" role="alert" data-testid="sample-problem">{say(problem)}</p> : null}
        <ErrorText error={action.error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={action.busy}>{t("saveSample")}</Button>
          <Button onClick={onClose}>{t("cancel")}</Button>
        </div>
      </form>
    </Modal>
  );
}
