// importOpenApiTools: an OpenAPI 3 document pasted or read from a local file; one tool per operation.
import { useId, useState } from "react";
import { graphql } from "../../gql";
import { mutate, useAction } from "../../hooks/api";
import { useText } from "../../i18n";
import { Button, ErrorText, Modal, NumberInput, TextArea, TextInput } from "../../components/ui";
import { STACK } from "../assistants/fields";
import { text } from "./text";
import { parseHeaderLines } from "./toolForm";
import { useProblemText } from "./ToolEditor";
import type { ToolsPageImportMutation } from "../../gql/graphql";

const Import = graphql(`
  mutation ToolsPageImport($input: ImportOpenApiInput!) {
    importOpenApiTools(input: $input) {
      created { id name source http { method url } }
      updated { id name source http { method url } }
      errors { field code message }
    }
  }
`);

type Result = ToolsPageImportMutation["importOpenApiTools"];

export function OpenApiImport({ onClose, onImported }: { onClose: () => void; onImported: () => void }) {
  const t = useText(text);
  const problemText = useProblemText();
  const action = useAction();
  const fileId = useId();
  const [document, setDocument] = useState("");
  const [serverUrl, setServerUrl] = useState("");
  const [secretHeaders, setSecretHeaders] = useState("");
  const [timeoutSeconds, setTimeoutSeconds] = useState<number | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [result, setResult] = useState<Result | null>(null);

  const run = () => {
    const secrets = parseHeaderLines(secretHeaders, "secretHeaders");
    if ("problem" in secrets) {
      setProblem(problemText(secrets.problem));
      return;
    }
    if (!document.trim()) {
      setProblem(problemText({ field: "document", code: "required" }));
      return;
    }
    setProblem(null);
    void action.run(async () => {
      const data = await mutate(Import, { input: {
        document, serverUrl: serverUrl.trim(),
        secretHeaders: Object.keys(secrets.value).length ? secrets.value : null, timeoutSeconds,
      } });
      setResult(data.importOpenApiTools);
      onImported();
    });
  };

  const list = (tools: Result["created"]) => (
    <ul>{tools.map((x) => <li key={x.id}><span className="mono">{x.name}</span> <span className="muted">{x.http.method} {x.http.url}</span></li>)}</ul>
  );

  return (
    <Modal title={t("importTitle")} onClose={onClose} wide>
      <form style={STACK} aria-label={t("importTitle")} onSubmit={(e) => { e.preventDefault(); run(); }}>
        <div className="field">
          <label htmlFor={fileId}>{t("documentFile")}</label>
          <input id={fileId} type="file" accept=".json,.yaml,.yml,application/json,application/yaml,text/yaml"
            onChange={(e) => {
              const file = e.target.files?.[0];
              if (file) void file.text().then(setDocument);
            }} />
        </div>
        <TextArea label={t("document")} name="document" value={document} onChange={setDocument} rows={12} mono hint={t("documentHint")} />
        <div className="form-grid">
          <TextInput label={t("serverUrl")} name="serverUrl" value={serverUrl} onChange={setServerUrl} hint={t("serverUrlHint")}
            placeholder="https://api.example.com" />
          <NumberInput label={t("importTimeout")} name="timeoutSeconds" value={timeoutSeconds} onChange={setTimeoutSeconds}
            min={0.1} max={600} hint={t("importTimeoutHint")} />
        </div>
        <TextArea label={t("secretHeaders")} name="secretHeaders" value={secretHeaders} onChange={setSecretHeaders} rows={2} mono
          hint={t("importSecretHint")} />
        <ErrorText error={problem ?? action.error} />
        {result ? (
          <div role="status">
            <p>{t("importDone", { created: result.created.length, updated: result.updated.length })}</p>
            {result.created.length ? <><h3>{t("created", { n: result.created.length })}</h3>{list(result.created)}</> : null}
            {result.updated.length ? <><h3>{t("updatedTools", { n: result.updated.length })}</h3>{list(result.updated)}</> : null}
          </div>
        ) : null}
        <div className="actions">
          <Button kind="primary" type="submit" busy={action.busy}>{t("runImport")}</Button>
          <Button onClick={onClose}>{t("cancel")}</Button>
        </div>
      </form>
    </Modal>
  );
}
