"""GraphQL shape of fine-tuning jobs and their logs."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from aigc_admin.domain.evaluations.gate import Gate
from aigc_admin.domain.finetunes import service as ft
from aigc_admin.schema.evaluations import Evaluation, EvaluationMetric, metric, metric_name

FineTuneStatus = strawberry.enum(ft.JobStatus, description="Where a fine-tuning job is.")
FineTuneErrorCode = strawberry.enum(ft.FineTuneErrorCode, description="Codes of fine-tuning failures.")


@strawberry.type
class FineTuneParams:
    epochs: int
    train_batch_size: int
    eval_batch_size: int
    accumulation_steps: int
    learning_rate: float
    weight_decay: float
    warmup_ratio: float
    model_max_length: int
    eval_steps: int
    save_steps: int
    save_total_limit: int
    logging_steps: int
    lora: bool
    proc_per_node: int


@strawberry.type(description="A fine-tuning job's evaluation gate and its result.")
class FineTuneGate:
    metric: EvaluationMetric  # type: ignore[valid-type]
    threshold: float | None
    min_improvement: float | None
    file_id: str | None = strawberry.field(description="The fine-tune-eval file; null: the held-out split.")
    judge_model_id: strawberry.ID | None
    max_tokens: int
    concurrency: int
    status: str = strawberry.field(description="PENDING (the evaluations run), PASSED (granted, deployed with "
                                               "autoDeploy), FAILED (registered, not granted), ERROR (could not "
                                               "decide: the reason says why); empty before training succeeds.")
    reason: str
    job_pk: strawberry.Private[int]

    @strawberry.field(description="The gate's evaluations: the fine-tuned model's (candidate) and the base "
                                  "model's (base) when the gate compares with it.")
    async def evaluations(self, info: Info) -> list[Evaluation]:
        found = await info.context.loaders.gate_evaluations.load(self.job_pk)
        return [Evaluation.from_domain(x) for x in found]

    @classmethod
    def from_domain(cls, j: ft.FineTuneJob) -> FineTuneGate | None:
        g = j.gate
        if g is None:
            return None
        return cls(metric=metric(g.metric), threshold=g.threshold, min_improvement=g.min_improvement,
                   file_id=g.file_id or None,
                   judge_model_id=strawberry.ID(str(g.judge_model_id)) if g.judge_model_id is not None else None,
                   max_tokens=g.max_tokens, concurrency=g.concurrency, status=j.gate_status.value,
                   reason=j.gate_reason, job_pk=j.id)


@strawberry.type(description="A fine-tuning job: its settings, progress and outcome.")
class FineTuneJob:
    id: strawberry.ID
    job_id: str
    base_model: str
    file_id: str
    status: FineTuneStatus  # type: ignore[valid-type]
    params: FineTuneParams
    suffix: str
    channel_id: strawberry.ID | None
    auto_deploy: bool
    fine_tuned_model: str | None
    progress: float
    progress_epochs: float
    progress_loss: float
    progress_learning_rate: float
    error_message: str
    log_cursor: int = strawberry.field(description="Seq of the last persisted log line.")
    estimated_seconds_left: int | None = strawberry.field(
        description="Running jobs: time left at the pace so far (elapsed × (1 − progress) / progress).")
    created_at: datetime | None
    start_train_time: datetime | None
    finished_at: datetime | None
    holdout_percent: float = strawberry.field(description="Of the file's samples, kept out of training (the "
                                                          "evaluations' held-out split).")
    holdout_seed: int
    gate: FineTuneGate | None

    @classmethod
    def from_domain(cls, j: ft.FineTuneJob) -> FineTuneJob:
        return cls(id=strawberry.ID(str(j.id)), job_id=j.job_id, base_model=j.base_model, file_id=j.file_id,
                   status=j.status, params=FineTuneParams(**j.params.__dict__), suffix=j.suffix,
                   channel_id=strawberry.ID(str(j.channel_id)) if j.channel_id is not None else None,
                   auto_deploy=j.auto_deploy, fine_tuned_model=j.fine_tuned_model, progress=j.progress,
                   progress_epochs=j.progress_epochs, progress_loss=j.progress_loss,
                   progress_learning_rate=j.progress_learning_rate, error_message=j.error_message,
                   log_cursor=j.log_cursor, estimated_seconds_left=_eta(j), created_at=j.created_at,
                   start_train_time=j.start_train_time, finished_at=j.finished_at,
                   holdout_percent=j.holdout_percent, holdout_seed=j.holdout_seed, gate=FineTuneGate.from_domain(j))


def _eta(j: ft.FineTuneJob) -> int | None:
    if j.status != ft.JobStatus.RUNNING or not j.start_train_time or not 0 < j.progress < 1:
        return None
    from datetime import UTC

    elapsed = (datetime.now(UTC) - j.start_train_time).total_seconds()
    return max(0, round(elapsed * (1 - j.progress) / j.progress))


@strawberry.type(description="One training step (from the program's JSON step lines): for charts.")
class FineTunePoint:
    step: int
    epoch: float
    loss: float | None
    learning_rate: float | None


@strawberry.type
class FineTuneLogLine:
    seq: int
    line: str


@strawberry.type(description="Log lines in cursor order; status is the job's status when they were sent.")
class FineTuneLogBatch:
    status: FineTuneStatus  # type: ignore[valid-type]
    lines: list[FineTuneLogLine]


@strawberry.type
class FineTuneCounts:
    waiting: int
    running: int
    succeeded: int
    failed: int
    cancelled: int


@strawberry.type
class FineTuneError:
    field: str | None
    code: FineTuneErrorCode  # type: ignore[valid-type]
    message: str


@strawberry.type
class FineTuneJobPayload:
    job: FineTuneJob | None = None
    errors: list[FineTuneError] = strawberry.field(default_factory=list)


@strawberry.input
class CreateFineTuneJobInput:
    base_model_id: strawberry.ID
    file_id: str = strawberry.field(description="An uploaded file with purpose FINE_TUNE (chat JSONL).")
    epochs: int = 1
    train_batch_size: int = 1
    eval_batch_size: int = 1
    accumulation_steps: int = 1
    learning_rate: float = 2e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.04
    model_max_length: int = 2048
    eval_steps: int = 0
    save_steps: int = 0
    save_total_limit: int = 0
    logging_steps: int = 1
    lora: bool = True
    proc_per_node: int = strawberry.field(default=0, description="GPUs; 0: CPU.")
    suffix: str = ""
    channel_id: strawberry.ID | None = strawberry.field(default=None,
                                                       description="Channel granted the fine-tuned model.")
    auto_deploy: bool = False
    holdout_percent: float = strawberry.field(default=0.0, description="Percentage of the file's samples kept out "
                                              "of training (chosen by holdoutSeed) for evaluation.")
    holdout_seed: int = 0
    gate: FineTuneGateInput | None = None


@strawberry.input(description="Grant (and auto-deploy) the fine-tuned model only if its evaluation passes.")
class FineTuneGateInput:
    metric: EvaluationMetric  # type: ignore[valid-type]
    threshold: float | None = strawberry.field(default=None, description="The fine-tuned model's mean must reach "
                                               "it (scores are in [0, 1]).")
    min_improvement: float | None = strawberry.field(default=None, description="Over the base model: the lower end "
                                                     "of the 95 % interval of the paired difference must reach it.")
    file_id: str | None = strawberry.field(default=None, description="A fine-tune-eval file; default: the job's "
                                           "held-out split (holdoutPercent).")
    judge_model_id: strawberry.ID | None = strawberry.field(default=None, description="JUDGE and PAIRWISE: the judge "
                                                            "(the channel must be able to call it).")
    max_tokens: int = 256
    concurrency: int = 4

    def to_domain(self, judge_model_id: int | None) -> Gate:
        return Gate(metric=metric_name(self.metric), threshold=self.threshold, min_improvement=self.min_improvement,
                    file_id=self.file_id or "", judge_model_id=judge_model_id, max_tokens=self.max_tokens,
                    concurrency=self.concurrency)
