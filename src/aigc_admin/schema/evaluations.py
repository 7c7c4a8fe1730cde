"""GraphQL shape of evaluations: jobs, their samples, progress, comparisons."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from aigc_admin.domain.evaluations import entities as ev
from aigc_admin.domain.evaluations.metrics import ALL_METRICS
from aigc_admin.domain.evaluations.service import Comparison, MetricComparison, SampleDiff
from aigc_admin.domain.evaluations.stats import Estimate

EvaluationStatus = strawberry.enum(ev.EvalStatus, description="Where an evaluation is.")
EvaluationErrorCode = strawberry.enum(ev.EvaluationErrorCode, description="Codes of evaluation failures.")
Metric = Enum("Metric", {m.upper(): m for m in ALL_METRICS}, type=str)  # type: ignore[misc]
EvaluationMetric = strawberry.enum(
    Metric, name="EvaluationMetric",
    description="How an answer is scored, each in [0, 1] (exact definitions: docs/evaluation.md): EXACT_MATCH and "
                "CONTAINS (normalised text), BLEU and CHRF (sacrebleu), ROUGE_L (rouge-score; CJK text split by "
                "jieba), JUDGE (a model's 1-10 rating / 10), PAIRWISE (a model's verdict against a baseline model's "
                "answer, both orders: 1 win, 0.5 tie or inconsistent, 0 loss).")


def metric(name: str) -> Any:
    return Metric(name)


def metric_name(value: Any) -> str:
    """The domain's name of an EvaluationMetric argument."""
    return str(value.value)


@strawberry.type(description="A metric's mean over the scored samples, with its 95 % bootstrap interval.")
class MetricEstimate:
    metric: EvaluationMetric  # type: ignore[valid-type]
    mean: float
    low: float
    high: float
    n: int = strawberry.field(description="Samples it is computed on.")

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> MetricEstimate:
        return cls(metric=metric(name), mean=d["mean"], low=d["low"], high=d["high"], n=d["n"])

    @classmethod
    def of(cls, name: str, e: Estimate) -> MetricEstimate:
        return cls(metric=metric(name), mean=e.mean, low=e.low, high=e.high, n=e.n)


@strawberry.type
class MetricScore:
    metric: EvaluationMetric  # type: ignore[valid-type]
    value: float


def scores_of(scores: dict[str, float]) -> list[MetricScore]:
    return [MetricScore(metric=metric(k), value=v) for k, v in scores.items()]


@strawberry.type(description="A scheduled run against the run before it: paired differences per metric.")
class EvaluationRegression:
    previous_id: strawberry.ID
    differences: list[MetricEstimate] = strawberry.field(
        description="This run minus the previous one, on the samples both scored, with 95 % intervals.")
    regressed: list[EvaluationMetric] = strawberry.field(  # type: ignore[valid-type]
        description="Metrics whose whole interval is below 0.")


@strawberry.type
class EvaluationJudge:
    model_id: strawberry.ID
    model_name: str
    rubric: str = strawberry.field(description="The custom rubric; empty: the built-in one.")
    max_tokens: int


@strawberry.type(description="An evaluation: a model's answers on a fixed set of samples, scored.")
class Evaluation:
    id: strawberry.ID
    uuid: str
    status: EvaluationStatus  # type: ignore[valid-type]
    model_id: strawberry.ID | None
    model_name: str
    channel_id: strawberry.ID | None
    metrics: list[EvaluationMetric]  # type: ignore[valid-type]
    file_id: str = strawberry.field(description="The source file (fine-tune with a held-out split, or "
                                                "fine-tune-eval).")
    dataset_type: str = strawberry.field(description="train: a held-out part of a fine-tune file; custom: a "
                                                     "fine-tune-eval file.")
    holdout_percent: float
    holdout_seed: int
    temperature: float
    max_tokens: int
    timeout_seconds: float
    retries: int
    concurrency: int
    judge: EvaluationJudge | None
    baseline_model_name: str | None
    deploy_for_run: bool
    total: int
    done: int = strawberry.field(description="Samples scored.")
    failed: int = strawberry.field(description="Samples with an error (retryEvaluation runs them again).")
    progress: float
    results: list[MetricEstimate] = strawberry.field(
        description="Per metric, once finished: the mean and its 95 % bootstrap interval.")
    running_means: list[MetricScore] = strawberry.field(description="Per metric, the mean so far.")
    eta_seconds: float | None
    error_message: str
    fine_tuning_job_id: strawberry.ID | None
    gate_role: str = strawberry.field(description="A fine-tuning gate's evaluation: candidate (the fine-tuned "
                                                  "model) or base; empty otherwise.")
    repeat_hours: int
    schedule_id: strawberry.ID | None = strawberry.field(description="A scheduled run: the evaluation it repeats.")
    previous_id: strawberry.ID | None
    vs_previous: EvaluationRegression | None
    operator: str
    remark: str
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None

    @classmethod
    def from_domain(cls, e: ev.Evaluation) -> Evaluation:
        cfg = e.config
        final = e.aggregates.get("metrics") or {}
        vs = e.aggregates.get("vs_previous")
        return cls(
            id=_id(e.id), uuid=e.uuid, status=e.status, model_id=_opt(e.model_id), model_name=e.model_name,
            channel_id=_opt(e.channel_id), metrics=[metric(m) for m in e.metrics], file_id=e.source_file,
            dataset_type=e.dataset_type, holdout_percent=e.holdout_percent, holdout_seed=e.holdout_seed,
            temperature=cfg.temperature, max_tokens=cfg.max_tokens, timeout_seconds=cfg.timeout_seconds,
            retries=cfg.retries, concurrency=e.concurrency,
            judge=EvaluationJudge(model_id=_id(cfg.judge.model_id), model_name=cfg.judge.model_name,
                                  rubric=cfg.judge.rubric, max_tokens=cfg.judge.max_tokens) if cfg.judge else None,
            baseline_model_name=cfg.baseline_model_name or None, deploy_for_run=e.deploy_for_run, total=e.total,
            done=e.done, failed=e.failed, progress=(e.done + e.failed) / e.total if e.total else 0.0,
            results=[MetricEstimate.from_dict(k, v) for k, v in final.items()],
            running_means=scores_of(e.aggregates.get("running") or {}), eta_seconds=e.aggregates.get("eta_seconds"),
            error_message=e.error_message, fine_tuning_job_id=_opt(e.fine_tune_job_id), gate_role=e.role.value,
            repeat_hours=e.repeat_hours, schedule_id=_opt(e.schedule_id), previous_id=_opt(e.previous_id),
            vs_previous=EvaluationRegression(
                previous_id=_id(vs["previous_id"]),
                differences=[MetricEstimate.from_dict(k, v) for k, v in vs["metrics"].items()],
                regressed=[metric(m) for m in vs["regressed"]]) if vs else None,
            operator=e.operator, remark=e.remark, created_at=e.created_at, started_at=e.started_at,
            completed_at=e.completed_at)


def _id(value: int) -> strawberry.ID:
    return strawberry.ID(str(value))


def _opt(value: int | None) -> strawberry.ID | None:
    return None if value is None else _id(value)


@strawberry.type(description="One sample: its input and reference, and the model's answer with its scores.")
class EvaluationSample:
    idx: int = strawberry.field(description="Position in the evaluation, from 0.")
    line: int = strawberry.field(description="Line of the source file, from 1.")
    messages: JSON = strawberry.field(description="The conversation the answer replies to (OpenAI messages).")
    reference: str
    status: str = strawberry.field(description="pending, done (scored) or failed.")
    output: str | None
    baseline_output: str | None = strawberry.field(description="pairwise: the baseline model's answer.")
    scores: list[MetricScore]
    judge: JSON = strawberry.field(description="The judge's rating or verdicts, with its raw text (kept when it "
                                               "could not be read).")
    error: str
    latency_ms: int | None
    prompt_tokens: int
    completion_tokens: int
    attempts: int

    @classmethod
    def from_domain(cls, s: ev.Sample) -> EvaluationSample:
        return cls(idx=s.idx, line=s.line, messages=s.messages, reference=s.reference,  # type: ignore[arg-type]
                   status=s.status,
                   output=s.output, baseline_output=s.baseline_output, scores=scores_of(s.scores),
                   judge=s.judge,  # type: ignore[arg-type]
                   error=s.error, latency_ms=s.latency_ms, prompt_tokens=s.prompt_tokens,
                   completion_tokens=s.completion_tokens, attempts=s.attempts)


@strawberry.type(description="An evaluation's progress: after each batch of results is written, and at the end.")
class EvaluationProgress:
    evaluation_id: strawberry.ID
    seq: int = strawberry.field(description="Increases with every event of the evaluation.")
    status: EvaluationStatus  # type: ignore[valid-type]
    done: int
    failed: int
    total: int
    means: list[MetricScore] = strawberry.field(description="Per metric, the mean of the samples scored so far.")
    eta_seconds: float | None

    @classmethod
    def from_payload(cls, pk: int, p: dict[str, Any]) -> EvaluationProgress:
        return cls(evaluation_id=_id(pk), seq=p["seq"], status=ev.EvalStatus(p["status"]), done=p["done"],
                   failed=p["failed"], total=p["total"], means=scores_of(p.get("means") or {}),
                   eta_seconds=p.get("eta_seconds"))


@strawberry.type(description="A paired difference: this evaluation minus the first one, on the samples both "
                             "scored.")
class MetricDelta:
    evaluation_id: strawberry.ID
    mean: float
    low: float
    high: float
    n: int
    significant: bool = strawberry.field(description="The 95 % interval excludes 0: not a difference of chance.")


@strawberry.type
class MetricComparisonRow:
    metric: EvaluationMetric  # type: ignore[valid-type]
    estimates: list[MetricEstimate] = strawberry.field(description="One per evaluation, in the order asked.")
    deltas: list[MetricDelta] = strawberry.field(description="One per evaluation after the first.")

    @classmethod
    def from_domain(cls, row: MetricComparison, ids: list[int]) -> MetricComparisonRow:
        deltas = [MetricDelta(evaluation_id=_id(pk), mean=d.mean, low=d.low, high=d.high, n=d.n,
                              significant=d.n > 1 and d.excludes_zero())
                  for pk, d in zip(ids, row.deltas, strict=True) if d is not None]
        return cls(metric=metric(row.metric), estimates=[MetricEstimate.of(row.metric, e) for e in row.estimates],
                   deltas=deltas)


@strawberry.type
class SampleAnswer:
    evaluation_id: strawberry.ID
    status: str
    output: str | None
    scores: list[MetricScore]
    error: str


@strawberry.type(description="A sample the compared evaluations scored differently.")
class SampleDisagreement:
    idx: int
    messages: JSON
    reference: str
    answers: list[SampleAnswer]

    @classmethod
    def from_domain(cls, d: SampleDiff, ids: list[int]) -> SampleDisagreement:
        first = next(s for s in d.samples if s is not None)
        return cls(idx=d.idx, messages=first.messages, reference=first.reference, answers=[  # type: ignore[arg-type]
            SampleAnswer(evaluation_id=_id(pk), status=s.status if s else "missing", output=s.output if s else None,
                         scores=scores_of(s.scores) if s else [], error=s.error if s else "")
            for pk, s in zip(ids, d.samples, strict=True)])


@strawberry.type(description="Evaluations of the same samples side by side.")
class EvaluationComparison:
    evaluations: list[Evaluation]
    metrics: list[MetricComparisonRow]
    disagreements_total: int
    disagreements: list[SampleDisagreement] = strawberry.field(description="A page of them, by sample.")

    @classmethod
    def from_domain(cls, c: Comparison) -> EvaluationComparison:
        ids = [e.id for e in c.evaluations]
        return cls(evaluations=[Evaluation.from_domain(e) for e in c.evaluations],
                   metrics=[MetricComparisonRow.from_domain(m, ids) for m in c.metrics],
                   disagreements_total=c.disagreements_total,
                   disagreements=[SampleDisagreement.from_domain(d, ids) for d in c.disagreements])


@strawberry.type
class EvaluationError:
    field: str | None
    code: EvaluationErrorCode  # type: ignore[valid-type]
    message: str


@strawberry.type
class EvaluationPayload:
    evaluation: Evaluation | None = None
    errors: list[EvaluationError] = strawberry.field(default_factory=list)


@strawberry.input
class EvaluationJudgeInput:
    model_id: strawberry.ID = strawberry.field(description="Any model the channel may call.")
    rubric: str = strawberry.field(default="", description="The judge's instructions; empty: the built-in rubric. "
                                   "Placeholders: {question} {answer} {reference} (judge) or {question} {answer_a} "
                                   "{answer_b} (pairwise); keep asking for the [[...]] format.")
    max_tokens: int = 512


@strawberry.input(description="Score a model on a file's samples.")
class CreateEvaluationInput:
    model_id: strawberry.ID = strawberry.field(description="A model of the tenant that the channel may call.")
    channel_id: strawberry.ID = strawberry.field(description="The calls go through it (limits, quota, usage).")
    file_id: str = strawberry.field(description="A fine-tune-eval file, or a fine-tune file with holdoutPercent.")
    metrics: list[EvaluationMetric]  # type: ignore[valid-type]
    holdout_percent: float = strawberry.field(default=0.0, description="A fine-tune file: the percentage of its "
                                              "samples held out (by holdoutSeed) that is evaluated.")
    holdout_seed: int = 0
    temperature: float = 0.0
    max_tokens: int = 256
    concurrency: int = 4
    timeout_seconds: float = strawberry.field(default=120.0, description="Per request; then retried.")
    retries: int = strawberry.field(default=2, description="On transient failures (no healthy worker, rate "
                                                           "limited, upstream error, timeout).")
    judge: EvaluationJudgeInput | None = None
    baseline_model_id: strawberry.ID | None = strawberry.field(default=None, description="pairwise: the model "
                                                               "whose answers are compared.")
    deploy_for_run: bool = strawberry.field(default=False, description="A local model that is not deployed is "
                                            "deployed for the run and undeployed after.")
    deploy_gpus: int = 0
    repeat_hours: int = strawberry.field(default=0, description="Re-evaluate on the same samples every N hours "
                                         "(0: once); each run is compared with the one before.")
    remark: str = ""
