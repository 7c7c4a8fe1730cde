// Import into a dataset (upload a JSONL file, or pick an uploaded one; bad lines shown with their text) and export
// it (GET /datasets/{id}/export, fetched with the session's headers, or straight into a fine-tune file).
import { useRef, useState, type FormEvent } from "react";
import { UploadError, gql, uploadFile, type LineError } from "../../api/client";
import { Button, Card, ErrorText, Field, Select, formatNumber } from "../../components/ui";
import { graphql } from "../../gql";
import type { DatasetFormat } from "../../gql/graphql";
import { useAction, useQuery } from "../../hooks/api";
import { useText } from "../../i18n";
import { downloadWithAuth, authedFetch } from "../files/http";
import { LineErrors, type LineSource } from "../files/LineErrors";
import { purposeText } from "../files/purposes";
import { stack } from "../files/style";
import { FORMATS } from "./DatasetForm";
import { exportUrl, splitErrors } from "./errors";
import { text } from "./text";

const Import = graphql(`
  mutation DatasetsAreaImport($datasetId: ID!, $fileId: ID!) {
    importDatasetFile(datasetId: $datasetId, fileId: $fileId) {
      imported dataset { id sampleCount } errors { code message field line }
    }
  }
`);

const Uploaded = graphql(`
  query DatasetsAreaFiles {
    files(pagination: { offset: 0, limit: 100 }) { items { id name purpose lineCount contentUrl } }
  }
`);

interface Outcome {
  imported: number | null;
  other: string[];
  lines: LineError[];
  source: LineSource;
}

export function ImportCard({ datasetId, onImported }: { datasetId: string; onImported: () => void }) {
  const t = useText(text);
  const tp = useText(purposeText);
  const files = useQuery(Uploaded, {});
  const input = useRef<HTMLInputElement>(null);
  const [fileId, setFileId] = useState("");
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const action = useAction();

  const runImport = async (id: string, source: LineSource) => {
    const data = await gql(Import, { datasetId, fileId: id });
    const payload = data.importDatasetFile;
    const { lines, other } = splitErrors(payload.errors);
    setOutcome({ imported: payload.errors.length ? null : payload.imported, other, lines, source });
    if (!payload.errors.length) onImported();
  };

  const uploadAndImport = (e: FormEvent) => {
    e.preventDefault();
    setOutcome(null);
    const file = input.current?.files?.[0];
    if (!file) {
      setOutcome({ imported: null, other: [t("chooseFile")], lines: [], source: null });
      return;
    }
    void action.run(async () => {
      try {
        // assistants: stored as sent (alpaca and sharegpt lines too); the import checks every line
        const uploaded = await uploadFile(file, file.name, "assistants");
        await runImport(uploaded.id, file);
        if (input.current) input.current.value = "";
        void files.reload();
      } catch (err) {
        if (err instanceof UploadError) {
          setOutcome({ imported: null, other: [err.message], lines: err.lineErrors, source: file });
          return;
        }
        throw err;
      }
    });
  };

  const importExisting = (e: FormEvent) => {
    e.preventDefault();
    setOutcome(null);
    const chosen = files.data?.files.items.find((f) => f.id === fileId);
    if (!chosen) {
      setOutcome({ imported: null, other: [t("chooseFile")], lines: [], source: null });
      return;
    }
    void action.run(() => runImport(chosen.id, chosen.contentUrl));
  };

  return (
    <Card title={t("import")}>
      <small className="muted">{t("importHint")}</small>
      <div className="grid-2">
        <form style={stack} onSubmit={uploadAndImport} aria-label={t("importNew")}>
          <h3>{t("importNew")}</h3>
          <Field label={t("file")}>
            {(id) => <input id={id} ref={input} type="file" name="file" />}
          </Field>
          <div className="actions">
            <Button kind="primary" type="submit" busy={action.busy}>{t("importSubmit")}</Button>
          </div>
        </form>
        <form style={stack} onSubmit={importExisting} aria-label={t("importExisting")}>
          <h3>{t("importExisting")}</h3>
          <Select label={t("fileId")} name="fileId" value={fileId} onChange={setFileId}
            options={[{ value: "", label: t("choose") }, ...(files.data?.files.items ?? []).map((f) => ({
              value: f.id, label: `${f.name} · ${tp(f.purpose)} · ${f.id}`,
            }))]} />
          <div className="actions">
            <Button type="submit" busy={action.busy}>{t("importExistingSubmit")}</Button>
          </div>
        </form>
      </div>
      <ErrorText error={action.error ?? files.error} />
      {outcome?.other.length ? <ErrorText error={outcome.other.join("; ")} /> : null}
      {outcome?.lines.length ? <LineErrors errors={outcome.lines} source={outcome.source} /> : null}
      {outcome && outcome.imported !== null ? (
        <p className="muted" role="status">{t("imported", { n: formatNumber(outcome.imported) })}</p>
      ) : null}
    </Card>
  );
}

export function ExportCard({ datasetId, name, format: initial }: { datasetId: string; name: string; format: DatasetFormat }) {
  const t = useText(text);
  const [format, setFormat] = useState<DatasetFormat>(initial);
  const action = useAction();
  const [done, setDone] = useState<string | null>(null);
  const [bad, setBad] = useState<{ errors: LineError[]; blob: Blob } | null>(null);
  const url = exportUrl(datasetId, format);
  const fallback = `${name}.${format.toLowerCase()}.jsonl`;

  const toTraining = () => {
    setDone(null);
    setBad(null);
    void action.run(async () => {
      const blob = await (await authedFetch(exportUrl(datasetId, "MESSAGES"))).blob();
      try {
        const uploaded = await uploadFile(blob, `${name}.jsonl`, "fine-tune");
        setDone(t("toTrainingDone", { id: uploaded.id, lines: formatNumber(uploaded.lineCount) }));
      } catch (err) {
        if (err instanceof UploadError && err.lineErrors.length) setBad({ errors: err.lineErrors, blob });
        throw err;
      }
    });
  };

  return (
    <Card title={t("export")}>
      <div className="form-grid">
        <Select label={t("exportFormat")} name="exportFormat" value={format} onChange={setFormat}
          options={FORMATS.map((f) => ({ value: f, label: t(f) }))} />
      </div>
      <div className="actions">
        <a className="btn btn-primary" href={url} download={fallback} data-testid="dataset-export" onClick={(e) => {
          e.preventDefault();
          void action.run(() => downloadWithAuth(url, fallback));
        }}>{t("download")}</a>
        <Button busy={action.busy} onClick={toTraining} title={t("toTrainingHint")}>{t("toTraining")}</Button>
      </div>
      <small className="muted">{t("toTrainingHint")}</small>
      <ErrorText error={action.error} />
      {bad ? <LineErrors errors={bad.errors} source={bad.blob} /> : null}
      {done ? <p className="muted" role="status">{done}</p> : null}
    </Card>
  );
}
