"""The platform's state as gauges for a scrape: deployments by status and their healthy replicas, each worker's
queue length from its last probe, training jobs and evaluations by status (a few grouped queries per scrape)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.functions import Count

from aigc_admin.adapters.db import models as m

ACTIVE = ("PENDING", "DEPLOYING", "RUNNING", "DEGRADED")  # deployments whose workers are probed
RECENT = timedelta(minutes=2)  # a probe older than this says nothing about the worker now


async def _by(model: Any, column: str) -> dict[tuple[str, ...], float]:
    rows = await model.all().group_by(column).annotate(n=Count("id")).values_list(column, "n")
    return {(str(status),): float(n) for status, n in rows}


async def platform_state() -> dict[str, dict[tuple[str, ...], float]]:
    """{family name: {label values: value}}: see ``web/metrics.py`` for the names and labels."""
    deployments = await _by(m.ModelDeploy, "status")
    finetunes = await _by(m.FineTuningTrainJob, "train_status")
    evaluations = await _by(m.LLMEvalResult, "status")
    since = datetime.now(UTC) - RECENT
    probes = await (m.ModelHealth.filter(checked_at__gte=since, deploy__status__in=ACTIVE)
                    .order_by("id").values_list("deploy__model__model_name", "worker_address", "healthy",
                                                "queue_length", "deploy__engine", "running", "waiting",
                                                "kv_cache_usage"))
    latest: dict[tuple[str, str], tuple[Any, ...]] = {}
    for model, worker, *found in probes:  # ordered by id: the last probe of each worker wins
        latest[(str(model), str(worker))] = tuple(found)
    healthy: dict[tuple[str, ...], float] = {}
    queues: dict[tuple[str, ...], float] = {}
    vllm: dict[tuple[str, ...], float] = {}
    kv_cache: dict[tuple[str, ...], float] = {}
    for (model, worker), (up, queue, engine, running, waiting, kv) in latest.items():
        healthy[(model,)] = healthy.get((model,), 0.0) + (1.0 if up else 0.0)
        queues[(model, worker)] = float(queue or 0)
        if engine == "vllm" and up:
            vllm[(model, worker, "running")] = float(running or 0)
            vllm[(model, worker, "waiting")] = float(waiting or 0)
            if kv is not None:
                kv_cache[(model, worker)] = float(kv)
    return {"deployments": deployments, "healthy": healthy, "queues": queues, "finetunes": finetunes,
            "evaluations": evaluations, "vllm_requests": vllm, "kv_cache": kv_cache}
