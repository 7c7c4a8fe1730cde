"""The training scheduler: every finetune.interval (2 s) one process (Redis lock) starts waiting fine-tuning jobs while
capacity allows and follows running ones (log lines with a cursor, progress, outcome)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import aigc_admin
from aigc_admin.adapters.db.repositories import DeploymentRepo, TemplateRepo
from aigc_admin.adapters.events import EventPublisher, FineTuneLogPublisher
from aigc_admin.adapters.finetunes import FineTuneLookup, FineTuneRepo, ModelFinisher
from aigc_admin.domain.deployments.service import DeployRequest
from aigc_admin.domain.finetunes.service import FineTuneJob, FineTuneRunner, TrainingConfig
from aigc_admin.gateway.keys import invalidation_channel, publish_invalidation
from aigc_admin.settings import Settings
from aigc_admin.workers.wiring import engine_config, runtime_for

log = logging.getLogger(__name__)
PROGRAM = Path(aigc_admin.__file__).parent / "engine" / "finetune.py"


def training_runner(settings: Settings, redis_client: Any, deployments: Any) -> FineTuneRunner:
    async def deploy(job: FineTuneJob, model_id: int) -> None:
        await deployments.deploy(DeployRequest(model_id=model_id, gpus_per_replica=job.params.proc_per_node),
                                 tenant_id=job.tenant_id, operator=job.operator)

    async def invalidate(key_hash: str) -> None:
        await publish_invalidation(redis_client, invalidation_channel(settings.redis_prefix), key_hash)

    lookup = FineTuneLookup(settings.storage_dir)
    return FineTuneRunner(
        repo=FineTuneRepo(), runtime=runtime_for(settings),
        events=FineTuneLogPublisher(EventPublisher(redis_client, prefix=settings.redis_prefix)),
        finisher=ModelFinisher(deploy=deploy, invalidate_key=invalidate),
        config=TrainingConfig(python=engine_config(settings).python, program=str(PROGRAM),
                              max_running=settings.finetune_max_running, gpu_capacity=settings.runtime_gpu_num,
                              image=settings.engine_image, volumes=engine_config(settings).volumes,
                              storage_dir=str(settings.storage_dir)),
        owner=settings.redis_prefix, tenant_code=lookup.tenant_code, templates=TemplateRepo(),
        other_gpus=DeploymentRepo().gpus_in_use)


async def run_training_scheduler(settings: Settings, redis_client: Any, deployments: Any, *,
                                 stop: asyncio.Event) -> None:
    runner = training_runner(settings, redis_client, deployments)
    lock_key = f"{settings.redis_prefix}:training-scheduler"
    interval = max(0.2, settings.finetune_interval)
    while not stop.is_set():
        try:
            if await redis_client.set(lock_key, "1", nx=True, px=int(interval * 900)):
                await runner.tick()
        except Exception:
            log.exception("training scheduler round failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
