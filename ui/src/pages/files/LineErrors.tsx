// The bad lines of a JSONL file, each with its number, the platform's message and the line's own text, read from
// the chosen file (a Blob) or from the stored file's content URL.
import { useEffect, useMemo, useState } from "react";
import type { LineError } from "../../api/client";
import { defineText, useText } from "../../i18n";
import { fileContentStream } from "./http";
import { attachLines, collectLines } from "./lines";

const text = defineText({
  en: {
    intro: "{count} invalid line(s); nothing was saved. Fix them and try again:",
    label: "Invalid lines", line: "Line {n}", blank: "(blank line)",
  },
  zh: {
    intro: "{count} 行无效，未保存任何内容。请修正后重试：",
    label: "无效的行", line: "第 {n} 行", blank: "（空行）",
  },
});

/** A chosen file, or the path of a stored file's content (GET /files/{id}/content). */
export type LineSource = Blob | string | null;

export function LineErrors({ errors, source }: { errors: readonly LineError[]; source: LineSource }) {
  const t = useText(text);
  const [contents, setContents] = useState<Map<number, string> | null>(null);
  useEffect(() => {
    setContents(null);
    if (!source || errors.length === 0) return;
    let live = true;
    const wanted = errors.map((e) => e.line);
    void (async () => {
      const stream = typeof source === "string" ? await fileContentStream(source) : source.stream();
      if (!stream) return;
      const got = await collectLines(stream, wanted);
      if (live) setContents(got);
    })().catch(() => undefined); // the messages stand on their own
    return () => {
      live = false;
    };
  }, [errors, source]);
  const problems = useMemo(() => attachLines(errors, contents), [errors, contents]);
  if (problems.length === 0) return null;
  return (
    <div className="line-errors-box" role="alert">
      <p className="error">{t("intro", { count: problems.length })}</p>
      <ul className="line-errors" aria-label={t("label")}>
        {problems.map((p) => (
          <li key={p.line} data-line={p.line}>
            <span className="bad-line">{t("line", { n: p.line })}: {p.message}</span>{" "}
            {p.content !== null ? <code>{p.content === "" ? t("blank") : p.content}</code> : null}
          </li>
        ))}
      </ul>
    </div>
  );
}
