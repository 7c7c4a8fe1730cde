// REST beside GraphQL: downloads (file content, dataset exports) need the session's Authorization and X-Tenant-Id
// headers, so they are fetched and saved through a Blob URL rather than opened as plain links.
import { ApiError, authHeaders } from "../../api/client";
import { filenameFromDisposition } from "./lines";

/** GET with the session's headers; a failure's {"error": {code, message}} becomes an ApiError. */
export async function authedFetch(url: string): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { headers: authHeaders() });
  } catch {
    throw new ApiError("network", "NETWORK");
  }
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
    throw new ApiError(body.error?.message ?? `HTTP ${response.status}`, body.error?.code ?? "HTTP", response.status);
  }
  return response;
}

/** Offer a blob as a download under `name`. */
export function saveBlob(blob: Blob, name: string): void {
  const href = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = href;
  a.download = name;
  a.rel = "noopener";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}

/** Fetch a REST resource with the headers and save it (its Content-Disposition name, else `fallbackName`). */
export async function downloadWithAuth(url: string, fallbackName: string): Promise<void> {
  const response = await authedFetch(url);
  const blob = await response.blob();
  saveBlob(blob, filenameFromDisposition(response.headers.get("Content-Disposition"), fallbackName));
}

/** The content of a stored file as a stream (read only as far as needed). */
export async function fileContentStream(contentUrl: string): Promise<ReadableStream<Uint8Array> | null> {
  return (await authedFetch(contentUrl)).body;
}
