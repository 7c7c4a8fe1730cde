// Data hooks over api/client: a query that reloads when its variables or the tenant change, a mutation runner
// that turns typed payload errors into one message, and a subscription bound to a component's life.
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, gql, payloadError, subscribe } from "../api/client";
import type { TypedDocumentString } from "../gql/graphql";
import { useSession } from "../state/session";

export interface QueryState<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload: () => Promise<void>;
}

export function useQuery<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  options: { skip?: boolean } = {},
): QueryState<TResult> {
  const { tenantId } = useSession();
  const [data, setData] = useState<TResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(!options.skip);
  const key = JSON.stringify(variables ?? {});
  const latest = useRef(0);

  const reload = useCallback(async () => {
    if (options.skip) return;
    const ticket = ++latest.current;
    setLoading(true);
    try {
      const result = await (gql as (d: unknown, v: unknown) => Promise<TResult>)(document, JSON.parse(key));
      if (ticket === latest.current) {
        setData(result);
        setError(null);
      }
    } catch (e) {
      if (ticket === latest.current) setError(e instanceof Error ? e.message : String(e));
    } finally {
      if (ticket === latest.current) setLoading(false);
    }
    // tenantId: the same query in another tenant is another answer
  }, [document, key, tenantId, options.skip]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    void reload();
  }, [reload]);

  return { data, error, loading, reload };
}

/** Run a mutation; resolves to its data, or throws an ApiError carrying the payload's typed errors. */
export async function mutate<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
): Promise<TResult> {
  const data = await (gql as (d: unknown, v: unknown) => Promise<TResult>)(document, variables);
  for (const value of Object.values(data as Record<string, unknown>)) {
    const message = payloadError(value as { errors?: { message: string; field?: string | null }[] } | null);
    if (message) throw new ApiError(message, "INVALID");
  }
  return data;
}

/** Busy flag and error message around async actions (buttons). */
export function useAction(): {
  busy: boolean;
  error: string | null;
  run: <T>(action: () => Promise<T>) => Promise<T | undefined>;
  clear: () => void;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = useCallback(async <T,>(action: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await action();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, clear: () => setError(null) };
}

/** Subscribe while mounted (and enabled); onData sees every event. Re-subscribes when variables change. */
export function useSubscription<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  onData: (data: TResult) => void,
  options: { enabled?: boolean; onError?: (message: string) => void; onComplete?: () => void } = {},
): void {
  const { tenantId } = useSession();
  const handler = useRef(onData);
  handler.current = onData;
  const errorHandler = useRef(options.onError);
  errorHandler.current = options.onError;
  const completeHandler = useRef(options.onComplete);
  completeHandler.current = options.onComplete;
  const key = JSON.stringify(variables ?? {});
  const enabled = options.enabled ?? true;
  useEffect(() => {
    if (!enabled) return;
    let open = true; // graphql-ws reports `complete` after an unsubscribe too: nothing after cleanup counts
    const stop = subscribe(document, JSON.parse(key) as TVariables, {
      next: (data) => open && handler.current(data),
      error: (e) => open && errorHandler.current?.(e.message),
      complete: () => open && completeHandler.current?.(),
    });
    return () => {
      open = false;
      stop();
    };
  }, [document, key, enabled, tenantId]);
}

/** Server-side paging state: offset/limit for a Pagination input. */
export function usePaging(limit = 20): {
  offset: number;
  limit: number;
  setOffset: (offset: number) => void;
  pagination: { offset: number; limit: number };
} {
  const [offset, setOffset] = useState(0);
  return { offset, limit, setOffset, pagination: { offset, limit } };
}
