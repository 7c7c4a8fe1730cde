// Dates between <input type="datetime-local"> / <input type="date"> (local, no zone) and the API's ISO values
// (DateTime with a zone, Date as YYYY-MM-DD in UTC).

const pad = (n: number) => String(n).padStart(2, "0");

/** "2025-03-01T14:30" (local time) → an ISO instant with a zone, or null for an empty or invalid value. */
export function localInputToIso(value: string): string | null {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** An ISO instant → "YYYY-MM-DDTHH:mm" in local time for a datetime-local input ("" for none). */
export function isoToLocalInput(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A UTC day "YYYY-MM-DD" `offsetDays` from `now`. */
export function utcDay(now: Date, offsetDays = 0): string {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + offsetDays));
  return d.toISOString().slice(0, 10);
}
