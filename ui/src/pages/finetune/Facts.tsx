// Label–value rows (a job's or a dataset's details) as a small table: row headers for the labels.
import type { ReactNode } from "react";

/** Label–value rows. */
export function Facts({ rows, caption }: { rows: [string, ReactNode][]; caption?: string }) {
  return (
    <div className="table-wrap">
      <table className="facts">
        {caption ? <caption className="sr-only">{caption}</caption> : null}
        <tbody>
          {rows.map(([k, v]) => (
            <tr key={k}><th scope="row">{k}</th><td>{v}</td></tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
