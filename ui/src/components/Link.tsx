// An in-app link: a real href (open in a new tab works) that the history router follows on a plain click.
import type { ReactNode } from "react";
import { navigate } from "../router";

export function Link({ to, children, className, testId }: {
  to: string; children: ReactNode; className?: string; testId?: string;
}) {
  return (
    <a href={to} className={className} data-testid={testId} onClick={(e) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      navigate(to);
    }}>{children}</a>
  );
}
