// The live tail of one replica's log: deploymentLogs polled every 2 s from the cursor it returned, appended to a
// bounded list (the newest 5000 lines) once per frame, shown virtualised.
import { useEffect, useRef, useState } from "react";
import { gql } from "../../api/client";
import type { LogLine } from "../../components/LogView";
import { LogView } from "../../components/LogView";
import { useLiveList } from "../../hooks/batched";
import { useText } from "../../i18n";
import { DeploymentLogs } from "./documents";
import { LOG_CAP, LOG_POLL_MS, numberLogLines } from "./live";
import { text } from "./text";

export function LogTail({ deploymentId, replica }: { deploymentId: string; replica: number }) {
  const t = useText(text);
  const log = useLiveList<LogLine>(LOG_CAP);
  const { append } = log;
  const cursor = useRef(0);
  const [error, setError] = useState<string | null>(null);
  const [polled, setPolled] = useState(false);

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const data = await gql(DeploymentLogs, { id: deploymentId, replica, since: cursor.current });
        if (stopped) return;
        const { lines, cursor: next } = data.deploymentLogs;
        if (lines.length) append(...numberLogLines(lines, next));
        cursor.current = Math.max(cursor.current, next);
        setError(null);
        setPolled(true);
      } catch (e) {
        if (!stopped) setError(e instanceof Error ? e.message : String(e));
      } finally {
        if (!stopped) timer = setTimeout(() => void tick(), LOG_POLL_MS);
      }
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [deploymentId, replica, append]);

  return (
    <div data-testid={`deployment-log-${replica}`}>
      {error ? <p className="error" role="alert">{t("logError", { reason: error })}</p> : null}
      {log.dropped ? <p className="muted">{t("logDropped", { n: log.dropped })}</p> : null}
      {polled && log.items.length === 0 ? <p className="muted">{t("logEmpty")}</p> : null}
      <LogView lines={log.items} dropped={log.dropped} label={t("logLabel", { n: replica + 1 })} />
    </div>
  );
}
