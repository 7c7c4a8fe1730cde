"""Evaluation fields: jobs (create, cancel, retry, delete), per-sample results, comparisons, live progress."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import strawberry
from strawberry.types import Info

from aigc_admin.domain import events as topics
from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.evaluations.entities import FINISHED, EvalStatus, SampleFilter
from aigc_admin.domain.evaluations.service import CreateEvaluation
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
from aigc_admin.schema import evaluations as e
from aigc_admin.schema.common import Page, Pagination

RESYNC_SECONDS = 5.0  # with no event for this long, the state is read again (events lost while Redis was away)


@strawberry.type
class EvaluationQueries:
    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="The tenant's evaluations, newest first.")
    async def evaluations(self, info: Info, status: list[e.EvaluationStatus] | None = None,  # type: ignore[valid-type]
                          model_id: strawberry.ID | None = None, fine_tuning_job_id: strawberry.ID | None = None,
                          pagination: Pagination | None = None) -> Page[e.Evaluation]:
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.evaluations.list(
            tenant_id=request_tenant(info), statuses=[EvalStatus(s) for s in status] if status else None,
            model_id=optional_id(model_id, "modelId"), fine_tune_job_id=optional_id(fine_tuning_job_id,
                                                                                   "fineTuningJobId"),
            offset=offset, limit=limit)
        return page([e.Evaluation.from_domain(x) for x in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER)
    async def evaluation(self, info: Info, id: strawberry.ID) -> e.Evaluation | None:
        try:
            return e.Evaluation.from_domain(await ctx(info).services.evaluations.get(
                parse_id(id), tenant_id=request_tenant(info)))
        except DomainError:
            return None

    @strawberry.field(permission_classes=perm.TENANT_MEMBER,
                      description="An evaluation's samples by position: all, the failed ones, or those whose score on "
                                  "a metric (the first one by default) is below a value.")
    async def evaluation_samples(self, info: Info, id: strawberry.ID, failed_only: bool = False,
                                 metric: e.EvaluationMetric | None = None,  # type: ignore[valid-type]
                                 below: float | None = None,
                                 pagination: Pagination | None = None) -> Page[e.EvaluationSample]:
        offset, limit = page_args(pagination)
        service = ctx(info).services.evaluations
        tenant = request_tenant(info)
        pk = parse_id(id)
        try:
            ev = await service.get(pk, tenant_id=tenant)
        except DomainError:
            return page([], 0, offset, limit)
        chosen = e.metric_name(metric) if metric is not None else None
        if chosen is None and below is not None:
            chosen = ev.primary_metric
        rows, total = await service.samples(pk, tenant_id=tenant, flt=SampleFilter(failed_only, chosen, below),
                                            offset=offset, limit=limit)
        return page([e.EvaluationSample.from_domain(s) for s in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER,
                      description="Evaluations of the same samples (2 to 10) side by side: each metric's means with "
                                  "95 % intervals, the paired difference of each to the first, and a page of the "
                                  "samples they scored differently.")
    async def compare_evaluations(self, info: Info, ids: list[strawberry.ID],
                                  pagination: Pagination | None = None) -> e.EvaluationComparison:
        offset, limit = page_args(pagination)
        comparison = await ctx(info).services.evaluations.compare(
            [parse_id(i, "ids") for i in ids], tenant_id=request_tenant(info), offset=offset, limit=limit)
        return e.EvaluationComparison.from_domain(comparison)


@strawberry.type
class EvaluationMutations:
    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Score a model on a file's samples: PENDING until a worker runs it.")
    @typed_errors
    async def create_evaluation(self, info: Info, input: e.CreateEvaluationInput) -> e.EvaluationPayload:
        judge = input.judge
        req = CreateEvaluation(
            model_id=parse_id(input.model_id, "modelId"), channel_id=parse_id(input.channel_id, "channelId"),
            file_id=input.file_id, metrics=[e.metric_name(m) for m in input.metrics],
            holdout_percent=input.holdout_percent,
            holdout_seed=input.holdout_seed, temperature=input.temperature, max_tokens=input.max_tokens,
            concurrency=input.concurrency, timeout_seconds=input.timeout_seconds, retries=input.retries,
            judge_model_id=parse_id(judge.model_id, "judge.modelId") if judge else None,
            judge_rubric=judge.rubric if judge else "", judge_max_tokens=judge.max_tokens if judge else 512,
            baseline_model_id=optional_id(input.baseline_model_id, "baselineModelId"),
            deploy_for_run=input.deploy_for_run, deploy_gpus=input.deploy_gpus, repeat_hours=input.repeat_hours,
            remark=input.remark)
        ev = await ctx(info).services.evaluations.create(req, tenant_id=request_tenant(info),
                                                         operator=operator(info))
        return e.EvaluationPayload(evaluation=e.Evaluation.from_domain(ev))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Cancel a pending or running evaluation (what was scored is kept).")
    @typed_errors
    async def cancel_evaluation(self, info: Info, id: strawberry.ID) -> e.EvaluationPayload:
        ev = await ctx(info).services.evaluations.cancel(parse_id(id), tenant_id=request_tenant(info))
        return e.EvaluationPayload(evaluation=e.Evaluation.from_domain(ev))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Run a finished evaluation's failed (or never run) samples again.")
    @typed_errors
    async def retry_evaluation(self, info: Info, id: strawberry.ID) -> e.EvaluationPayload:
        ev = await ctx(info).services.evaluations.retry(parse_id(id), tenant_id=request_tenant(info))
        return e.EvaluationPayload(evaluation=e.Evaluation.from_domain(ev))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Delete a finished evaluation and its samples (a repeating one stops "
                                     "repeating).")
    @typed_errors
    async def delete_evaluation(self, info: Info, id: strawberry.ID) -> e.EvaluationPayload:
        await ctx(info).services.evaluations.delete(parse_id(id), tenant_id=request_tenant(info))
        return e.EvaluationPayload()


@strawberry.type
class EvaluationSubscriptions:
    @strawberry.subscription(permission_classes=perm.TENANT_MEMBER,
                             description="An evaluation's progress: its current state first, then every batch of "
                                         "results as it is written (seq increases); ends when it has finished.")
    async def evaluation_progress(self, info: Info, id: strawberry.ID) -> AsyncGenerator[e.EvaluationProgress, None]:
        c = ctx(info)
        tenant = request_tenant(info)
        service = c.services.evaluations
        try:
            ev = await service.get(parse_id(id), tenant_id=tenant)
        except DomainError:
            return
        # subscribe, then read the state: an event published meanwhile is either in the state or seen live
        async with c.services.events.subscribe(topics.evaluation(ev.id)) as events:
            ev = await service.get(ev.id, tenant_id=tenant)
            seq, status = ev.progress_seq, ev.status
            yield e.EvaluationProgress.from_payload(ev.id, ev.progress_payload())
            if status in FINISHED:
                return
            async for payload in _with_resync(events, lambda: service.get(ev.id, tenant_id=tenant)):
                if payload["seq"] <= seq:
                    continue
                seq, status = payload["seq"], EvalStatus(payload["status"])
                yield e.EvaluationProgress.from_payload(ev.id, payload)
                if status in FINISHED:
                    return


async def _with_resync(events: AsyncIterator[dict[str, Any]], read: Any) -> AsyncGenerator[dict[str, Any], None]:
    """The events, and the stored state whenever none came for ``RESYNC_SECONDS`` (so that a subscriber does not
    wait for good on an event lost while Redis was away; the caller drops what it has seen by seq)."""
    iterator = aiter(events)
    while True:
        try:
            yield await asyncio.wait_for(anext(iterator), RESYNC_SECONDS)
        except TimeoutError:
            with contextlib.suppress(DomainError):
                yield (await read()).progress_payload()
        except StopAsyncIteration:
            return
