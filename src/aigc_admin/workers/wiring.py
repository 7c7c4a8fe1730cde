"""Concrete adapters for the deployment use cases, chosen by settings (shared by workers and the API)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aigc_admin.adapters.db.repositories import DeploymentRepo, TemplateRepo
from aigc_admin.adapters.events import DeploymentEventPublisher, EventPublisher
from aigc_admin.adapters.fastchat import FastChatController
from aigc_admin.domain.deployments.service import DeploymentRunner, EngineConfig
from aigc_admin.domain.runtime import Runtime, VolumeMount
from aigc_admin.settings import Settings


def runtime_for(settings: Settings) -> Runtime:
    if settings.runtime_backend == "docker":
        from aigc_admin.adapters.runtime.docker import DockerRuntime

        return DockerRuntime.from_settings(settings)
    if settings.runtime_backend == "kubernetes":
        from aigc_admin.adapters.runtime.kubernetes import KubernetesRuntime

        return KubernetesRuntime.from_settings(settings)
    from aigc_admin.adapters.runtime.local import LocalRuntime

    return LocalRuntime.from_settings(settings)


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(python=settings.engine_python_path if settings.runtime_backend == "local" else "python3",
                        image=settings.engine_image, controller_address=settings.service_fschat_controller_host,
                        device=settings.engine_device, start_timeout=float(settings.engine_start_timeout),
                        volumes=tuple(VolumeMount(mount_path=c, host_path=h, read_only=ro)
                                      for h, c, ro in settings.engine_mounts),
                        model_claim=settings.runtime_k8s_volume_name if settings.runtime_backend == "kubernetes"
                        else "", tolerations=tuple(json.loads(settings.runtime_k8s_tolerations or "[]")))


@contextlib.asynccontextmanager
async def deployment_runner(settings: Settings, redis_client: Any, *,
                            runtime: Runtime | None = None) -> AsyncIterator[DeploymentRunner]:
    """A runner wired to the configured runtime and controller; closes its HTTP client on exit."""
    controller = FastChatController(settings.service_fschat_controller_host)
    try:
        yield DeploymentRunner(
            repo=DeploymentRepo(), runtime=runtime or runtime_for(settings), controller=controller,
            templates=TemplateRepo(),
            events=DeploymentEventPublisher(EventPublisher(redis_client, prefix=settings.redis_prefix)),
            engine=engine_config(settings), owner=settings.redis_prefix)
    finally:
        await controller.aclose()
