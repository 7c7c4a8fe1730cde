"""Health monitor: every few seconds probe the controller and every deployed worker.

Runs as a background task of the API process. With several API processes, a Redis lock elects one
prober per interval. When ``fastchat.managed`` is on, it also keeps the FastChat controller running
through the local runtime (starting it again when it died).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from aigc_admin.adapters.events import EventPublisher
from aigc_admin.adapters.fastchat import FastChatController
from aigc_admin.adapters.runtime.local import LocalRuntime
from aigc_admin.domain.deployments.entities import Deployment, HealthRecord
from aigc_admin.domain.runtime import OWNER_LABEL, WorkloadSpec, WorkloadState
from aigc_admin.settings import Settings
from aigc_admin.workers.wiring import deployment_runner

log = logging.getLogger(__name__)
HEALTH_TOPIC = "fastchat:health"
CONTROLLER_WORKLOAD = "fastchat-controller"
API_SERVER_WORKLOAD = "fastchat-api"
MANAGED_WORKLOADS = (CONTROLLER_WORKLOAD, API_SERVER_WORKLOAD)


def managed_specs(settings: Settings) -> list[WorkloadSpec]:
    """The FastChat controller and openai_api_server, at the configured addresses."""
    controller = urlparse(settings.service_fschat_controller_host)
    api = urlparse(settings.service_local_ai_host)
    labels = {OWNER_LABEL: settings.redis_prefix}
    python = settings.engine_python_path
    return [
        WorkloadSpec(name=CONTROLLER_WORKLOAD, labels=labels,
                     command=[python, "-m", "fastchat.serve.controller", "--host", controller.hostname or "127.0.0.1",
                              "--port", str(controller.port or 21001)]),
        WorkloadSpec(name=API_SERVER_WORKLOAD, labels=labels,
                     command=[python, "-m", "fastchat.serve.openai_api_server", "--host", api.hostname or "127.0.0.1",
                              "--port", str(api.port or 8000), "--controller-address",
                              settings.service_fschat_controller_host]),
    ]


async def ensure_fastchat(settings: Settings) -> None:
    """Start the managed controller and API server unless they run (idempotent); restart dead ones."""
    from pathlib import Path

    from aigc_admin.domain.runtime import WorkloadHandle

    if not Path(settings.engine_python_path).exists():
        raise FileNotFoundError(f"engine.python {settings.engine_python_path} does not exist: run `make engine`")
    runtime = LocalRuntime.from_settings(settings)
    for spec in managed_specs(settings):
        handle = WorkloadHandle("local", spec.name)
        state = (await runtime.status(handle)).state
        if state != WorkloadState.RUNNING:
            if state != WorkloadState.MISSING:
                await runtime.stop(handle)
            log.info("starting the managed FastChat %s", spec.name)
            await runtime.start(spec)


async def probe_once(settings: Settings, redis_client: Any) -> dict[str, Any]:
    """One round: controller liveness, every worker's status; deployments updated; event published."""
    if settings.fastchat_managed:
        try:
            await ensure_fastchat(settings)
        except Exception:
            log.exception("could not start the managed FastChat processes")
    async with deployment_runner(settings, redis_client) as runner:
        seen: list[tuple[Deployment, HealthRecord]] = []
        await runner.check_health(seen)  # what the probes found goes straight into the event (no N+1 reads)
        assert isinstance(runner.controller, FastChatController)
        alive = await runner.controller.alive()
        workers = [{"deployment_id": d.id, "tenant_id": d.tenant_id, "address": h.worker_address,
                    "healthy": h.healthy, "speed": h.speed, "queue_length": h.queue_length, "detail": h.detail}
                   for d, h in seen]
    event = {"controller_alive": alive, "checked_at": datetime.now(UTC).isoformat(), "workers": workers}
    await EventPublisher(redis_client, prefix=settings.redis_prefix).publish(HEALTH_TOPIC, event)
    return event


async def run_monitor(settings: Settings, redis_client: Any, *, stop: asyncio.Event) -> None:
    lock_key = f"{settings.redis_prefix}:health-monitor"
    interval = max(0.5, settings.health_interval)
    while not stop.is_set():
        try:
            # one prober per interval across API processes
            if await redis_client.set(lock_key, "1", nx=True, px=int(interval * 900)):
                await probe_once(settings, redis_client)
        except Exception:
            log.exception("health probe failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
