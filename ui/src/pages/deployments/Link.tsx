// An in-app link: a real href (open in a new tab works) that navigates without a reload.
import type { ReactNode } from "react";
import { navigate } from "../../router";

export function Link({ to, children, testId }: { to: string; children: ReactNode; testId?: string }) {
  return (
    <a href={to} data-testid={testId} onClick={(e) => {
      if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
      e.preventDefault();
      navigate(to);
    }}>{children}</a>
  );
}
