"""Tortoise adapters of the evaluation area: evaluations and their samples, and what creating one looks up."""

from __future__ import annotations

import builtins
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from tortoise.transactions import in_transaction

from aigc_admin.adapters.db import models as m
from aigc_admin.adapters.db.paging import page
from aigc_admin.adapters.storage import FileLines
from aigc_admin.domain.evaluations.entities import (
    EvalStatus,
    Evaluation,
    FileRef,
    ModelRef,
    Role,
    RunConfig,
    Sample,
    SampleFilter,
    SampleInput,
    SampleResult,
    SampleStatus,
)
from aigc_admin.domain.evaluations.metrics import ALL_METRICS

SCORE_COLUMNS = {metric: f"score_{metric}" for metric in ALL_METRICS}
_RESULT_FIELDS = ["status", "output", "baseline_output", "judge", "error", "latency_ms", "prompt_tokens",
                  "completion_tokens", "attempts", *SCORE_COLUMNS.values()]
_RENAMED = {"total": "eval_total", "done": "done_count", "failed": "failed_count"}


def _evaluation(r: m.LLMEvalResult) -> Evaluation:
    return Evaluation(
        id=r.id, uuid=r.uuid, tenant_id=r.tenant_id, status=EvalStatus(r.status.upper()),
        model_id=r.model_id, model_name=r.model_name, channel_id=r.channel_id,  # type: ignore[attr-defined]
        metrics=tuple(json.loads(r.metrics or "[]")) or (r.metric_name,),
        config=RunConfig.from_json(json.loads(r.config or "{}")), concurrency=r.concurrency,
        source_file=r.source_file, dataset_type=r.dataset_type, holdout_percent=r.holdout_percent,
        holdout_seed=r.holdout_seed, total=r.eval_total, done=r.done_count, failed=r.failed_count,
        aggregates=json.loads(r.aggregates or "{}"), error_message=r.error_message, fingerprint=r.fingerprint,
        fine_tune_job_id=r.fine_tune_job_id, role=Role(r.role), deploy_for_run=r.deploy_for_run,  # type: ignore[attr-defined]
        run_deployment_id=r.run_deployment_id, repeat_hours=r.repeat_hours, schedule_id=r.schedule_id,
        previous_id=r.previous_id, progress_seq=r.progress_seq, operator=r.operator, remark=r.remark,
        created_at=r.created_at, started_at=r.started_at, completed_at=r.completed_at)


def _columns(values: dict[str, Any]) -> dict[str, Any]:
    out = {_RENAMED.get(k, k): v for k, v in values.items()}
    if isinstance(out.get("status"), EvalStatus):
        out["status"] = out["status"].value
    if "metrics" in out:
        out["metric_name"] = out["metrics"][0]
        out["metrics"] = json.dumps(list(out["metrics"]))
    if isinstance(out.get("config"), RunConfig):
        out["config"] = json.dumps(out["config"].to_json())
    if "aggregates" in out:
        out["aggregates"] = json.dumps(out["aggregates"])
    if isinstance(out.get("role"), Role):
        out["role"] = out["role"].value
    if "error_message" in out:
        out["error_message"] = out["error_message"][:1000]
    if "score" in out:  # DECIMAL(7,2): exactly two places (a float would be truncated, with a warning)
        out["score"] = Decimal(f"{float(out['score']):.2f}")
    return out


def _sample(r: m.LLMEvalSample) -> Sample:
    scores = {metric: v for metric, col in SCORE_COLUMNS.items() if (v := getattr(r, col)) is not None}
    return Sample(id=r.id, idx=r.idx, line=r.line, messages=json.loads(r.input), reference=r.reference,
                  status=r.status, output=r.output, baseline_output=r.baseline_output, scores=scores,
                  judge=json.loads(r.judge) if r.judge else {}, error=r.error, latency_ms=r.latency_ms,
                  prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens, attempts=r.attempts)


def _result_row(pk: int, r: SampleResult) -> m.LLMEvalSample:
    row = m.LLMEvalSample(id=r.id, evaluation_id=pk, idx=r.idx, input="", status=r.status, output=r.output,
                          baseline_output=r.baseline_output, judge=json.dumps(r.judge, ensure_ascii=False)
                          if r.judge else "", error=r.error[:10_000], latency_ms=r.latency_ms,
                          prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens, attempts=r.attempts)
    for metric, col in SCORE_COLUMNS.items():
        setattr(row, col, r.scores.get(metric))
    return row


class EvaluationRepo:
    async def create(self, samples: builtins.list[SampleInput], **values: Any) -> Evaluation:
        async with in_transaction():
            row = await m.LLMEvalResult.create(**_columns(values))
            await m.LLMEvalSample.bulk_create(
                [m.LLMEvalSample(evaluation_id=row.id, idx=i, line=s.line, reference=s.reference,
                                 input=json.dumps(s.messages, ensure_ascii=False)) for i, s in enumerate(samples)],
                batch_size=500)
        return _evaluation(row)

    async def copy(self, source: int, **values: Any) -> Evaluation:
        src = await m.LLMEvalResult.get(id=source)
        keep = ("tenant_id", "model_id", "model_name", "metric_name", "metrics", "config", "concurrency",
                "channel_id", "dataset_file_id", "source_file", "dataset_type", "holdout_percent", "holdout_seed",
                "eval_total", "fingerprint", "deploy_for_run")
        async with in_transaction():
            row = await m.LLMEvalResult.create(**{k: getattr(src, k) for k in keep}, **_columns(values))
            inputs = await m.LLMEvalSample.filter(evaluation_id=source).order_by("idx").values_list(
                "idx", "line", "input", "reference")
            await m.LLMEvalSample.bulk_create(
                [m.LLMEvalSample(evaluation_id=row.id, idx=i, line=line, input=text, reference=ref)
                 for i, line, text, ref in inputs], batch_size=500)
        return _evaluation(row)

    async def get(self, pk: int) -> Evaluation | None:
        row = await m.LLMEvalResult.get_or_none(id=pk)
        return _evaluation(row) if row else None

    async def many(self, pks: builtins.list[int]) -> builtins.list[Evaluation]:
        return [_evaluation(r) for r in await m.LLMEvalResult.filter(id__in=pks)]

    async def update(self, pk: int, **changes: Any) -> Evaluation:
        await m.LLMEvalResult.filter(id=pk).update(**_columns(changes))
        return _evaluation(await m.LLMEvalResult.get(id=pk))

    async def update_where(self, pk: int, expected: EvalStatus, /, **changes: Any) -> Evaluation | None:
        if not await m.LLMEvalResult.filter(id=pk, status=expected.value).update(**_columns(changes)):
            return None
        row = await m.LLMEvalResult.get_or_none(id=pk)
        return _evaluation(row) if row else None

    async def delete(self, pk: int) -> None:
        async with in_transaction():
            await m.LLMEvalSample.filter(evaluation_id=pk).delete()
            await m.LLMEvalResult.filter(id=pk).delete()

    async def list(self, *, tenant_id: int | None, statuses: builtins.list[EvalStatus] | None = None,
                   model_id: int | None = None, fine_tune_job_id: int | None = None, repeating: bool = False,
                   offset: int = 0, limit: int = 20) -> tuple[builtins.list[Evaluation], int]:
        qs = m.LLMEvalResult.all()
        if tenant_id is not None:
            qs = qs.filter(tenant_id=tenant_id)
        if statuses:
            qs = qs.filter(status__in=[s.value for s in statuses])
        if model_id is not None:
            qs = qs.filter(model_id=model_id)
        if fine_tune_job_id is not None:
            qs = qs.filter(fine_tune_job_id=fine_tune_job_id)
        if repeating:
            qs = qs.filter(repeat_hours__gt=0, schedule_id=None)
        rows, total = await page(qs, offset=offset, limit=limit, order=("-id",))
        return [_evaluation(r) for r in rows], total

    async def by_fine_tune_jobs(self, job_ids: builtins.list[int]) -> dict[int, builtins.list[Evaluation]]:
        out: dict[int, builtins.list[Evaluation]] = {}
        for row in await m.LLMEvalResult.filter(fine_tune_job_id__in=job_ids).order_by("id"):
            out.setdefault(row.fine_tune_job_id, []).append(_evaluation(row))  # type: ignore[attr-defined]
        return out

    async def latest_of_schedule(self, root: int) -> Evaluation:
        row = await m.LLMEvalResult.filter(schedule_id=root).order_by("-id").first()
        return _evaluation(row or await m.LLMEvalResult.get(id=root))

    async def samples(self, pk: int, flt: SampleFilter, *, offset: int,
                      limit: int) -> tuple[builtins.list[Sample], int]:
        qs = m.LLMEvalSample.filter(evaluation_id=pk)
        if flt.failed_only:
            qs = qs.filter(status=SampleStatus.FAILED.value)
        if flt.below is not None and flt.metric is not None:
            qs = qs.filter(**{f"{SCORE_COLUMNS[flt.metric]}__lt": flt.below})
        rows, total = await page(qs, offset=offset, limit=limit, order=("idx",))
        return [_sample(r) for r in rows], total

    async def samples_at(self, pk: int, idxs: builtins.list[int]) -> builtins.list[Sample]:
        if not idxs:
            return []
        return [_sample(r) for r in await m.LLMEvalSample.filter(evaluation_id=pk, idx__in=idxs).order_by("idx")]

    async def pending_samples(self, pk: int) -> builtins.list[Sample]:
        rows = await m.LLMEvalSample.filter(evaluation_id=pk, status=SampleStatus.PENDING.value).order_by("idx")
        return [_sample(r) for r in rows]

    async def all_scores(self, pk: int) -> builtins.list[tuple[int, dict[str, float]]]:
        cols = list(SCORE_COLUMNS.values())
        rows = await m.LLMEvalSample.filter(evaluation_id=pk, status=SampleStatus.DONE.value).order_by(
            "idx").values_list("idx", *cols)
        return [(row[0], {metric: v for metric, v in zip(SCORE_COLUMNS, row[1:], strict=True) if v is not None})
                for row in rows]

    async def save_results(self, pk: int, results: builtins.list[SampleResult], **changes: Any) -> Evaluation | None:
        async with in_transaction():
            await m.LLMEvalSample.bulk_update([_result_row(pk, r) for r in results], _RESULT_FIELDS, batch_size=200)
            await m.LLMEvalResult.filter(id=pk).update(**_columns(changes))
        row = await m.LLMEvalResult.get_or_none(id=pk)
        return _evaluation(row) if row else None

    async def reset_unfinished(self, pk: int) -> int:
        return await m.LLMEvalSample.filter(evaluation_id=pk, status=SampleStatus.FAILED.value).update(
            status=SampleStatus.PENDING.value, error="")


class EvaluationLookup:
    def __init__(self, lines: FileLines) -> None:
        self._lines = lines

    async def model(self, model_id: int, tenant_id: int) -> ModelRef | None:
        row = await m.LLMModel.filter(id=model_id, tenants__id=tenant_id).first()
        if row is None:
            return None
        local = row.provider_name == "local"
        return ModelRef(row.id, row.model_name, local, local and bool(row.model_path))

    async def model_named(self, name: str, tenant_id: int) -> int | None:
        row = await m.LLMModel.filter(model_name=name, tenants__id=tenant_id).first()
        return row.id if row else None

    async def channel_models(self, channel_id: int, tenant_id: int) -> frozenset[str] | None:
        channel = await m.ChatChannel.get_or_none(id=channel_id, tenant_id=tenant_id)
        if channel is None:
            return None
        return frozenset(await channel.models.all().values_list("model_name", flat=True))  # type: ignore[arg-type]

    async def file(self, file_id: str, tenant_id: int) -> FileRef | None:
        row = await m.File.get_or_none(file_id=file_id, tenant_id=tenant_id)
        return FileRef(row.file_id, row.purpose) if row else None

    def lines(self, file_id: str, tenant_id: int) -> AsyncIterator[bytes]:
        return self._lines.open_lines(tenant_id, file_id)
