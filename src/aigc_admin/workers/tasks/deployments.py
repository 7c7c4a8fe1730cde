"""Deployment jobs: deploy:<id> and undeploy:<id>, and the periodic reconciler."""

from __future__ import annotations

from typing import Any

from aigc_admin.domain.deployments.entities import Deployment
from aigc_admin.workers.runner import JobContext


async def deploy(ctx: JobContext, deployment_id: int) -> dict[str, Any]:
    d = await _carry_out(ctx, "deploy", deployment_id)
    return {"deployment": deployment_id, "status": d.status.value if d else None, "reason": d.reason if d else ""}


async def undeploy(ctx: JobContext, deployment_id: int) -> dict[str, Any]:
    d = await _carry_out(ctx, "undeploy", deployment_id)
    return {"deployment": deployment_id, "status": d.status.value if d else None}


async def reconcile(ctx: JobContext) -> dict[str, int]:
    return await ctx.platform.deployment_runner.reconcile()


async def _carry_out(ctx: JobContext, verb: str, deployment_id: int) -> Deployment | None:
    runner = ctx.platform.deployment_runner
    try:
        d: Deployment | None = await getattr(runner, verb)(deployment_id)
    except Exception as e:
        # never leave a deployment PENDING/STARTING/STOPPING for good because its job crashed: FAILED can be
        # redeployed or undeployed again
        await runner.fail(deployment_id, f"{verb} job crashed: {type(e).__name__}: {e}")
        raise
    await runner.reconcile()
    return d
