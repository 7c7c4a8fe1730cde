"""Fine-tuning fields: jobs, their logs (query and a replay-then-live subscription), counts."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from functools import partial
from typing import Any

import strawberry
from strawberry.types import Info

from aigc_admin.domain import events as topics
from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.finetunes.service import FINISHED, HyperParams, JobStatus
from aigc_admin.resolvers import live
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import (
    ctx,
    operator,
    optional_id,
    page,
    page_args,
    parse_id,
    request_tenant,
    typed_errors,
)
from aigc_admin.schema import finetunes as f
from aigc_admin.schema.common import Page, Pagination


@strawberry.type
class FineTuneQueries:
    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="The tenant's fine-tuning jobs, newest first.")
    async def fine_tuning_jobs(self, info: Info, status: list[f.FineTuneStatus] | None = None,  # type: ignore[valid-type]
                               pagination: Pagination | None = None) -> Page[f.FineTuneJob]:
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.finetunes.list(
            tenant_id=request_tenant(info), statuses=[JobStatus(s) for s in status] if status else None,
            offset=offset, limit=limit)
        return page([f.FineTuneJob.from_domain(j) for j in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER)
    async def fine_tuning_job(self, info: Info, id: strawberry.ID) -> f.FineTuneJob | None:
        try:
            return f.FineTuneJob.from_domain(await ctx(info).services.finetunes.get(parse_id(id),
                                                                                      tenant_id=request_tenant(info)))
        except DomainError:
            return None

    @strawberry.field(permission_classes=perm.TENANT_MEMBER,
                      description="Log lines after a cursor (seq), oldest first; chart series come from the "
                                  "JSON step lines (step, epoch, loss, learning_rate).")
    async def fine_tuning_logs(self, info: Info, id: strawberry.ID, after: int = 0,
                               limit: int = 1000) -> list[f.FineTuneLogLine]:
        try:
            rows = await ctx(info).services.finetunes.logs(parse_id(id), tenant_id=request_tenant(info), after=after,
                                                           limit=limit)
        except DomainError:
            return []
        return [f.FineTuneLogLine(seq=r.seq, line=r.line) for r in rows]

    @strawberry.field(permission_classes=perm.TENANT_MEMBER,
                      description="Loss, learning-rate and epoch series of a job, one point per logged step.")
    async def fine_tuning_metrics(self, info: Info, id: strawberry.ID) -> list[f.FineTunePoint]:
        try:
            points = await ctx(info).services.finetunes.metrics(parse_id(id), tenant_id=request_tenant(info))
        except DomainError:
            return []
        return [f.FineTunePoint(step=p["step"], epoch=p["epoch"], loss=p["loss"], learning_rate=p["learning_rate"])
                for p in points]

    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="Jobs per status (the dashboard).")
    async def fine_tuning_counts(self, info: Info) -> f.FineTuneCounts:
        counts = await ctx(info).services.finetunes.counts(tenant_id=request_tenant(info))
        return f.FineTuneCounts(**{s.value.lower(): n for s, n in counts.items()})


@strawberry.type
class FineTuneMutations:
    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Request a fine-tune: WAITING until the training scheduler starts it.")
    @typed_errors
    async def create_fine_tuning_job(self, info: Info, input: f.CreateFineTuneJobInput) -> f.FineTuneJobPayload:
        params = HyperParams(
            epochs=input.epochs, train_batch_size=input.train_batch_size, eval_batch_size=input.eval_batch_size,
            accumulation_steps=input.accumulation_steps, learning_rate=input.learning_rate,
            weight_decay=input.weight_decay, warmup_ratio=input.warmup_ratio, model_max_length=input.model_max_length,
            eval_steps=input.eval_steps, save_steps=input.save_steps, save_total_limit=input.save_total_limit,
            logging_steps=input.logging_steps, lora=input.lora, proc_per_node=input.proc_per_node)
        job = await ctx(info).services.finetunes.create(
            tenant_id=request_tenant(info), base_model_id=parse_id(input.base_model_id, "baseModelId"),
            file_id=input.file_id, params=params, suffix=input.suffix,
            channel_id=parse_id(input.channel_id, "channelId") if input.channel_id else None,
            auto_deploy=input.auto_deploy, operator=operator(info), holdout_percent=input.holdout_percent,
            holdout_seed=input.holdout_seed,
            gate=input.gate.to_domain(optional_id(input.gate.judge_model_id, "gate.judgeModelId"))
            if input.gate else None)
        return f.FineTuneJobPayload(job=f.FineTuneJob.from_domain(job))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER, description="Cancel a waiting or running job.")
    @typed_errors
    async def cancel_fine_tuning_job(self, info: Info, id: strawberry.ID) -> f.FineTuneJobPayload:
        job = await ctx(info).services.finetunes.cancel(parse_id(id), tenant_id=request_tenant(info))
        return f.FineTuneJobPayload(job=f.FineTuneJob.from_domain(job))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER, description="Run a failed or cancelled job again.")
    @typed_errors
    async def retry_fine_tuning_job(self, info: Info, id: strawberry.ID) -> f.FineTuneJobPayload:
        job = await ctx(info).services.finetunes.retry(parse_id(id), tenant_id=request_tenant(info))
        return f.FineTuneJobPayload(job=f.FineTuneJob.from_domain(job))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER, description="Delete a finished job.")
    @typed_errors
    async def delete_fine_tuning_job(self, info: Info, id: strawberry.ID) -> f.FineTuneJobPayload:
        await ctx(info).services.finetunes.delete(parse_id(id), tenant_id=request_tenant(info))
        return f.FineTuneJobPayload()


@strawberry.type
class FineTuneSubscriptions:
    @strawberry.subscription(permission_classes=perm.TENANT_MEMBER,
                             description="A job's log from after cursor `after`: the stored lines first, then live "
                                         "ones, with no gap and no duplicate; ends when the job has finished.")
    async def fine_tune_logs(self, info: Info, job_id: strawberry.ID,
                             after: int = 0) -> AsyncGenerator[f.FineTuneLogBatch, None]:
        c = ctx(info)
        tenant = request_tenant(info)
        try:
            job = await c.services.finetunes.get(parse_id(job_id, "jobId"), tenant_id=tenant)
        except DomainError:
            return
        stream = _log_stream(c.services, job, tenant, max(0, after))
        handed_off = False
        try:
            async for item in stream:
                if item is _LIVE:
                    # the per-subscriber part (authorization, replay) is done: the transport relays the live
                    # batches, executed and serialised once per event for all subscribers of the job
                    handed_off = live.hand_off(stream)
                    if handed_off:
                        return
                    continue
                yield item.build()
        finally:
            if not handed_off:
                await stream.aclose()


_LIVE = live.item(None)  # marker: the replay is over, what follows is live


def _batch(status: JobStatus, lines: list[dict[str, Any]]) -> f.FineTuneLogBatch:
    return f.FineTuneLogBatch(status=status, lines=[f.FineTuneLogLine(seq=x["seq"], line=x["line"]) for x in lines])


async def _log_stream(services: Any, job: Any, tenant: int | None, cursor: int) -> AsyncGenerator[live.LiveItem, None]:
    """Stored lines after ``cursor``, ``_LIVE``, then live batches until the job has finished."""
    finetunes = services.finetunes
    # subscribe first, then replay: a line published meanwhile is either replayed or seen live
    async with services.events.subscribe(topics.finetune(job.id)) as events:
        while True:
            stored = await finetunes.logs(job.id, tenant_id=tenant, after=cursor, limit=5000)
            if not stored:
                break
            cursor = stored[-1].seq
            replayed = f.FineTuneLogBatch(status=job.status, lines=[f.FineTuneLogLine(seq=x.seq, line=x.line)
                                                                      for x in stored])
            yield live.item(replayed)
        del stored
        job = await finetunes.get(job.id, tenant_id=tenant)
        if job.status in FINISHED and cursor >= job.log_cursor:
            yield live.item(f.FineTuneLogBatch(status=job.status, lines=[]))
            return
        status = job.status
        job_id = job.id
        del job
        yield _LIVE
        async for event in events:
            event_lines = event.get("lines", [])
            status = JobStatus(event.get("status", status.value))
            if not event_lines or event_lines[0]["seq"] == cursor + 1:  # the event as published: shared
                if event_lines or status in FINISHED:
                    cursor = event_lines[-1]["seq"] if event_lines else cursor
                    yield live.LiveItem(partial(_batch, status, event_lines), shared_by=event)
            else:
                lines = [x for x in event_lines if x["seq"] > cursor]
                if lines and lines[0]["seq"] > cursor + 1:  # missed while Redis was away: read them back
                    missing = await finetunes.logs(job_id, tenant_id=tenant, after=cursor,
                                                   limit=lines[0]["seq"] - cursor - 1)
                    lines = [{"seq": x.seq, "line": x.line} for x in missing] + lines
                if lines or status in FINISHED:
                    cursor = lines[-1]["seq"] if lines else cursor
                    yield live.LiveItem(partial(_batch, status, lines))
            if status in FINISHED:
                return
