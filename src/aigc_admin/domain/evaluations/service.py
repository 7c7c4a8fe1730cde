"""Evaluation jobs on the API side: create (validated, samples read and stored, the run enqueued), list, get,
cancel, retry, delete; per-sample results with filters, the mismatches, and the comparison of evaluations that
scored the same samples. The run itself is ``runner.EvaluationRunner`` in a worker."""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aigc_admin.domain.errors import DomainError, Invalid, NotFound
from aigc_admin.domain.evaluations import judge as judging
from aigc_admin.domain.evaluations.entities import (
    FINISHED,
    EvalStatus,
    Evaluation,
    EvaluationErrorCode,
    EvaluationLookup,
    EvaluationRepository,
    JobEnqueuer,
    JudgeConfig,
    ProgressEvents,
    Role,
    RunConfig,
    Sample,
    SampleFilter,
    SampleInput,
)
from aigc_admin.domain.evaluations.metrics import ALL_METRICS, JUDGE_METRICS
from aigc_admin.domain.evaluations.samples import read_samples
from aigc_admin.domain.evaluations.stats import Estimate, bootstrap, paired_difference

log = logging.getLogger(__name__)

RUN_JOB = "aigc_admin.workers.tasks.evaluations:run"
MAX_COMPARED = 10
RANGES: dict[str, tuple[float, float]] = {
    "concurrency": (1, 64), "temperature": (0.0, 2.0), "maxTokens": (1, 32_768), "timeoutSeconds": (1, 3600),
    "retries": (0, 10), "judge.maxTokens": (16, 8192), "repeatHours": (0, 8760), "deployGpus": (0, 64)}
CHAT_PURPOSES = ("fine-tune", "fine-tune-eval")
ACTIVE_JOB = ("queued", "started", "scheduled", "deferred")  # rq's states of a job that will still run


def run_job_id(pk: int) -> str:
    return f"evaluation:{pk}"


def run_timeout(total: int) -> int:
    """The RQ timeout of a run: generous (a slow model on a big set), never unbounded."""
    return min(7 * 86_400, 3600 + 60 * total)


@dataclass(frozen=True)
class CreateEvaluation:
    model_id: int
    channel_id: int
    file_id: str
    metrics: builtins.list[str]
    holdout_percent: float = 0.0  # a fine-tune file: the held-out percentage that is evaluated
    holdout_seed: int = 0
    temperature: float = 0.0
    max_tokens: int = 256
    concurrency: int = 4
    timeout_seconds: float = 120.0
    retries: int = 2
    judge_model_id: int | None = None
    judge_rubric: str = ""
    judge_max_tokens: int = 512
    baseline_model_id: int | None = None
    deploy_for_run: bool = False
    deploy_gpus: int = 0
    repeat_hours: int = 0
    remark: str = ""
    # set by a fine-tuning job's gate, not by API callers
    fine_tune_job_id: int | None = None
    role: Role = Role.NONE
    any_tenant_model: bool = False


def _error(code: EvaluationErrorCode, message: str, field: str | None = None) -> DomainError:
    return DomainError(code, message, field)


def check_metrics(metrics: builtins.list[str], field: str = "metrics") -> None:
    if not metrics:
        raise Invalid(field, "name at least one metric")
    unknown = [m for m in metrics if m not in ALL_METRICS]
    if unknown:
        raise Invalid(field, f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(ALL_METRICS)}")
    if len(set(metrics)) != len(metrics):
        raise Invalid(field, "a metric is named twice")


def fingerprint(samples: builtins.list[SampleInput]) -> str:
    """Of the samples' inputs and references, in order: evaluations with the same one scored the same data."""
    digest = hashlib.sha256()
    for s in samples:
        digest.update(json.dumps([s.messages, s.reference], ensure_ascii=False, sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def summarise(metrics: tuple[str, ...], scored: builtins.list[tuple[int, dict[str, float]]]) -> dict[str, Any]:
    """Per metric: the mean of the scored samples with its 95 % bootstrap interval."""
    out: dict[str, Any] = {}
    for metric in metrics:
        est = bootstrap([s[metric] for _, s in scored if metric in s])
        out[metric] = {"mean": est.mean, "low": est.low, "high": est.high, "n": est.n}
    return out


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    estimates: builtins.list[Estimate]  # one per evaluation, in the order asked
    deltas: builtins.list[Estimate | None]  # paired (evaluation i - the first) on the samples both scored


@dataclass(frozen=True)
class SampleDiff:
    idx: int
    samples: builtins.list[Sample | None]  # one per evaluation (None: not scored there)


@dataclass(frozen=True)
class Comparison:
    evaluations: builtins.list[Evaluation]
    metrics: builtins.list[MetricComparison]
    disagreements_total: int
    disagreements: builtins.list[SampleDiff] = field(default_factory=list)


class EvaluationService:
    def __init__(self, *, repo: EvaluationRepository, lookup: EvaluationLookup, jobs: JobEnqueuer,
                 events: ProgressEvents | None = None) -> None:
        self.repo = repo
        self.lookup = lookup
        self.jobs = jobs
        self.events = events

    async def get(self, pk: int, *, tenant_id: int) -> Evaluation:
        ev = await self.repo.get(pk)
        if ev is None or ev.tenant_id != tenant_id:
            raise NotFound("evaluation", pk)
        return ev

    async def list(self, *, tenant_id: int, statuses: builtins.list[EvalStatus] | None = None,
                   model_id: int | None = None, fine_tune_job_id: int | None = None, offset: int = 0,
                   limit: int = 20) -> tuple[builtins.list[Evaluation], int]:
        return await self.repo.list(tenant_id=tenant_id, statuses=statuses, model_id=model_id,
                                    fine_tune_job_id=fine_tune_job_id, offset=offset, limit=limit)

    async def create(self, req: CreateEvaluation, *, tenant_id: int, operator: str = "",
                     enqueue: bool = True) -> Evaluation:
        """Validate everything, read the samples, store the evaluation with them (one transaction) and enqueue the
        run: a refused request creates nothing."""
        check_metrics(req.metrics)
        self._check_ranges(req)
        uses_judge = any(m in JUDGE_METRICS for m in req.metrics)
        if uses_judge and req.judge_model_id is None:
            raise Invalid("judge.modelId", "the judge and pairwise metrics need a judge model")
        if not uses_judge and req.judge_model_id is not None:
            raise Invalid("judge.modelId", "a judge is only used by the judge and pairwise metrics")
        pairwise = "pairwise" in req.metrics
        if pairwise != (req.baseline_model_id is not None):
            raise Invalid("baselineModelId", "the pairwise metric compares with a baseline model, and only it "
                                             "uses one" if pairwise else "only the pairwise metric uses a "
                                                                         "baseline model")
        if req.judge_rubric:
            if "judge" in req.metrics and pairwise:
                raise Invalid("judge.rubric", "one rubric cannot serve both judge and pairwise: evaluate them "
                                              "separately, or keep the built-in rubrics")
            judging.check_rubric(req.judge_rubric, pairwise)

        model = await self.lookup.model(req.model_id, tenant_id)
        if model is None:
            raise NotFound("model", req.model_id, "modelId")
        allowed = await self.lookup.channel_models(req.channel_id, tenant_id)
        if allowed is None:
            raise NotFound("channel", req.channel_id, "channelId")
        if not req.any_tenant_model and model.name not in allowed:
            raise _error(EvaluationErrorCode.NOT_ALLOWED, f"the channel may not call model {model.name}: grant "
                         "it to the channel first", "modelId")
        if req.deploy_for_run and not model.deployable:
            raise Invalid("deployForRun", "only a local model with a model path can be deployed for the run")
        judge = None
        if req.judge_model_id is not None:
            judge_model = await self.lookup.model(req.judge_model_id, tenant_id)
            if judge_model is None:
                raise NotFound("judge model", req.judge_model_id, "judge.modelId")
            if judge_model.name not in allowed:
                raise _error(EvaluationErrorCode.NOT_ALLOWED, f"the channel may not call the judge "
                             f"{judge_model.name}: a judge is called through the channel", "judge.modelId")
            judge = JudgeConfig(judge_model.id, judge_model.name, req.judge_rubric, req.judge_max_tokens)
        baseline_name = ""
        if req.baseline_model_id is not None:
            baseline = await self.lookup.model(req.baseline_model_id, tenant_id)
            if baseline is None:
                raise NotFound("baseline model", req.baseline_model_id, "baselineModelId")
            if not req.any_tenant_model and baseline.name not in allowed:
                raise _error(EvaluationErrorCode.NOT_ALLOWED, f"the channel may not call the baseline "
                             f"{baseline.name}", "baselineModelId")
            baseline_name = baseline.name

        source = await self.lookup.file(req.file_id, tenant_id)
        if source is None:
            raise NotFound("file", req.file_id, "fileId")
        if source.purpose not in CHAT_PURPOSES:
            raise Invalid("fileId", f"a {source.purpose} file cannot be evaluated: upload a chat JSONL file of "
                                    "purpose fine-tune-eval, or use a fine-tune file with holdoutPercent")
        if source.purpose == "fine-tune" and not 0 < req.holdout_percent < 100:
            raise Invalid("holdoutPercent", "a fine-tune file is evaluated on a held-out part: holdoutPercent "
                                            "must be above 0 and below 100")
        if source.purpose == "fine-tune-eval" and req.holdout_percent:
            raise Invalid("holdoutPercent", "a fine-tune-eval file is evaluated whole: leave holdoutPercent at 0")
        samples = await read_samples(self.lookup.lines(req.file_id, tenant_id), percent=req.holdout_percent,
                                     seed=req.holdout_seed)

        config = RunConfig(temperature=req.temperature, max_tokens=req.max_tokens,
                           timeout_seconds=req.timeout_seconds, retries=req.retries, judge=judge,
                           baseline_model_id=req.baseline_model_id, baseline_model_name=baseline_name,
                           deploy_gpus=req.deploy_gpus, any_tenant_model=req.any_tenant_model)
        ev = await self.repo.create(
            samples, uuid=f"eval-{secrets.token_hex(12)}", tenant_id=tenant_id, status=EvalStatus.PENDING,
            model_id=model.id, model_name=model.name, channel_id=req.channel_id, metrics=tuple(req.metrics),
            config=config, concurrency=req.concurrency, source_file=req.file_id,
            dataset_type="train" if source.purpose == "fine-tune" else "custom",
            holdout_percent=req.holdout_percent, holdout_seed=req.holdout_seed, total=len(samples),
            fingerprint=fingerprint(samples), fine_tune_job_id=req.fine_tune_job_id, role=req.role,
            deploy_for_run=req.deploy_for_run, repeat_hours=req.repeat_hours, operator=operator,
            remark=req.remark)
        if enqueue:
            await self._enqueue(ev, delete_on_failure=True)
        return ev

    @staticmethod
    def _check_ranges(req: CreateEvaluation) -> None:
        values = {"concurrency": req.concurrency, "temperature": req.temperature, "maxTokens": req.max_tokens,
                  "timeoutSeconds": req.timeout_seconds, "retries": req.retries,
                  "judge.maxTokens": req.judge_max_tokens, "repeatHours": req.repeat_hours,
                  "deployGpus": req.deploy_gpus}
        for name, value in values.items():
            low, high = RANGES[name]
            if not low <= value <= high:
                raise Invalid(name, f"{name} must be between {low:g} and {high:g}")
        if not 0 <= req.holdout_percent < 100:
            raise Invalid("holdoutPercent", "holdoutPercent must be at least 0 and below 100")
        if len(req.remark) > 255:
            raise Invalid("remark", "remark: at most 255 characters")

    async def _enqueue(self, ev: Evaluation, *, delete_on_failure: bool) -> None:
        try:
            self.jobs.enqueue(RUN_JOB, job_id=run_job_id(ev.id), timeout=run_timeout(ev.total), evaluation_id=ev.id)
        except Exception as e:
            log.error("could not enqueue evaluation %s: %s", ev.id, e)
            if delete_on_failure:
                await self.repo.delete(ev.id)
            else:
                await self.repo.update(ev.id, status=EvalStatus.FAILED, error_message="the run could not be "
                                       "enqueued: the queue (Redis) is unavailable")
            raise _error(EvaluationErrorCode.QUEUE_UNAVAILABLE, "the job queue (Redis) is unavailable; try again",
                         None) from None

    async def cancel(self, pk: int, *, tenant_id: int) -> Evaluation:
        ev = await self.get(pk, tenant_id=tenant_id)
        if ev.status in FINISHED:
            raise _error(EvaluationErrorCode.NOT_CANCELLABLE, f"the evaluation is {ev.status.value}", "id")
        # a running one stops at its runner's next check (it owns the calls in flight and the deployment)
        ev = await self.repo.update(pk, status=EvalStatus.CANCELLED, completed_at=datetime.now(UTC),
                                    progress_seq=ev.progress_seq + 1)
        if self.events is not None:
            await self.events.progress(ev)
        return ev

    async def retry(self, pk: int, *, tenant_id: int) -> Evaluation:
        """Run the samples that failed or were never run again; the scored ones are kept."""
        ev = await self.get(pk, tenant_id=tenant_id)
        if ev.status not in FINISHED:
            raise _error(EvaluationErrorCode.NOT_FINISHED, "the evaluation is still running", "id")
        if ev.status == EvalStatus.SUCCEEDED and ev.failed == 0:
            raise Invalid("id", "every sample is scored: nothing to retry")
        await self.repo.reset_unfinished(pk)
        ev = await self.repo.update(pk, status=EvalStatus.PENDING, failed=0, error_message="", completed_at=None,
                                    progress_seq=ev.progress_seq + 1)
        await self._enqueue(ev, delete_on_failure=False)
        if self.events is not None:
            await self.events.progress(ev)
        return ev

    async def delete(self, pk: int, *, tenant_id: int) -> None:
        ev = await self.get(pk, tenant_id=tenant_id)
        if ev.status not in FINISHED:
            raise _error(EvaluationErrorCode.NOT_FINISHED, "cancel the evaluation before deleting it", "id")
        await self.repo.delete(pk)

    async def remove_tenant(self, tenant_id: int) -> int:
        """Delete every evaluation of a tenant being deleted (a running one stops at its next batch); returns how
        many."""
        removed = 0
        while True:
            rows, _ = await self.repo.list(tenant_id=tenant_id, offset=0, limit=100)
            if not rows:
                return removed
            for ev in rows:
                await self.repo.delete(ev.id)
                removed += 1

    async def samples(self, pk: int, *, tenant_id: int, flt: SampleFilter, offset: int = 0,
                      limit: int = 50) -> tuple[builtins.list[Sample], int]:
        ev = await self.get(pk, tenant_id=tenant_id)
        self._check_filter(ev, flt)
        return await self.repo.samples(pk, flt, offset=offset, limit=limit)

    @staticmethod
    def _check_filter(ev: Evaluation, flt: SampleFilter) -> None:
        if flt.below is not None and (flt.metric or ev.primary_metric) not in ev.metrics:
            raise Invalid("metric", f"the evaluation has no metric {flt.metric}; it has {', '.join(ev.metrics)}")

    async def mismatches(self, pk: int, *, tenant_id: int, metric: str | None = None,
                         below: float = 1.0) -> AsyncIterator[dict[str, Any]]:
        """The samples whose score on ``metric`` (the primary one by default) is below ``below`` (1: not a perfect
        score), each as a chat line (input + reference, reusable as a fine-tune-eval file) with the answer and
        its scores. Samples that failed have no score and are not mismatches."""
        ev = await self.get(pk, tenant_id=tenant_id)
        flt = SampleFilter(metric=metric or ev.primary_metric, below=below)
        self._check_filter(ev, flt)
        return self._mismatch_lines(pk, flt)

    async def _mismatch_lines(self, pk: int, flt: SampleFilter) -> AsyncIterator[dict[str, Any]]:
        offset = 0
        while True:
            rows, _ = await self.repo.samples(pk, flt, offset=offset, limit=500)
            for s in rows:
                yield {"messages": [*s.messages, {"role": "assistant", "content": s.reference}], "output": s.output,
                       "scores": s.scores, "line": s.line}
            if len(rows) < 500:
                return
            offset += len(rows)

    async def compare(self, pks: builtins.list[int], *, tenant_id: int, offset: int = 0,
                      limit: int = 20) -> Comparison:
        """Evaluations of the same samples side by side: each one's means with intervals, the paired difference of
        each to the first, and the samples where their scores disagree."""
        if not 2 <= len(pks) <= MAX_COMPARED or len(set(pks)) != len(pks):
            raise Invalid("ids", f"compare 2 to {MAX_COMPARED} different evaluations")
        evs = [await self.get(pk, tenant_id=tenant_id) for pk in pks]
        if len({e.fingerprint for e in evs}) != 1:
            raise _error(EvaluationErrorCode.NOT_COMPARABLE, "the evaluations did not score the same samples "
                         "(same file, same held-out split)", "ids")
        metrics = [m for m in evs[0].metrics if all(m in e.metrics for e in evs[1:])]
        if not metrics:
            raise _error(EvaluationErrorCode.NOT_COMPARABLE, "the evaluations have no metric in common", "ids")
        scores = [dict(await self.repo.all_scores(e.id)) for e in evs]
        comparisons = []
        for metric in metrics:
            per = [{i: s[metric] for i, s in sc.items() if metric in s} for sc in scores]
            estimates = [bootstrap(list(p.values())) for p in per]
            deltas: builtins.list[Estimate | None] = [None]
            for p in per[1:]:
                both = sorted(set(per[0]) & set(p))
                deltas.append(paired_difference([per[0][i] for i in both], [p[i] for i in both]))
            comparisons.append(MetricComparison(metric, estimates, deltas))
        everywhere = set(scores[0]).union(*scores[1:])
        disagree = sorted(i for i in everywhere if any(
            len({sc.get(i, {}).get(m) for sc in scores}) > 1 for m in metrics))
        page_idx = disagree[offset:offset + limit]
        rows = [{s.idx: s for s in await self.repo.samples_at(e.id, page_idx)} for e in evs]
        diffs = [SampleDiff(i, [r.get(i) for r in rows]) for i in page_idx]
        return Comparison(evs, comparisons, len(disagree), diffs)

    async def resume_lost(self) -> builtins.list[int]:
        """Enqueue again every pending or running evaluation whose job is gone: its worker was killed, or the queue
        lost it (a Redis without persistence restarted). The run goes on with the samples not yet scored. A gate's
        evaluations are run by their gate's job and are left to it."""
        resumed = []
        offset = 0
        while True:
            rows, _ = await self.repo.list(tenant_id=None, statuses=[EvalStatus.PENDING, EvalStatus.RUNNING],
                                           offset=offset, limit=200)
            for ev in rows:
                if ev.role != Role.NONE or self.jobs.status(run_job_id(ev.id)) in ACTIVE_JOB:
                    continue
                log.warning("evaluation %s is %s but its job is gone: enqueued again", ev.id, ev.status.value)
                await self._enqueue(ev, delete_on_failure=False)
                resumed.append(ev.id)
            if len(rows) < 200:
                return resumed
            offset += len(rows)

    # --- scheduled re-evaluation -------------------------------------------------------------------
    async def schedule_due(self, now: datetime | None = None) -> builtins.list[Evaluation]:
        """A new run of every repeating evaluation whose latest run finished ``repeatHours`` ago or more: the same
        samples, the same settings, linked to the run before it (its comparison shows a regression)."""
        now = now or datetime.now(UTC)
        created = []
        offset = 0
        while True:
            roots, _ = await self.repo.list(tenant_id=None, repeating=True, offset=offset, limit=200)
            for root in roots:
                latest = await self.repo.latest_of_schedule(root.id)
                finished = latest.completed_at
                if latest.status not in FINISHED or finished is None:
                    continue
                finished = finished if finished.tzinfo else finished.replace(tzinfo=UTC)
                if finished + timedelta(hours=root.repeat_hours) > now:
                    continue
                run = await self.repo.copy(
                    root.id, uuid=f"eval-{secrets.token_hex(12)}", status=EvalStatus.PENDING, repeat_hours=0,
                    schedule_id=root.id, previous_id=latest.id, operator="scheduler",
                    remark=f"scheduled re-evaluation of evaluation {root.id}")
                try:
                    await self._enqueue(run, delete_on_failure=True)
                except DomainError:
                    break  # the queue is down: the next round tries again
                created.append(run)
            if len(roots) < 200:
                return created
            offset += len(roots)
