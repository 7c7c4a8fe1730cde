// Upload a file (POST /files, the raw bytes): when the platform refuses a chat JSONL file, its bad lines are
// listed with their numbers, the messages and the lines' own text (read from the chosen file).
import { useRef, useState, type FormEvent } from "react";
import { UploadError, uploadFile, type LineError, type UploadedFile } from "../../api/client";
import { Button, ErrorText, Field, Select, formatNumber } from "../../components/ui";
import type { Purpose } from "../../gql/graphql";
import { defineText, useText } from "../../i18n";
import { LineErrors } from "./LineErrors";
import { restPurpose } from "./lines";
import { PURPOSES, purposeText } from "./purposes";
import { stack } from "./style";

const text = defineText({
  en: {
    form: "Upload a file", file: "File", purpose: "Purpose", submit: "Upload", chooseFile: "Choose a file first.",
    purposeHint: "Fine-tuning purposes are checked line by line: one {\"messages\": [...]} object per line.",
    uploaded: "Uploaded {name} ({id}): {lines} sample(s), {tokens} token(s).",
  },
  zh: {
    form: "上传文件", file: "文件", purpose: "用途", submit: "上传", chooseFile: "请先选择文件。",
    purposeHint: "微调用途的文件按行校验：每行一个 {\"messages\": [...]} 对象。",
    uploaded: "已上传 {name}（{id}）：{lines} 条样本，{tokens} 个 token。",
  },
});

export function UploadForm({ onUploaded, defaultPurpose = "FINE_TUNE", purposes = PURPOSES, submitLabel }: {
  onUploaded: (file: UploadedFile) => void | Promise<void>;
  defaultPurpose?: Purpose;
  purposes?: readonly Purpose[];
  submitLabel?: string;
}) {
  const t = useText(text);
  const tp = useText(purposeText);
  const input = useRef<HTMLInputElement>(null);
  const [purpose, setPurpose] = useState<Purpose>(defaultPurpose);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [bad, setBad] = useState<{ errors: LineError[]; file: File } | null>(null);
  const [done, setDone] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const file = input.current?.files?.[0];
    setError(null);
    setBad(null);
    setDone(null);
    if (!file) {
      setError(t("chooseFile"));
      return;
    }
    setBusy(true);
    try {
      const uploaded = await uploadFile(file, file.name, restPurpose(purpose));
      setDone(t("uploaded", {
        name: uploaded.name, id: uploaded.id, lines: formatNumber(uploaded.lineCount),
        tokens: formatNumber(uploaded.tokenCount),
      }));
      if (input.current) input.current.value = "";
      await onUploaded(uploaded);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      if (err instanceof UploadError && err.lineErrors.length) setBad({ errors: err.lineErrors, file });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="upload-form" style={stack} onSubmit={(e) => void submit(e)} aria-label={t("form")}>
      <div className="form-grid">
        <Field label={t("file")}>
          {(id) => <input id={id} ref={input} type="file" name="file" />}
        </Field>
        {purposes.length > 1 ? (
          <Select label={t("purpose")} name="purpose" value={purpose} onChange={setPurpose} hint={t("purposeHint")}
            options={purposes.map((p) => ({ value: p, label: tp(p) }))} />
        ) : null}
      </div>
      <div className="actions">
        <Button kind="primary" type="submit" busy={busy}>{submitLabel ?? t("submit")}</Button>
      </div>
      <ErrorText error={error} />
      {bad ? <LineErrors errors={bad.errors} source={bad.file} /> : null}
      {done ? <p className="muted" role="status">{done}</p> : null}
    </form>
  );
}
