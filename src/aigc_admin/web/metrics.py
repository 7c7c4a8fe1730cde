"""``GET /metrics``: Prometheus text. Counts from this node's processes (``adapters/metrics.py``) and the
platform's state read for the scrape (deployments, replicas, queues, jobs).

Restricted: with ``metrics.token`` set, a scraper sends it as a bearer token; without one, only clients on this
host (loopback) are answered, so that a platform exposed on a network does not publish its state."""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from fastapi import APIRouter, Request, Response

from aigc_admin.adapters import metrics as pm
from aigc_admin.adapters.db.metrics_state import platform_state

log = logging.getLogger(__name__)
router = APIRouter()
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _allowed(request: Request, token: str) -> bool:
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    return request.client is not None and request.client.host in LOOPBACK


def _rq_counts(jobs: Any) -> dict[tuple[str, ...], float]:
    queue = jobs.queue("default")
    return {("default", "queued"): float(queue.count),
            ("default", "started"): float(queue.started_job_registry.count),
            ("default", "failed"): float(queue.failed_job_registry.count),
            ("default", "scheduled"): float(queue.scheduled_job_registry.count)}


async def _state(platform: Any) -> list[Any]:
    state = await platform_state()
    families = [
        pm.gauge("aigc_deployments", "Deployments by status.", ["status"], state["deployments"]),
        pm.gauge("aigc_deployment_replicas_healthy", "Healthy replicas of the active deployments, by model (the "
                 "health monitor's last probes).", ["model"], state["healthy"]),
        pm.gauge("aigc_worker_queue_length", "Requests waiting in each model worker, from its last probe.",
                 ["model", "worker"], state["queues"]),
        pm.gauge("aigc_vllm_requests", "Requests of each vLLM replica (vllm engine) by state (running, waiting), "
                 "from its /metrics at the last probe.", ["model", "worker", "state"], state["vllm_requests"]),
        pm.gauge("aigc_vllm_kv_cache_usage", "Share of each vLLM replica's KV cache in use (0 to 1), at the last "
                 "probe.", ["model", "worker"], state["kv_cache"]),
        pm.gauge("aigc_finetune_jobs", "Fine-tuning jobs by status.", ["status"], state["finetunes"]),
        pm.gauge("aigc_evaluations", "Evaluations by status.", ["status"], state["evaluations"]),
    ]
    try:
        rq = await asyncio.to_thread(_rq_counts, platform.jobs)
        families.append(pm.gauge("aigc_rq_queue_jobs", "RQ jobs of the platform's queue by state.",
                                 ["queue", "state"], rq))
    except Exception as e:  # Redis away: the rest of the scrape still answers
        log.info("metrics: the RQ queue could not be read: %s", e)
    return families


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    platform = request.app.state.platform
    settings = platform.settings
    if not settings.metrics_enable:
        return Response("metrics are off (metrics.enable)\n", status_code=404, media_type="text/plain")
    if not _allowed(request, settings.metrics_token):
        return Response("a bearer token (metrics.token) is needed, or a request from this host\n", status_code=401,
                        media_type="text/plain", headers={"WWW-Authenticate": "Bearer"})
    try:
        state = await _state(platform)
    except Exception as e:  # the database away: the process counts still answer
        log.info("metrics: the platform's state could not be read: %s", e)
        state = []
    body, content_type = pm.exposition(state)
    return Response(body, media_type=content_type)
