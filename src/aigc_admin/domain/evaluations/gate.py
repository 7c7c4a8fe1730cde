"""The evaluation gate of a fine-tuning job: the fine-tuned model is registered when training succeeds, but it is
granted to the job's channel (and deployed, with autoDeploy) only when its evaluation passes.

A gate names a metric and a ``threshold`` (the fine-tuned model's mean must reach it), a ``minImprovement`` over
the base model (the lower end of the 95 % interval of the paired difference, fine-tuned − base on the same
samples, must reach it: a difference the interval does not support is not a win), or both (both must hold). The
samples are the job's held-out split, or a ``fine-tune-eval`` file. For ``pairwise``, the baseline is the base
model and only ``threshold`` (a win rate) applies.

When training succeeds the runner calls ``start``: the evaluations are recorded (the base model's first when it
is needed) and one job, ``gate:<job>``, runs them one after the other (each deploys its model for the run when it
is not deployed) and then ``decide``s.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Protocol

from aigc_admin.domain.errors import DomainError, Invalid
from aigc_admin.domain.evaluations.entities import EvalStatus, Evaluation, EvaluationErrorCode, Role
from aigc_admin.domain.evaluations.metrics import ALL_METRICS, JUDGE_METRICS
from aigc_admin.domain.evaluations.runner import EvaluationRunner
from aigc_admin.domain.evaluations.service import CreateEvaluation, EvaluationService
from aigc_admin.domain.evaluations.stats import Estimate, paired_difference

log = logging.getLogger(__name__)
GATE_JOB = "aigc_admin.workers.tasks.evaluations:gate"


class GateStatus(StrEnum):
    NONE = ""
    PENDING = "PENDING"  # training succeeded; the evaluations run
    PASSED = "PASSED"  # granted (and deployed with autoDeploy)
    FAILED = "FAILED"  # registered, not granted
    ERROR = "ERROR"  # the gate could not decide (an evaluation failed): not granted; the reason says why


@dataclass(frozen=True)
class Gate:
    metric: str
    threshold: float | None = None
    min_improvement: float | None = None
    file_id: str = ""  # a fine-tune-eval file; "" = the job's held-out split
    judge_model_id: int | None = None
    max_tokens: int = 256
    concurrency: int = 4

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Gate | None:
        if not text:
            return None
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def needs_base(self) -> bool:
        return self.min_improvement is not None or self.metric == "pairwise"


def check_gate(gate: Gate, *, channel_id: int | None, holdout_percent: float) -> None:
    """The gate's own rules (the models and files are checked by ``GateService.check``)."""
    if gate.metric not in ALL_METRICS:
        raise Invalid("gate.metric", f"unknown metric {gate.metric}; known: {', '.join(ALL_METRICS)}")
    if gate.threshold is None and gate.min_improvement is None:
        raise Invalid("gate.threshold", "a gate needs a threshold, a minImprovement over the base model, or both")
    if gate.metric == "pairwise" and gate.min_improvement is not None:
        raise Invalid("gate.minImprovement", "pairwise already compares with the base model: give its win rate "
                                             "as the threshold")
    if gate.threshold is not None and not 0 <= gate.threshold <= 1:
        raise Invalid("gate.threshold", "scores are between 0 and 1: the threshold too")
    if gate.min_improvement is not None and not -1 <= gate.min_improvement <= 1:
        raise Invalid("gate.minImprovement", "minImprovement must be between -1 and 1")
    if (gate.metric in JUDGE_METRICS) != (gate.judge_model_id is not None):
        raise Invalid("gate.judgeModelId", "the judge and pairwise metrics need a judge model, and only they use one")
    if not 1 <= gate.max_tokens <= 32_768:
        raise Invalid("gate.maxTokens", "gate.maxTokens must be between 1 and 32768")
    if not 1 <= gate.concurrency <= 64:
        raise Invalid("gate.concurrency", "gate.concurrency must be between 1 and 64")
    if channel_id is None:
        raise Invalid("channelId", "a gate decides the grant to a channel: give channelId (the evaluations are "
                                   "called and accounted through it)")
    if not gate.file_id and holdout_percent <= 0:
        raise Invalid("gate.fileId", "a gate evaluates on the held-out split (holdoutPercent) or on a "
                                     "fine-tune-eval file (gate.fileId)")


@dataclass(frozen=True)
class Decision:
    status: GateStatus
    reason: str


def decide(gate: Gate, candidate: Evaluation | None, base: Evaluation | None,
           improvement: Estimate | None) -> Decision:
    if candidate is None or candidate.status != EvalStatus.SUCCEEDED:
        why = candidate.error_message if candidate else "it is gone"
        return Decision(GateStatus.ERROR, f"the evaluation of the fine-tuned model did not succeed: {why}")
    if gate.needs_base and gate.metric != "pairwise" and (base is None or base.status != EvalStatus.SUCCEEDED):
        why = base.error_message if base else "it is gone"
        return Decision(GateStatus.ERROR, f"the evaluation of the base model did not succeed: {why}")
    mean = float(candidate.aggregates.get("metrics", {}).get(gate.metric, {}).get("mean", 0.0))
    checks: list[tuple[bool, str]] = []
    if gate.threshold is not None:
        ok = mean >= gate.threshold
        checks.append((ok, f"{gate.metric} {mean:.4f} {'≥' if ok else '<'} threshold {gate.threshold:g}"))
    if gate.min_improvement is not None:
        est = improvement or Estimate(0.0, 0.0, 0.0, 0)
        ok = est.n > 0 and est.low >= gate.min_improvement
        checks.append((ok, f"improvement over the base model {est.mean:+.4f} (95 % interval {est.low:+.4f} to "
                           f"{est.high:+.4f}, {est.n} samples): its lower end is "
                           f"{'≥' if ok else '<'} {gate.min_improvement:g}"))
    passed = all(ok for ok, _ in checks)
    return Decision(GateStatus.PASSED if passed else GateStatus.FAILED, "; ".join(text for _, text in checks))


class GateLookup(Protocol):
    async def model_named(self, name: str, tenant_id: int) -> int | None: ...


class GatedJobs(Protocol):
    """The fine-tuning side, as the gate sees it."""

    async def get_job(self, pk: int) -> Any: ...
    async def set_gate(self, pk: int, status: GateStatus, reason: str) -> None: ...
    async def grant(self, channel_id: int, model_id: int) -> None: ...
    async def deploy(self, job: Any, model_id: int) -> None: ...


class Enqueuer(Protocol):
    def enqueue(self, func_path: str, *, job_id: str, timeout: int = 3600, **kwargs: Any) -> str: ...


class GateService:
    def __init__(self, *, evaluations: EvaluationService, lookup: GateLookup, jobs: Enqueuer,
                 runner: EvaluationRunner | None = None, gated: GatedJobs | None = None) -> None:
        self.evaluations = evaluations
        self.lookup = lookup
        self.jobs = jobs
        self.runner = runner  # the worker side
        self.gated = gated

    async def check(self, gate: Gate, *, tenant_id: int, channel_id: int | None, holdout_percent: float) -> None:
        """At job creation: the gate's rules, its file and its judge (the channel must be able to call it)."""
        check_gate(gate, channel_id=channel_id, holdout_percent=holdout_percent)
        assert channel_id is not None
        lookup = self.evaluations.lookup
        allowed = await lookup.channel_models(channel_id, tenant_id)
        if allowed is None:
            raise DomainError(EvaluationErrorCode.NOT_FOUND, f"channel {channel_id} not found", "channelId")
        if gate.judge_model_id is not None:
            judge = await lookup.model(gate.judge_model_id, tenant_id)
            if judge is None:
                raise DomainError(EvaluationErrorCode.NOT_FOUND, f"judge model {gate.judge_model_id} not found",
                                  "gate.judgeModelId")
            if judge.name not in allowed:
                raise DomainError(EvaluationErrorCode.NOT_ALLOWED, f"the channel may not call the judge "
                                  f"{judge.name}", "gate.judgeModelId")
        if gate.file_id:
            source = await lookup.file(gate.file_id, tenant_id)
            if source is None:
                raise DomainError(EvaluationErrorCode.NOT_FOUND, f"file {gate.file_id} not found", "gate.fileId")
            if source.purpose != "fine-tune-eval":
                raise Invalid("gate.fileId", "the gate's file must be of purpose fine-tune-eval")

    async def start(self, job: Any, model_id: int) -> None:
        """Training succeeded and the model is registered: record the gate's evaluations and enqueue their run."""
        gate: Gate = job.gate
        common = {"channel_id": job.channel_id, "metrics": [gate.metric], "max_tokens": gate.max_tokens,
                  "concurrency": gate.concurrency, "judge_model_id": gate.judge_model_id,
                  "fine_tune_job_id": job.id, "any_tenant_model": True,
                  "file_id": gate.file_id or job.file_id,
                  "holdout_percent": 0.0 if gate.file_id else job.holdout_percent,
                  "holdout_seed": 0 if gate.file_id else job.holdout_seed,
                  "deploy_gpus": job.params.proc_per_node}
        base_id = await self.lookup.model_named(job.base_model, job.tenant_id) if gate.needs_base else None
        if gate.needs_base and base_id is None:
            raise DomainError(EvaluationErrorCode.NOT_FOUND, f"the base model {job.base_model} is gone", None)
        if gate.needs_base and gate.metric != "pairwise":
            assert base_id is not None
            await self.evaluations.create(
                CreateEvaluation(model_id=base_id, role=Role.BASE, deploy_for_run=await self._deployable(base_id, job),
                                 **common),
                tenant_id=job.tenant_id, operator=job.operator, enqueue=False)
        await self.evaluations.create(
            CreateEvaluation(model_id=model_id, role=Role.CANDIDATE,
                             deploy_for_run=await self._deployable(model_id, job),
                             baseline_model_id=base_id if gate.metric == "pairwise" else None, **common),
            tenant_id=job.tenant_id, operator=job.operator, enqueue=False)
        self.jobs.enqueue(GATE_JOB, job_id=f"gate:{job.id}", timeout=7 * 86_400, fine_tune_job_id=job.id)

    async def _deployable(self, model_id: int, job: Any) -> bool:
        """A local model is deployed for the run when it is not deployed (an external one is just called)."""
        ref = await self.evaluations.lookup.model(model_id, job.tenant_id)
        return ref is not None and ref.deployable

    async def run(self, fine_tune_job_id: int) -> Decision:
        """The worker side: run the gate's evaluations (base first), decide, grant and deploy when it passed."""
        assert self.runner is not None and self.gated is not None
        job = await self.gated.get_job(fine_tune_job_id)
        if job is None or job.gate is None:
            return Decision(GateStatus.ERROR, "the fine-tuning job or its gate is gone")
        evs, _ = await self.evaluations.repo.list(tenant_id=job.tenant_id, fine_tune_job_id=job.id, limit=100)
        by_role = {e.role: e for e in sorted(evs, key=lambda e: e.id)}  # the latest of each role
        base = by_role.get(Role.BASE)
        candidate = by_role.get(Role.CANDIDATE)
        if base is not None:
            base = await self.runner.run(base.id)
        if candidate is not None:
            candidate = await self.runner.run(candidate.id, keep_deployment=job.auto_deploy)
        improvement = None
        if job.gate.min_improvement is not None and base is not None and candidate is not None:
            metric = job.gate.metric
            before = dict(await self.evaluations.repo.all_scores(base.id))
            after = dict(await self.evaluations.repo.all_scores(candidate.id))
            both = sorted(i for i in after if metric in after[i] and metric in before.get(i, {}))
            improvement = paired_difference([before[i][metric] for i in both], [after[i][metric] for i in both])
        decision = decide(job.gate, candidate, base, improvement)
        await self.gated.set_gate(job.id, decision.status, decision.reason)
        kept = candidate.run_deployment_id if candidate is not None and job.auto_deploy else None
        if decision.status == GateStatus.PASSED and candidate is not None and candidate.model_id is not None:
            await self.gated.grant(job.channel_id, candidate.model_id)
            if job.auto_deploy and kept is None:
                try:
                    await self.gated.deploy(job, candidate.model_id)
                except DomainError as e:
                    log.warning("gate passed, model %s granted but not deployed: %s", candidate.model_name, e.message)
        elif kept is not None and self.runner.deployer is not None:
            await self.runner.deployer.release(kept)  # kept for a pass that did not come
        log.info("gate of fine-tuning job %s: %s (%s)", job.job_id, decision.status.value, decision.reason)
        return decision
