// Form pieces the shared components do not have yet: a checkbox group and a radio group whose inputs carry a
// `name` (the GraphQL field), used by the assistant, tool and evaluation forms.
import { Fragment, type CSSProperties, type ReactNode } from "react";

const ROW: CSSProperties = { flexDirection: "row", alignItems: "center" };

/** The shared checkbox group, under the name these forms use. */
export { MultiSelect as CheckGroup } from "../../components/ui";

export function RadioGroup<T extends string>({ label, name, value, options, onChange, hint }: {
  label: string; name: string; value: T; options: readonly { value: T; label: string; disabled?: boolean }[];
  onChange: (v: T) => void; hint?: string;
}) {
  return (
    <fieldset className="field multi" style={ROW}>
      <legend>{label}</legend>
      {options.map((o) => (
        <label key={o.value} className="chip-check">
          <input type="radio" name={name} value={o.value} checked={value === o.value} disabled={o.disabled}
            onChange={() => onChange(o.value)} />
          {o.label}
        </label>
      ))}
      {hint ? <small className="muted" style={{ flexBasis: "100%" }}>{hint}</small> : null}
    </fieldset>
  );
}

/** A form's fields one under the other (the theme has no class for it yet). */
export const STACK: CSSProperties = { display: "flex", flexDirection: "column", gap: ".7rem" };

/** Label–value pairs as a two-column definition list (settings of a detail page). */
export function Facts({ rows }: { rows: readonly (readonly [string, ReactNode] | null | false)[] }) {
  return (
    <dl style={{ display: "grid", gridTemplateColumns: "max-content 1fr", gap: ".35rem 1rem", margin: 0 }}>
      {rows.map((row) => (row ? (
        <Fragment key={row[0]}>
          <dt className="muted">{row[0]}</dt>
          <dd style={{ margin: 0, minWidth: 0, overflowWrap: "anywhere" }}>{row[1]}</dd>
        </Fragment>
      ) : null))}
    </dl>
  );
}

/** Related fields under a caption (a bordered fieldset). */
export function Group({ label, children }: { label: string; children: ReactNode }) {
  return (
    <fieldset style={{ border: "1px solid var(--border)", borderRadius: 6, padding: ".5rem .8rem .8rem", margin: 0, minWidth: 0 }}>
      <legend style={{ fontWeight: 600, fontSize: ".9rem", padding: "0 .3rem" }}>{label}</legend>
      {children}
    </fieldset>
  );
}
