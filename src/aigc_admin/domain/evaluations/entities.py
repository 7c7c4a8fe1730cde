"""Evaluations: what a job and its samples are, the error codes, and the ports the service and runner use."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class EvalStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FINISHED = (EvalStatus.SUCCEEDED, EvalStatus.FAILED, EvalStatus.CANCELLED)


class SampleStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class EvaluationErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"
    NOT_ALLOWED = "NOT_ALLOWED"  # the channel may not call a model the evaluation needs
    NOT_CANCELLABLE = "NOT_CANCELLABLE"
    NOT_FINISHED = "NOT_FINISHED"
    NOT_COMPARABLE = "NOT_COMPARABLE"  # compared evaluations that did not score the same samples
    QUEUE_UNAVAILABLE = "QUEUE_UNAVAILABLE"


class Role(StrEnum):
    """An evaluation made by a fine-tuning job's gate."""

    NONE = ""
    CANDIDATE = "candidate"  # the fine-tuned model
    BASE = "base"  # the model it was fine-tuned from


@dataclass(frozen=True)
class JudgeConfig:
    model_id: int
    model_name: str
    rubric: str = ""  # "" = the built-in rubric of the metric (judge.SINGLE_RUBRIC / PAIRWISE_RUBRIC)
    max_tokens: int = 512


@dataclass(frozen=True)
class RunConfig:
    """How the evaluated model (and the judge) are called."""

    temperature: float = 0.0
    max_tokens: int = 256
    timeout_seconds: float = 120.0  # per request; a timeout is retried like an unavailable worker
    retries: int = 2  # after the first attempt, on transient failures (unavailable, rate limited, timeout)
    judge: JudgeConfig | None = None
    baseline_model_id: int | None = None  # pairwise: the model the answers are compared with
    baseline_model_name: str = ""
    deploy_gpus: int = 0  # deploy-for-run: GPUs per replica
    any_tenant_model: bool = False  # a gate's: the models need not be granted to the channel yet

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in self.__dict__.items() if k != "judge"}
        out["judge"] = self.judge.__dict__ if self.judge else None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        judge = data.pop("judge", None)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(judge=JudgeConfig(**judge) if judge else None, **known)


@dataclass(frozen=True)
class Evaluation:
    id: int
    uuid: str
    tenant_id: int
    status: EvalStatus
    model_id: int | None
    model_name: str
    channel_id: int | None
    metrics: tuple[str, ...]
    config: RunConfig
    concurrency: int
    source_file: str  # the file's public id
    dataset_type: str  # "train": a held-out part of a fine-tune file; "custom": a fine-tune-eval file
    holdout_percent: float
    holdout_seed: int
    total: int
    done: int = 0  # samples scored
    failed: int = 0  # samples with an error
    aggregates: dict[str, Any] = field(default_factory=dict)  # {"metrics": {m: {mean, low, high, n}}, ...}
    error_message: str = ""
    fingerprint: str = ""
    fine_tune_job_id: int | None = None
    role: Role = Role.NONE
    deploy_for_run: bool = False
    run_deployment_id: int | None = None
    repeat_hours: int = 0
    schedule_id: int | None = None
    previous_id: int | None = None
    progress_seq: int = 0
    operator: str = ""
    remark: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    def progress_payload(self) -> dict[str, Any]:
        """The state a progress event carries (and a new subscriber is shown first)."""
        return {"seq": self.progress_seq, "status": self.status.value, "done": self.done, "failed": self.failed,
                "total": self.total, "means": (self.aggregates.get("running") or {}),
                "eta_seconds": self.aggregates.get("eta_seconds")}


@dataclass(frozen=True)
class SampleInput:
    """A sample as read from the source file: the messages before the reference answer, and the reference."""

    line: int
    messages: list[dict[str, Any]]
    reference: str


@dataclass(frozen=True)
class Sample:
    id: int
    idx: int
    line: int
    messages: list[dict[str, Any]]
    reference: str
    status: str = SampleStatus.PENDING
    output: str | None = None
    baseline_output: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    judge: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    latency_ms: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0


@dataclass
class SampleResult:
    """What running one sample produced (written in batches by the runner)."""

    id: int
    idx: int
    status: str
    output: str | None = None
    baseline_output: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    judge: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    latency_ms: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0


@dataclass(frozen=True)
class SampleFilter:
    failed_only: bool = False
    metric: str | None = None  # with below: samples whose score on this metric is below it
    below: float | None = None


@dataclass(frozen=True)
class ModelRef:
    id: int
    name: str
    local: bool
    deployable: bool  # local with a model path


@dataclass(frozen=True)
class FileRef:
    file_id: str
    purpose: str


class EvaluationRepository(Protocol):
    async def create(self, samples: builtins.list[SampleInput], **values: Any) -> Evaluation:
        """The evaluation and its samples, in one transaction."""
        ...

    async def copy(self, source: int, **values: Any) -> Evaluation:
        """A new evaluation on the same samples as ``source`` (inputs and references only), in one transaction."""
        ...

    async def get(self, pk: int) -> Evaluation | None: ...
    async def many(self, pks: builtins.list[int]) -> builtins.list[Evaluation]: ...
    async def update(self, pk: int, **changes: Any) -> Evaluation: ...
    async def update_where(self, pk: int, expected: EvalStatus, /, **changes: Any) -> Evaluation | None:
        """Apply the changes only if the evaluation is still ``expected``; None when it is not (or is gone)."""
        ...
    async def delete(self, pk: int) -> None: ...
    async def list(self, *, tenant_id: int | None, statuses: builtins.list[EvalStatus] | None = None,
                   model_id: int | None = None, fine_tune_job_id: int | None = None, repeating: bool = False,
                   offset: int = 0, limit: int = 20) -> tuple[builtins.list[Evaluation], int]: ...
    async def latest_of_schedule(self, root: int) -> Evaluation: ...
    async def samples(self, pk: int, flt: SampleFilter, *, offset: int,
                      limit: int) -> tuple[builtins.list[Sample], int]: ...
    async def samples_at(self, pk: int, idxs: builtins.list[int]) -> builtins.list[Sample]: ...
    async def pending_samples(self, pk: int) -> builtins.list[Sample]: ...
    async def all_scores(self, pk: int) -> builtins.list[tuple[int, dict[str, float]]]:
        """(idx, scores) of every scored sample, by idx."""
        ...
    async def save_results(self, pk: int, results: builtins.list[SampleResult],
                           **changes: Any) -> Evaluation | None:
        """The samples' results and the evaluation's changes (counts, progress), in one transaction; None when the
        evaluation is gone (its tenant deleted)."""
        ...
    async def reset_unfinished(self, pk: int) -> int:
        """Failed samples back to pending (a retry runs them again); returns how many."""
        ...


class EvaluationLookup(Protocol):
    """What creating an evaluation needs to know about models, channels and files (tenant-scoped)."""

    async def model(self, model_id: int, tenant_id: int) -> ModelRef | None: ...
    async def model_named(self, name: str, tenant_id: int) -> int | None: ...
    async def channel_models(self, channel_id: int, tenant_id: int) -> frozenset[str] | None:
        """The names of the models the channel may call; None when the tenant has no such channel."""
        ...
    async def file(self, file_id: str, tenant_id: int) -> FileRef | None: ...
    def lines(self, file_id: str, tenant_id: int) -> AsyncIterator[bytes]: ...


class ProgressEvents(Protocol):
    async def progress(self, evaluation: Evaluation) -> None: ...


class JobEnqueuer(Protocol):
    def enqueue(self, func_path: str, *, job_id: str, timeout: int = 3600, **kwargs: Any) -> str: ...
    def status(self, job_id: str) -> str | None:
        """The queue's status of a job (queued, started, finished, failed, …); None when it has no such job."""
        ...
