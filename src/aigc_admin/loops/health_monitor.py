"""Health monitor: every few seconds probe the controller and every deployed worker, record what was found on
the deployments and publish it (the ``fastchatHealth`` subscription). When ``fastchat.managed`` is on it also
keeps the FastChat controller and API server running (starting them again when they died). Live workers that a
(restarted) controller does not list are registered again at once, instead of at their next heart beat (45 s)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from aigc_admin.adapters.fastchat.controller import FastChatController, FastChatError
from aigc_admin.adapters.fastchat.managed import ManagedFastChat
from aigc_admin.domain import events as topics
from aigc_admin.domain.deployments.entities import Deployment, Engine, HealthRecord
from aigc_admin.domain.deployments.service import DeploymentRunner
from aigc_admin.domain.events import Publisher

log = logging.getLogger(__name__)


class HealthMonitor:
    def __init__(self, *, runner: DeploymentRunner, controller: FastChatController, events: Publisher,
                 managed: ManagedFastChat | None = None) -> None:
        self.runner = runner
        self.controller = controller
        self.events = events
        self.managed = managed

    async def probe_once(self) -> dict[str, Any]:
        """One round: controller liveness, every worker's status; deployments updated; event published."""
        if self.managed is not None:
            try:
                await self.managed.ensure()
            except Exception:
                log.exception("could not start the managed FastChat processes")
        seen: list[tuple[Deployment, HealthRecord]] = []
        await self.runner.check_health(seen)  # what the probes found goes straight into the event (no N+1 reads)
        alive = await self.controller.alive()
        if alive:
            await self._register_forgotten(seen)
        workers = [{"deployment_id": d.id, "tenant_id": d.tenant_id, "address": h.worker_address,
                    "healthy": h.healthy, "speed": h.speed, "queue_length": h.queue_length, "detail": h.detail,
                    "running": h.running, "waiting": h.waiting, "kv_cache_usage": h.kv_cache_usage}
                   for d, h in seen]
        event = {"controller_alive": alive, "checked_at": datetime.now(UTC).isoformat(), "workers": workers}
        await self.events.publish(topics.FASTCHAT_HEALTH, event)
        return event

    async def _register_forgotten(self, seen: list[tuple[Deployment, HealthRecord]]) -> None:
        """Register the healthy workers whose model the controller does not list (it restarted)."""
        # vLLM's own servers (the vllm engine) are not FastChat workers: the controller never lists them
        missing = [(d, h) for d, h in seen if h.healthy and h.worker_address and d.engine != Engine.VLLM]
        if not missing:
            return
        try:
            listed = set(await self.controller.list_models())
            for deployment, health in missing:
                if deployment.model_name in listed:
                    continue
                status = await self.controller.worker_status(health.worker_address)
                if status is not None:
                    await self.controller.register_worker(health.worker_address, status)
                    log.info("registered worker %s (%s) with the controller again", health.worker_address,
                             deployment.model_name)
        except FastChatError as e:
            log.warning("could not register the workers the controller forgot: %s", e)
