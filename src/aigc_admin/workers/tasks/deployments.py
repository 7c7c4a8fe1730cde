"""Deployment jobs: deploy:<id> and undeploy:<id>, and the periodic reconciler."""

from __future__ import annotations

from typing import Any

from aigc_admin.workers.runner import JobContext


async def deploy(ctx: JobContext, deployment_id: int) -> dict[str, Any]:
    runner = ctx.platform.deployment_runner
    try:
        d = await runner.deploy(deployment_id)
    except Exception as e:
        # never leave a deployment PENDING/STARTING because its job crashed
        await runner.fail(deployment_id, f"deploy job crashed: {type(e).__name__}: {e}")
        raise
    await runner.reconcile()
    return {"deployment": deployment_id, "status": d.status.value if d else None, "reason": d.reason if d else ""}


async def undeploy(ctx: JobContext, deployment_id: int) -> dict[str, Any]:
    runner = ctx.platform.deployment_runner
    try:
        d = await runner.undeploy(deployment_id)
    except Exception as e:
        # never leave it STOPPING for good: FAILED can be undeployed (or redeployed) again
        await runner.fail(deployment_id, f"undeploy job crashed: {type(e).__name__}: {e}")
        raise
    await runner.reconcile()
    return {"deployment": deployment_id, "status": d.status.value if d else None}


async def reconcile(ctx: JobContext) -> dict[str, int]:
    return await ctx.platform.deployment_runner.reconcile()
