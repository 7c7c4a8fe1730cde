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
from aigc_admin.domain.deployments.entities import DeploymentStatus
from aigc_admin.domain.runtime import OWNER_LABEL, WorkloadSpec, WorkloadState
from aigc_admin.settings import Settings
from aigc_admin.workers.wiring import deployment_runner

log = logging.getLogger(__name__)
HEALTH_TOPIC = "fastchat:health"
CONTROLLER_WORKLOAD = "fastchat-controller"


def controller_spec(settings: Settings) -> WorkloadSpec:
    url = urlparse(settings.service_fschat_controller_host)
    return WorkloadSpec(name=CONTROLLER_WORKLOAD, labels={OWNER_LABEL: settings.redis_prefix},
                        command=[settings.engine_python_path, "-m", "fastchat.serve.controller",
                                 "--host", url.hostname or "127.0.0.1", "--port", str(url.port or 21001)])


async def ensure_controller(settings: Settings) -> None:
    """Start the managed controller unless it runs (idempotent)."""
    from pathlib import Path

    if not Path(settings.engine_python_path).exists():
        raise FileNotFoundError(f"engine.python {settings.engine_python_path} does not exist: run `make engine`")
    runtime = LocalRuntime.from_settings(settings)
    spec = controller_spec(settings)
    from aigc_admin.domain.runtime import WorkloadHandle

    state = (await runtime.status(WorkloadHandle("local", spec.name))).state
    if state != WorkloadState.RUNNING:
        if state != WorkloadState.MISSING:
            await runtime.stop(WorkloadHandle("local", spec.name))
        log.info("starting the managed FastChat controller at %s", settings.service_fschat_controller_host)
        await runtime.start(spec)


async def probe_once(settings: Settings, redis_client: Any) -> dict[str, Any]:
    """One round: controller liveness, every worker's status; deployments updated; event published."""
    if settings.fastchat_managed:
        try:
            await ensure_controller(settings)
        except Exception:
            log.exception("could not start the managed FastChat controller")
    async with deployment_runner(settings, redis_client) as runner:
        await runner.check_health()
        deployments, _ = await runner.repo.list(
            tenant_id=None, statuses=[DeploymentStatus.RUNNING, DeploymentStatus.DEGRADED], offset=0, limit=10_000)
        assert isinstance(runner.controller, FastChatController)
        alive = await runner.controller.alive()
        workers = []
        for d in deployments:
            for h in await runner.repo.health(d.id, max(1, d.replicas)):
                workers.append({"deployment_id": d.id, "tenant_id": d.tenant_id, "address": h.worker_address,
                                "healthy": h.healthy, "speed": h.speed, "queue_length": h.queue_length,
                                "detail": h.detail})
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
