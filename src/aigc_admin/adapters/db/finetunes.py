"""Tortoise adapters of the fine-tuning area: jobs and their log lines, lookups, and the finisher."""

from __future__ import annotations

import asyncio
import builtins
from pathlib import Path
from typing import Any

from tortoise.transactions import in_transaction

from aigc_admin.adapters.db import models as m
from aigc_admin.adapters.db.paging import page
from aigc_admin.domain.errors import NotFound
from aigc_admin.domain.evaluations.gate import Gate, GateStatus
from aigc_admin.domain.evaluations.split import held_out
from aigc_admin.domain.finetunes.service import FineTuneJob, HyperParams, JobStatus, LogLine

_PARAM_COLUMNS = {"epochs": "train_epoch", "train_batch_size": "train_batch_size",
                  "eval_batch_size": "eval_batch_size", "accumulation_steps": "accumulation_steps",
                  "learning_rate": "learning_rate", "weight_decay": "weight_decay", "warmup_ratio": "warmup_ratio",
                  "model_max_length": "model_max_length", "eval_steps": "eval_steps", "save_steps": "save_steps",
                  "save_total_limit": "save_total_limit", "logging_steps": "logging_steps", "lora": "lora",
                  "proc_per_node": "proc_per_node"}


def _job(r: m.FineTuningTrainJob) -> FineTuneJob:
    params = HyperParams(**{k: getattr(r, col) for k, col in _PARAM_COLUMNS.items()})
    return FineTuneJob(
        id=r.id, job_id=r.job_id, tenant_id=r.tenant_id, base_model=r.base_model, base_model_path=r.base_model_path,
        file_id=r.file_url, data_path=r.data_path, status=JobStatus(r.train_status), params=params, suffix=r.suffix,
        channel_id=r.channel_id, auto_deploy=r.auto_deploy, fine_tuned_model=r.fine_tuned_model,  # type: ignore[attr-defined]
        progress=r.progress, progress_epochs=r.progress_epochs, progress_loss=r.progress_loss,
        progress_learning_rate=r.progress_learning_rate, error_message=r.error_message, log_cursor=r.log_cursor,
        runtime_handle=r.runtime_handle, output_dir=r.output_dir, operator=r.train_publisher,
        created_at=r.created_at, start_train_time=r.start_train_time, finished_at=r.finished_at,
        holdout_percent=r.holdout_percent, holdout_seed=r.holdout_seed, gate=Gate.from_json(r.gate),
        gate_status=GateStatus(r.gate_status), gate_reason=r.gate_reason)


def _columns(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "params" in out:
        params: HyperParams = out.pop("params")
        out.update({col: getattr(params, k) for k, col in _PARAM_COLUMNS.items()})
    for ours, theirs in (("status", "train_status"), ("file_id", "file_url"), ("operator", "train_publisher")):
        if ours in out:
            out[theirs] = out.pop(ours)
    if isinstance(out.get("train_status"), JobStatus):
        out["train_status"] = out["train_status"].value
    if "gate" in out:
        out["gate"] = out["gate"].to_json() if out["gate"] is not None else ""
    if isinstance(out.get("gate_status"), GateStatus):
        out["gate_status"] = out["gate_status"].value
    return out


def _write_split(source: Path, dest: Path, percent: float, seed: int) -> tuple[int, int]:
    """Copy the lines of ``source`` that are not held out to ``dest`` (byte for byte, written atomically)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    kept = held = 0
    index = -1  # among non-blank lines, as the evaluation counts them
    partial = dest.with_suffix(".partial")
    with source.open("rb") as src, partial.open("wb") as out:
        for raw in src:
            if not raw.strip():
                continue
            index += 1
            if held_out(index, percent=percent, seed=seed):
                held += 1
                continue
            kept += 1
            out.write(raw if raw.endswith(b"\n") else raw + b"\n")
    partial.replace(dest)
    return kept, held


class FineTuneRepo:
    async def gpus_in_use(self) -> int:
        """GPUs held by RUNNING training jobs (deployments count them against the same capacity)."""
        rows = await m.FineTuningTrainJob.filter(train_status=JobStatus.RUNNING.value).values_list(
            "proc_per_node", flat=True)
        return sum(int(str(n)) for n in rows)

    async def create(self, **values: Any) -> FineTuneJob:
        return _job(await m.FineTuningTrainJob.create(**_columns(values)))

    async def get(self, pk: int) -> FineTuneJob | None:
        row = await m.FineTuningTrainJob.get_or_none(id=pk)
        return _job(row) if row else None

    async def update(self, pk: int, **changes: Any) -> FineTuneJob:
        await m.FineTuningTrainJob.filter(id=pk).update(**_columns(changes))
        return _job(await m.FineTuningTrainJob.get(id=pk))

    async def delete(self, pk: int) -> None:
        await m.FineTuningTrainJob.filter(id=pk).delete()

    async def list(self, *, tenant_id: int | None, statuses: builtins.list[JobStatus] | None, offset: int,
                   limit: int) -> tuple[builtins.list[FineTuneJob], int]:
        qs = m.FineTuningTrainJob.all()
        if tenant_id is not None:
            qs = qs.filter(tenant_id=tenant_id)
        if statuses:
            qs = qs.filter(train_status__in=[s.value for s in statuses])
        rows, total = await page(qs, offset=offset, limit=limit, order=("-id",))
        return [_job(r) for r in rows], total

    async def append_logs(self, pk: int, first_seq: int, lines: builtins.list[str]) -> None:
        async with in_transaction():
            await m.FineTuningLog.bulk_create(
                [m.FineTuningLog(job_id=pk, seq=first_seq + i, line=line[:65_000]) for i, line in enumerate(lines)])
            await m.FineTuningTrainJob.filter(id=pk).update(log_cursor=first_seq + len(lines) - 1)

    async def logs(self, pk: int, *, after: int, limit: int) -> builtins.list[LogLine]:
        rows = await m.FineTuningLog.filter(job_id=pk, seq__gt=after).order_by("seq").limit(limit)
        return [LogLine(r.seq, r.line) for r in rows]

    async def delete_logs(self, pk: int) -> None:
        await m.FineTuningLog.filter(job_id=pk).delete()

    async def counts(self, tenant_id: int) -> dict[JobStatus, int]:
        rows = await m.FineTuningTrainJob.filter(tenant_id=tenant_id).values_list("train_status", flat=True)
        out = dict.fromkeys(JobStatus, 0)
        for status in rows:
            out[JobStatus(str(status))] += 1
        return out


class FineTuneLookup:
    def __init__(self, storage_dir: Path) -> None:
        self.storage_dir = Path(storage_dir)

    async def base_model(self, model_id: int, tenant_id: int) -> tuple[str, str]:
        row = await m.LLMModel.filter(id=model_id, tenants__id=tenant_id, provider_name="local").first()
        if row is None or not row.model_path:
            raise NotFound("local model", model_id, "baseModelId")
        return row.model_name, row.model_path

    async def training_file(self, file_id: str, tenant_id: int) -> str:
        row = await m.File.get_or_none(file_id=file_id, tenant_id=tenant_id)
        if row is None or row.purpose not in ("fine-tune", "fine-tune-eval"):
            raise NotFound("fine-tune file", file_id, "fileId")
        return str(self.storage_dir / row.storage_path)

    async def split_training_file(self, file_id: str, tenant_id: int, *, percent: float, seed: int,
                                  dest: str) -> tuple[int, int]:
        source = Path(await self.training_file(file_id, tenant_id))
        return await asyncio.to_thread(_write_split, source, Path(dest), percent, seed)

    async def channel_of_tenant(self, channel_id: int, tenant_id: int) -> bool:
        return await m.ChatChannel.filter(id=channel_id, tenant_id=tenant_id).exists()

    async def tenant_code(self, tenant_id: int) -> str:
        row = await m.Tenant.get_or_none(id=tenant_id)
        return row.code if row else str(tenant_id)


class ModelFinisher:
    """Registers a fine-tuned model (local, its output dir), grants it to a channel, deploys it."""

    def __init__(self, deploy: Any = None, invalidate_key: Any = None, files: Any = None) -> None:
        self._deploy = deploy  # async (job, model_id) -> None; None: auto-deploy is off in this process
        self._invalidate = invalidate_key  # async (key_hash) -> None: gateways see the new model at once
        self._files = files  # ModelFiles: the chat template the training program saved with the weights

    async def register(self, job: FineTuneJob, name: str, output_dir: str) -> int:
        """The fine-tuned model, prompted like its base (its chat template, else the base's; the base's
        conversation template override)."""
        base = await m.LLMModel.get_or_none(model_name=job.base_model)
        chat_template = await self._files.chat_template(output_dir) if self._files is not None else ""
        async with in_transaction():
            row = await m.LLMModel.create(model_name=name, provider_name="local", model_type="chat",
                                          is_fine_tuning=True, is_private=True, enabled=True, model_path=output_dir,
                                          max_tokens=job.params.model_max_length, last_operator=job.operator,
                                          remark=f"fine-tuned from {job.base_model} by {job.job_id}",
                                          chat_template=chat_template or (base.chat_template if base else ""),
                                          conversation_template=base.conversation_template if base else "")
            await row.tenants.add(await m.Tenant.get(id=job.tenant_id))
        return row.id

    async def grant(self, channel_id: int, model_id: int) -> None:
        channel = await m.ChatChannel.get_or_none(id=channel_id)
        if channel is not None:
            await channel.models.add(await m.LLMModel.get(id=model_id))
            if self._invalidate is not None:
                await self._invalidate(channel.api_key_hash)

    async def deploy(self, job: FineTuneJob, model_id: int) -> None:
        if self._deploy is not None:
            await self._deploy(job, model_id)


class GatedFineTunes:
    """The fine-tuning side of a gate: the job, its gate's result, and the grant and deploy it decides."""

    def __init__(self, repo: FineTuneRepo, finisher: ModelFinisher) -> None:
        self.repo = repo
        self.finisher = finisher

    async def get_job(self, pk: int) -> FineTuneJob | None:
        return await self.repo.get(pk)

    async def set_gate(self, pk: int, status: GateStatus, reason: str) -> None:
        await self.repo.update(pk, gate_status=status, gate_reason=reason[:4000])

    async def grant(self, channel_id: int, model_id: int) -> None:
        await self.finisher.grant(channel_id, model_id)

    async def deploy(self, job: FineTuneJob, model_id: int) -> None:
        await self.finisher.deploy(job, model_id)
