// One run as it reads: the model's text per step, tool calls with their arguments and results, errors, the answer.
import { formatNumber, StatusBadge } from "../../components/ui";
import { useText } from "../../i18n";
import { prettyJson, type RunView } from "./runSteps";
import { text } from "./text";

export function RunSteps({ view, live }: { view: RunView; live?: boolean }) {
  const t = useText(text);
  return (
    <div className="chat" data-testid="run-steps">
      {view.entries.map((entry, i) => {
        switch (entry.type) {
          case "text":
            return (
              <div key={i} className="msg assistant" data-kind="text">
                <small className="muted">{t("model", { step: entry.step })}</small>
                <div>{entry.content}</div>
              </div>
            );
          case "tool":
            return (
              <div key={i} className="msg assistant" data-kind="tool">
                <strong>{t("toolCall", { tool: entry.tool })}</strong>
                <details open>
                  <summary>{t("args")}</summary>
                  <pre>{prettyJson(entry.arguments) || "{}"}</pre>
                </details>
                {entry.result ? (
                  <details open>
                    <summary>
                      {t("result")}{" "}
                      <StatusBadge status={entry.result.ok ? "SUCCEEDED" : "FAILED"} />{" "}
                      {entry.result.errorCode ? <span className="mono">{entry.result.errorCode}</span> : null}{" "}
                      <span className="muted">{t("durationMs", { ms: formatNumber(entry.result.durationMs, 1) })}</span>
                    </summary>
                    <pre>{prettyJson(entry.result.content)}</pre>
                  </details>
                ) : <p className="muted">{t("waiting")}</p>}
              </div>
            );
          case "final":
            return (
              <div key={i} className="msg assistant" data-kind="final">
                <strong>{t("answer")}</strong>
                <div>{entry.content}</div>
                {entry.stopReason && entry.stopReason !== "completed" ? (
                  <p className="error">{t("stopReason", { reason: entry.stopReason })}</p>
                ) : null}
              </div>
            );
          default:
            return (
              <p key={i} className="error" role="alert" data-kind="error">
                {t("errorEvent", { code: entry.errorCode })}: {entry.content}
              </p>
            );
        }
      })}
      <p className="muted" role={live ? "status" : undefined}>
        {live && !view.done ? `${t("running")} ` : ""}
        {view.done && view.stopReason && view.stopReason !== "completed" ? `${t("stopReason", { reason: view.stopReason })} · ` : ""}
        {t("tokens", { prompt: view.promptTokens, completion: view.completionTokens })}
      </p>
    </div>
  );
}
