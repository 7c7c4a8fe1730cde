// A page of deployments kept live: the loaded rows, with deploymentsStatusChanged events applied on top as they
// come, and a reload every few seconds while one is on its way somewhere (in case an event was missed).
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useQuery, useSubscription } from "../../hooks/api";
import type { DeploymentStatus, DeploymentsPageDeploymentFragment } from "../../gql/graphql";
import { DeploymentList, DeploymentsChanged } from "./documents";
import { applyOverlay, pruneOverlay, putOverlay, TRANSITIONAL_STATUSES, type Overlay } from "./live";

export type Deployment = DeploymentsPageDeploymentFragment;

export const POLL_MS = 5000;

export interface LiveDeployments {
  /** The loaded page, with live changes applied. */
  rows: Deployment[];
  /** Live changes of deployments the page does not hold (new ones, other pages). */
  extra: Deployment[];
  total: number;
  loading: boolean;
  error: string | null;
  liveError: string | null;
  refresh: () => Promise<void>;
  /** A deployment a mutation answered with: shown at once. */
  put: (d: Deployment) => void;
}

export function useLiveDeployments({ status, offset, limit, enabled, modelIds = null }: {
  status: DeploymentStatus[] | null; offset: number; limit: number; enabled: boolean;
  /** Only these models' deployments (the models on a page, or one model). */
  modelIds?: string[] | null;
}): LiveDeployments {
  const list = useQuery(DeploymentList, { status, pagination: { offset, limit }, modelIds }, { skip: !enabled });
  const [overlay, setOverlay] = useState<Overlay<Deployment>>({});
  const [liveError, setLiveError] = useState<string | null>(null);
  const requestedAt = useRef(0);
  const key = JSON.stringify([status, offset, limit, modelIds]);
  useEffect(() => {
    requestedAt.current = Date.now();
  }, [key]);
  useEffect(() => {
    if (list.data) setOverlay((o) => pruneOverlay(o, requestedAt.current));
  }, [list.data]);

  const put = useCallback((d: Deployment) => setOverlay((o) => putOverlay(o, d, Date.now())), []);
  useSubscription(DeploymentsChanged, {}, (data) => {
    setLiveError(null);
    put(data.deploymentsStatusChanged);
  }, { enabled, onError: setLiveError });

  const { reload } = list;
  const refresh = useCallback(() => {
    requestedAt.current = Date.now();
    return reload();
  }, [reload]);

  const { rows, extra } = useMemo(() => applyOverlay(list.data?.deployments.items ?? [], overlay), [list.data, overlay]);
  const moving = rows.some((d) => TRANSITIONAL_STATUSES.has(d.status)) || extra.some((d) => TRANSITIONAL_STATUSES.has(d.status));
  useEffect(() => {
    if (!enabled || !moving) return;
    const timer = setInterval(() => void refresh(), POLL_MS);
    return () => clearInterval(timer);
  }, [enabled, moving, refresh]);

  return {
    rows, extra, total: list.data?.deployments.totalCount ?? 0, loading: list.loading && !list.data, error: list.error,
    liveError, refresh, put,
  };
}
