"""Evaluation jobs: evaluation:<id> runs one, gate:<fine-tuning job> runs a gate's evaluations and decides, and
the periodic evaluations.schedule starts the re-evaluations that are due (and resumes runs whose job was lost)."""

from __future__ import annotations

from typing import Any

from aigc_admin.workers.runner import JobContext


async def run(ctx: JobContext, evaluation_id: int) -> dict[str, Any]:
    await ctx.platform.start_model_calls()
    ev = await ctx.platform.evaluation_runner.run(evaluation_id)
    if ev is None:
        return {"evaluation": evaluation_id, "status": None}
    return {"evaluation": evaluation_id, "status": ev.status.value, "done": ev.done, "failed": ev.failed}


async def gate(ctx: JobContext, fine_tune_job_id: int) -> dict[str, Any]:
    await ctx.platform.start_model_calls()
    decision = await ctx.platform.gate_runner.run(fine_tune_job_id)
    return {"fine_tune_job": fine_tune_job_id, "gate": decision.status.value, "reason": decision.reason}


async def schedule(ctx: JobContext) -> dict[str, Any]:
    """The re-evaluations that are due, and the evaluations whose job was lost, enqueued."""
    resumed = await ctx.platform.evaluations.resume_lost()
    runs = await ctx.platform.evaluations.schedule_due()
    return {"scheduled": [ev.id for ev in runs], "resumed": resumed}
