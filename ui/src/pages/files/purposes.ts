// Purposes of files (GraphQL enum values) and their labels; sizes for people.
import type { Purpose } from "../../gql/graphql";
import { defineText } from "../../i18n";

export const PURPOSES: readonly Purpose[] = ["FINE_TUNE", "FINE_TUNE_EVAL", "ASSISTANTS"];

export const purposeText = defineText({
  en: { FINE_TUNE: "Fine-tune (chat JSONL)", FINE_TUNE_EVAL: "Fine-tune evaluation (chat JSONL)", ASSISTANTS: "Assistants (any file)" },
  zh: { FINE_TUNE: "微调（对话 JSONL）", FINE_TUNE_EVAL: "微调评测（对话 JSONL）", ASSISTANTS: "助手（任意文件）" },
});

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return `${value.toFixed(value >= 100 ? 0 : 1)} ${units[i]}`;
}
