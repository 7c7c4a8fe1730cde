// Dark and light: a data-theme attribute on <html> that the CSS variables follow; the first choice follows the OS.
import { useSyncExternalStore } from "react";

export type Theme = "light" | "dark";
const STORAGE_KEY = "aigc.theme";
const listeners = new Set<() => void>();

function initial(): Theme {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (stored === "light" || stored === "dark") return stored;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

let current: Theme = initial();
document.documentElement.dataset.theme = current;

export function setTheme(theme: Theme): void {
  current = theme;
  localStorage.setItem(STORAGE_KEY, theme);
  document.documentElement.dataset.theme = theme;
  for (const listener of listeners) listener();
}

export function useTheme(): Theme {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => current,
  );
}
