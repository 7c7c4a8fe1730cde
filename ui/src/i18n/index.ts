// English and Chinese. Each page keeps its own strings next to it (defineText), so areas do not share one
// growing file; the type makes the Chinese table name exactly the English keys.
import { useSyncExternalStore } from "react";

export type Lang = "en" | "zh";
export type Table<K extends string> = { en: Record<K, string>; zh: Record<K, string> };

const STORAGE_KEY = "aigc.lang";
const listeners = new Set<() => void>();

function initial(): Lang {
  const stored = typeof localStorage !== "undefined" ? localStorage.getItem(STORAGE_KEY) : null;
  if (stored === "en" || stored === "zh") return stored;
  return typeof navigator !== "undefined" && navigator.language.toLowerCase().startsWith("zh") ? "zh" : "en";
}

let current: Lang = initial();

export function getLang(): Lang {
  return current;
}

export function setLang(lang: Lang): void {
  current = lang;
  localStorage.setItem(STORAGE_KEY, lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const listener of listeners) listener();
}

export function useLang(): Lang {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => current,
  );
}

export function defineText<K extends string>(table: Table<K>): Table<K> {
  return table;
}

/** Fill {name} placeholders. */
export function format(template: string, vars?: Record<string, string | number>): string {
  if (!vars) return template;
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole));
}

export function translate<K extends string>(
  table: Table<K>,
  lang: Lang,
  key: K,
  vars?: Record<string, string | number>,
): string {
  return format(table[lang][key] ?? table.en[key] ?? key, vars);
}

/** `const t = useText(text); t("title")` */
export function useText<K extends string>(table: Table<K>): (key: K, vars?: Record<string, string | number>) => string {
  const lang = useLang();
  return (key, vars) => translate(table, lang, key, vars);
}
