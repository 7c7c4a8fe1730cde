"""Deploy-for-run: an evaluation of a local model that is not deployed deploys it (an ordinary deployment, so it
counts in the GPU pool like any other), waits until it serves, and undeploys it after the run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aigc_admin.domain.deployments.entities import DeploymentStatus
from aigc_admin.domain.deployments.service import DeploymentRunner, DeploymentService, DeployRequest
from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.evaluations.entities import Evaluation, EvaluationErrorCode

SERVING = (DeploymentStatus.RUNNING, DeploymentStatus.DEGRADED)


class RunDeployments:
    def __init__(self, *, deployments: DeploymentService, runner: DeploymentRunner,
                 refresh_routes: Callable[[], Awaitable[None]], wait_timeout: float = 600.0,
                 poll: float = 1.0) -> None:
        self.deployments = deployments
        self.runner = runner
        self.refresh_routes = refresh_routes  # this process's gateway routes see the new workers at once
        self.wait_timeout = wait_timeout
        self.poll = poll

    async def ensure_serving(self, evaluation: Evaluation) -> int | None:
        assert evaluation.model_id is not None
        active = await self.deployments.repo.active_for_model(evaluation.model_id)
        if active is not None:
            await self._wait_serving(active.id)  # someone else's deployment (starting, maybe): used as it is
            await self.refresh_routes()
            return None
        d = await self.deployments.deploy(
            DeployRequest(model_id=evaluation.model_id, gpus_per_replica=evaluation.config.deploy_gpus),
            tenant_id=evaluation.tenant_id, operator=evaluation.operator or f"evaluation {evaluation.id}")
        # carried out here rather than waiting for a worker: this job may hold the only one; the deploy job
        # enqueued meanwhile finds it done
        started = await self.runner.deploy(d.id)
        if started is None or started.status not in SERVING:
            reason = started.reason if started is not None else "undeployed meanwhile"
            await self.release(d.id)
            raise DomainError(EvaluationErrorCode.INVALID, f"the model could not be deployed for the run: {reason}",
                              "deployForRun")
        await self.refresh_routes()
        return d.id

    async def _wait_serving(self, deployment_id: int) -> None:
        deadline = time.monotonic() + self.wait_timeout
        while True:
            d = await self.deployments.repo.get(deployment_id)
            if d is None or d.status in SERVING:
                return
            if d.status in (DeploymentStatus.FAILED, DeploymentStatus.STOPPED, DeploymentStatus.STOPPING) or \
                    time.monotonic() > deadline:
                raise DomainError(EvaluationErrorCode.INVALID, f"the model's deployment {deployment_id} is "
                                  f"{d.status.value}, not serving", "deployForRun")
            await asyncio.sleep(self.poll)

    async def release(self, deployment_id: int) -> None:
        await self.deployments.undeploy(deployment_id, tenant_id=None)  # recorded and announced as usual
        await self.runner.undeploy(deployment_id)  # stopped now: its GPUs are free when the run ends
