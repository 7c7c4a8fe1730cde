// Layout for forms inside cards and dialogs: fields, actions and messages stacked with the card's spacing
// (and allowed to shrink inside grid columns).
import type { CSSProperties } from "react";

export const stack: CSSProperties = { display: "flex", flexDirection: "column", gap: ".7rem", minWidth: 0 };
