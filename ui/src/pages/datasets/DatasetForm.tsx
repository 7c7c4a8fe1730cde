// Create or edit a dataset (name, remark, type, format) in a dialog.
import { useState, type FormEvent } from "react";
import { Button, ErrorText, Modal, Select, TextInput } from "../../components/ui";
import { graphql } from "../../gql";
import type { DatasetFormat } from "../../gql/graphql";
import { mutate, useAction } from "../../hooks/api";
import { useText } from "../../i18n";
import { stack } from "../files/style";
import { text } from "./text";

export const FORMATS: readonly DatasetFormat[] = ["MESSAGES", "ALPACA", "SHAREGPT"];

const Create = graphql(`
  mutation DatasetsAreaCreate($input: CreateDatasetInput!) {
    createDataset(input: $input) { dataset { id } errors { code message field line } }
  }
`);

const Update = graphql(`
  mutation DatasetsAreaUpdate($input: UpdateDatasetInput!) {
    updateDataset(input: $input) { dataset { id } errors { code message field line } }
  }
`);

export interface DatasetValues {
  id?: string;
  name: string;
  remark: string;
  type: string;
  format: DatasetFormat;
}

export function DatasetForm({ initial, onClose, onSaved }: {
  initial?: DatasetValues; onClose: () => void; onSaved: (id: string) => void;
}) {
  const t = useText(text);
  const [values, setValues] = useState<DatasetValues>(initial ?? { name: "", remark: "", type: "text", format: "MESSAGES" });
  const action = useAction();
  const set = (patch: Partial<DatasetValues>) => setValues((v) => ({ ...v, ...patch }));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void action.run(async () => {
      const { name, remark, type, format } = values;
      if (values.id) {
        await mutate(Update, { input: { id: values.id, name, remark, type, format } });
        onSaved(values.id);
      } else {
        const data = await mutate(Create, { input: { name, remark, type, format } });
        if (data.createDataset.dataset) onSaved(data.createDataset.dataset.id);
      }
    });
  };
  return (
    <Modal title={values.id ? t("editDataset") : t("newDataset")} onClose={onClose}>
      <form style={stack} onSubmit={submit} aria-label={values.id ? t("editDataset") : t("newDataset")}>
        <div className="form-grid">
          <TextInput label={t("name")} name="name" value={values.name} onChange={(v) => set({ name: v })} required />
          <TextInput label={t("type")} name="type" value={values.type} onChange={(v) => set({ type: v })} />
          <Select label={t("format")} name="format" value={values.format} onChange={(v) => set({ format: v })}
            hint={t("formatHint")} options={FORMATS.map((f) => ({ value: f, label: t(f) }))} />
          <TextInput label={t("remark")} name="remark" value={values.remark} onChange={(v) => set({ remark: v })} />
        </div>
        <ErrorText error={action.error} />
        <div className="actions">
          <Button kind="primary" type="submit" busy={action.busy}>{values.id ? t("save") : t("create")}</Button>
          <Button onClick={onClose}>{t("cancel")}</Button>
        </div>
      </form>
    </Modal>
  );
}
