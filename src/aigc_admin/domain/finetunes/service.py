"""Fine-tuning jobs: requested (WAITING), started while capacity allows (RUNNING), finished with a model.

API side: ``FineTuneService`` validates and records jobs, cancels, retries and deletes them.
Worker side: ``FineTuneRunner.tick`` (every finetune.interval, one process at a time) starts waiting jobs on the
runtime, collects every new log line with a per-job cursor (persisted, then published), and on
success registers the fine-tuned model, grants it to the job's channel and deploys it when asked.
"""

from __future__ import annotations

import builtins
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from aigc_admin.domain.capacity import GpuPool
from aigc_admin.domain.deployments.templates import TRAIN_VARIABLES, Rendered, render
from aigc_admin.domain.errors import DomainError, Invalid, NotFound
from aigc_admin.domain.evaluations.gate import Gate, GateStatus
from aigc_admin.domain.runtime import (
    OWNER_LABEL,
    Runtime,
    VolumeMount,
    WorkloadHandle,
    WorkloadKind,
    WorkloadSpec,
    WorkloadState,
)

log = logging.getLogger(__name__)


class JobStatus(StrEnum):
    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
MAX_EVENT_LINES = 500


class FineTuneErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"
    NOT_CANCELLABLE = "NOT_CANCELLABLE"
    NOT_FINISHED = "NOT_FINISHED"
    NOT_ALLOWED = "NOT_ALLOWED"  # a gate's judge the channel may not call


@dataclass(frozen=True)
class HyperParams:
    """The original's hyper-parameters, all passed to the training program."""

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
    proc_per_node: int = 0  # GPUs; 0: CPU


RANGES: dict[str, tuple[float, float]] = {
    "epochs": (1, 100), "train_batch_size": (1, 1024), "eval_batch_size": (1, 1024),
    "accumulation_steps": (1, 1024), "learning_rate": (1e-8, 1.0), "weight_decay": (0.0, 1.0),
    "warmup_ratio": (0.0, 1.0), "model_max_length": (16, 1_048_576), "eval_steps": (0, 10**7),
    "save_steps": (0, 10**7), "save_total_limit": (0, 1000), "logging_steps": (1, 10**6), "proc_per_node": (0, 64),
}


def check_params(p: HyperParams) -> None:
    for name, (low, high) in RANGES.items():
        value = getattr(p, name)
        if not low <= value <= high:
            head, *rest = name.split("_")
            raise DomainError(FineTuneErrorCode.INVALID, f"{name} must be between {low:g} and {high:g}",
                              head + "".join(x.title() for x in rest))


@dataclass(frozen=True)
class FineTuneJob:
    id: int
    job_id: str
    tenant_id: int
    base_model: str
    base_model_path: str
    file_id: str
    data_path: str
    status: JobStatus
    params: HyperParams
    suffix: str = ""
    channel_id: int | None = None
    auto_deploy: bool = False
    fine_tuned_model: str | None = None
    progress: float = 0.0
    progress_epochs: float = 0.0
    progress_loss: float = 0.0
    progress_learning_rate: float = 0.0
    error_message: str = ""
    log_cursor: int = 0
    runtime_handle: str = ""
    output_dir: str = ""
    operator: str = ""
    created_at: datetime | None = None
    start_train_time: datetime | None = None
    finished_at: datetime | None = None
    holdout_percent: float = 0.0  # of the file's samples, kept out of training (the evaluation's split)
    holdout_seed: int = 0
    gate: Gate | None = None
    gate_status: GateStatus = GateStatus.NONE
    gate_reason: str = ""


@dataclass(frozen=True)
class LogLine:
    seq: int
    line: str


@dataclass
class Progress:
    """What step lines tell about a run (the training program's JSON schema)."""

    progress: float = 0.0
    epochs: float = 0.0
    loss: float = 0.0
    learning_rate: float = 0.0
    final: dict[str, Any] = field(default_factory=dict)

    def feed(self, line: str) -> None:
        if not line.startswith("{"):
            return
        try:
            event = json.loads(line)
        except ValueError:
            return
        if event.get("type") == "step":
            total = event.get("total_steps") or 0
            self.progress = round(min(1.0, event["step"] / total), 4) if total else self.progress
            self.epochs = float(event.get("epoch") or self.epochs)
            self.loss = float(event["loss"]) if event.get("loss") is not None else self.loss
            self.learning_rate = float(event.get("learning_rate") or 0.0)
        elif event.get("type") in ("done", "error"):
            self.final = event


class FineTuneRepository(Protocol):
    async def gpus_in_use(self) -> int: ...
    async def create(self, **values: Any) -> FineTuneJob: ...
    async def get(self, pk: int) -> FineTuneJob | None: ...
    async def update(self, pk: int, **changes: Any) -> FineTuneJob: ...
    async def delete(self, pk: int) -> None: ...
    async def list(self, *, tenant_id: int | None, statuses: builtins.list[JobStatus] | None, offset: int,
                   limit: int) -> tuple[builtins.list[FineTuneJob], int]: ...
    async def append_logs(self, pk: int, first_seq: int, lines: builtins.list[str]) -> None:
        """Persist lines with seq first_seq, first_seq+1, … and move the job's cursor, in one transaction."""
        ...
    async def logs(self, pk: int, *, after: int, limit: int) -> builtins.list[LogLine]: ...
    async def delete_logs(self, pk: int) -> None: ...
    async def counts(self, tenant_id: int) -> dict[JobStatus, int]: ...


class Lookup(Protocol):
    """What job creation needs from models and files (tenant-scoped)."""

    async def base_model(self, model_id: int, tenant_id: int) -> tuple[str, str]:
        """(name, local path) of a local model of this tenant; raises NotFound otherwise."""
        ...

    async def training_file(self, file_id: str, tenant_id: int) -> str:
        """Absolute path of a fine-tune file of this tenant; raises NotFound otherwise."""
        ...

    async def split_training_file(self, file_id: str, tenant_id: int, *, percent: float, seed: int,
                                  dest: str) -> tuple[int, int]:
        """Write the file's lines that are not held out (``evaluations.split``) to ``dest``; returns (samples kept
        for training, samples held out)."""
        ...

    async def channel_of_tenant(self, channel_id: int, tenant_id: int) -> bool: ...


class GateChecks(Protocol):
    """The evaluation side of a gate: checked when the job is created, started when training succeeds."""

    async def check(self, gate: Gate, *, tenant_id: int, channel_id: int | None, holdout_percent: float) -> None: ...
    async def start(self, job: FineTuneJob, model_id: int) -> None: ...


class LogEvents(Protocol):
    async def lines(self, job_pk: int, batch: builtins.list[LogLine], status: JobStatus) -> None: ...


class Finisher(Protocol):
    """Turns a succeeded job's output into a served model."""

    async def register(self, job: FineTuneJob, name: str, output_dir: str) -> int: ...
    async def grant(self, channel_id: int, model_id: int) -> None: ...
    async def deploy(self, job: FineTuneJob, model_id: int) -> None: ...


def model_name(base: str, tenant_code: str, suffix: str) -> str:
    """The original's naming: ft::{base}:{tenant}-{random}[:{suffix}]."""
    name = f"ft::{base}:{tenant_code}-{secrets.token_hex(4)}"
    return f"{name}:{suffix}" if suffix else name


class FineTuneService:
    def __init__(self, *, repo: FineTuneRepository, lookup: Lookup, storage_dir: str,
                 events: LogEvents | None = None, gpus: GpuPool | None = None, gates: GateChecks | None = None) -> None:
        self.gates = gates
        self.gpus = gpus  # a job asking for more than the pool has could never start (and would block the queue)
        self.events = events
        self.repo = repo
        self.lookup = lookup
        self.storage_dir = storage_dir

    async def get(self, pk: int, *, tenant_id: int) -> FineTuneJob:
        job = await self.repo.get(pk)
        if job is None or job.tenant_id != tenant_id:
            raise NotFound("fine-tuning job", pk)
        return job

    async def list(self, *, tenant_id: int, statuses: builtins.list[JobStatus] | None = None, offset: int = 0,
                   limit: int = 20) -> tuple[builtins.list[FineTuneJob], int]:
        return await self.repo.list(tenant_id=tenant_id, statuses=statuses, offset=offset, limit=limit)

    async def create(self, *, tenant_id: int, base_model_id: int, file_id: str, params: HyperParams, suffix: str = "",
                     channel_id: int | None = None, auto_deploy: bool = False, operator: str = "",
                     holdout_percent: float = 0.0, holdout_seed: int = 0, gate: Gate | None = None) -> FineTuneJob:
        check_params(params)
        if self.gpus is not None and params.proc_per_node > self.gpus.total:
            raise DomainError(FineTuneErrorCode.INVALID, f"procPerNode: at most {self.gpus.total} GPU(s) "
                              "(runtime.gpu.num); the job could never start", "procPerNode")
        if suffix and not re.match(r"^[A-Za-z0-9_-]{1,40}$", suffix):
            raise DomainError(FineTuneErrorCode.INVALID, "suffix: 1-40 letters, digits, '-' or '_'", "suffix")
        if not 0 <= holdout_percent < 100:
            raise Invalid("holdoutPercent", "holdoutPercent must be at least 0 and below 100")
        base, base_path = await self.lookup.base_model(base_model_id, tenant_id)
        data_path = await self.lookup.training_file(file_id, tenant_id)
        if channel_id is not None and not await self.lookup.channel_of_tenant(channel_id, tenant_id):
            raise NotFound("channel", channel_id, "channelId")
        if gate is not None:
            if self.gates is None:
                raise Invalid("gate", "evaluation gates are not available in this process")
            await self.gates.check(gate, tenant_id=tenant_id, channel_id=channel_id, holdout_percent=holdout_percent)
        job_id = f"ftjob-{secrets.token_hex(12)}"
        if holdout_percent > 0:
            # the program is given the rest of the file: whatever the template, it cannot read the held-out lines
            split_path = f"{self.storage_dir}/finetunes/{job_id}/train.jsonl"
            kept, held = await self.lookup.split_training_file(file_id, tenant_id, percent=holdout_percent,
                                                               seed=holdout_seed, dest=split_path)
            if kept == 0 or held == 0:
                raise Invalid("holdoutPercent", f"{holdout_percent:g}% of the file's {kept + held} samples holds out "
                                                f"{held} and leaves {kept} to train on: both need at least one")
            data_path = split_path
        return await self.repo.create(
            job_id=job_id, tenant_id=tenant_id, base_model=base, base_model_path=base_path, file_id=file_id,
            data_path=data_path, params=params, suffix=suffix, channel_id=channel_id, auto_deploy=auto_deploy,
            output_dir=f"{self.storage_dir}/finetunes/{job_id}/output", operator=operator,
            holdout_percent=holdout_percent, holdout_seed=holdout_seed, gate=gate)

    async def cancel(self, pk: int, *, tenant_id: int) -> FineTuneJob:
        job = await self.get(pk, tenant_id=tenant_id)
        if job.status in FINISHED:
            raise DomainError(FineTuneErrorCode.NOT_CANCELLABLE, f"the job is {job.status.value}", "id")
        # RUNNING jobs are stopped by the runner on its next tick (it owns the workload)
        job = await self.repo.update(pk, status=JobStatus.CANCELLED, finished_at=datetime.now(UTC))
        if self.events is not None:
            await self.events.lines(pk, [], JobStatus.CANCELLED)  # live subscriptions end now
        return job

    async def retry(self, pk: int, *, tenant_id: int) -> FineTuneJob:
        job = await self.get(pk, tenant_id=tenant_id)
        if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise DomainError(FineTuneErrorCode.NOT_FINISHED, "only failed or cancelled jobs are retried", "id")
        await self.repo.delete_logs(pk)  # a new run, a new log (its cursor starts again at 1)
        return await self.repo.update(pk, status=JobStatus.WAITING, error_message="", progress=0.0,
                                      progress_epochs=0.0, progress_loss=0.0, progress_learning_rate=0.0,
                                      log_cursor=0, runtime_handle="", start_train_time=None, finished_at=None,
                                      gate_status=GateStatus.NONE, gate_reason="")

    async def delete(self, pk: int, *, tenant_id: int) -> None:
        job = await self.get(pk, tenant_id=tenant_id)
        if job.status not in FINISHED:
            raise DomainError(FineTuneErrorCode.NOT_FINISHED, "cancel the job before deleting it", "id")
        await self.repo.delete(pk)

    async def logs(self, pk: int, *, tenant_id: int, after: int = 0, limit: int = 1000) -> builtins.list[LogLine]:
        await self.get(pk, tenant_id=tenant_id)
        return await self.repo.logs(pk, after=after, limit=min(max(1, limit), 10_000))

    async def metrics(self, pk: int, *, tenant_id: int) -> builtins.list[dict[str, Any]]:
        """Step points parsed from the job's JSON step lines (the program's log schema)."""
        await self.get(pk, tenant_id=tenant_id)
        points, after = [], 0
        while batch := await self.repo.logs(pk, after=after, limit=10_000):
            after = batch[-1].seq
            for item in batch:
                if item.line.startswith("{") and '"step"' in item.line:
                    try:
                        event = json.loads(item.line)
                    except ValueError:
                        continue
                    if event.get("type") == "step":
                        points.append({"step": int(event["step"]), "epoch": float(event.get("epoch") or 0),
                                       "loss": event.get("loss"), "learning_rate": event.get("learning_rate")})
        return points

    async def counts(self, *, tenant_id: int) -> dict[JobStatus, int]:
        return await self.repo.counts(tenant_id)


@dataclass(frozen=True)
class TrainingConfig:
    python: str  # the engine environment's interpreter
    program: str  # path of engine/finetune.py
    max_running: int = 1
    image: str = ""  # docker/kubernetes: an image with the engine environment
    volumes: tuple[VolumeMount, ...] = ()  # docker/kubernetes: the engine, the program, the base models
    storage_dir: str = ""  # mounted read-write (data file in, weights out) outside the local runtime
    program_in_image: bool = False  # the image carries the program at ``program`` (no mount of the platform's copy)


def training_command(cfg: TrainingConfig, job: FineTuneJob) -> list[str]:
    p = job.params
    argv = [cfg.python, cfg.program, "--base-model-path", job.base_model_path, "--data-path", job.data_path,
            "--output-dir", job.output_dir, "--epochs", str(p.epochs), "--train-batch-size", str(p.train_batch_size),
            "--eval-batch-size", str(p.eval_batch_size), "--gradient-accumulation-steps", str(p.accumulation_steps),
            "--learning-rate", repr(p.learning_rate), "--weight-decay", repr(p.weight_decay),
            "--warmup-ratio", repr(p.warmup_ratio), "--model-max-length", str(p.model_max_length),
            "--eval-steps", str(p.eval_steps), "--save-steps", str(p.save_steps),
            "--save-total-limit", str(p.save_total_limit), "--logging-steps", str(p.logging_steps)]
    if p.lora:
        argv += ["--lora", "--merge"]  # merged weights: FastChat serves the output directory as it is
    return argv


class TrainingTemplates(Protocol):
    async def training_template(self) -> str: ...


def render_training(content: str, cfg: TrainingConfig, job: FineTuneJob) -> Rendered:
    """The training command from the (admin-only, sandboxed) training template."""
    p = job.params
    variables: dict[str, str | list[str]] = {
        "python": cfg.python, "program": cfg.program, "image": cfg.image, "base_model_path": job.base_model_path,
        "data_path": job.data_path, "output_dir": job.output_dir, "epochs": str(p.epochs),
        "train_batch_size": str(p.train_batch_size), "eval_batch_size": str(p.eval_batch_size),
        "accumulation_steps": str(p.accumulation_steps), "learning_rate": repr(p.learning_rate),
        "weight_decay": repr(p.weight_decay), "warmup_ratio": repr(p.warmup_ratio),
        "model_max_length": str(p.model_max_length), "eval_steps": str(p.eval_steps),
        "save_steps": str(p.save_steps), "save_total_limit": str(p.save_total_limit),
        "logging_steps": str(p.logging_steps), "lora_args": ["--lora", "--merge"] if p.lora else []}
    return render(content, variables, TRAIN_VARIABLES)


class FineTuneRunner:
    def __init__(self, *, repo: FineTuneRepository, runtime: Runtime, events: LogEvents, finisher: Finisher,
                 config: TrainingConfig, owner: str, tenant_code: Any,
                 templates: TrainingTemplates | None = None, gpus: GpuPool | None = None,
                 gates: GateChecks | None = None) -> None:
        self.gates = gates
        self.templates = templates
        # shared with every GPU consumer; training's own running jobs are registered in it too
        self.gpus = gpus or GpuPool(0)
        self.repo = repo
        self.runtime = runtime
        self.events = events
        self.finisher = finisher
        self.config = config
        self.owner = owner
        self.tenant_code = tenant_code  # async (tenant_id) -> code, for model names

    async def tick(self) -> None:
        running, _ = await self.repo.list(tenant_id=None, statuses=[JobStatus.RUNNING], offset=0, limit=10_000)
        for job in running:
            try:
                await self._follow(job)
            except Exception:
                log.exception("following fine-tuning job %s failed", job.job_id)
        await self._stop_cancelled()
        await self._start_waiting(len(running), await self.gpus.in_use())

    async def _start_waiting(self, running: int, gpus_in_use: int) -> None:
        waiting, _ = await self.repo.list(tenant_id=None, statuses=[JobStatus.WAITING], offset=0, limit=10_000)
        for job in sorted(waiting, key=lambda j: j.id):  # first come, first served
            if running >= self.config.max_running:
                return
            if job.params.proc_per_node and gpus_in_use + job.params.proc_per_node > self.gpus.total:
                return  # keep the order: a big job is not overtaken forever by small ones
            volumes = self._volumes(job)
            try:
                if self.templates is not None:
                    rendered = render_training(await self.templates.training_template(), self.config, job)
                    command, env, image = rendered.command, rendered.env, rendered.image
                else:
                    command, image = training_command(self.config, job), self.config.image
                    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
                spec = WorkloadSpec(name=f"aigc-ft-{job.id}", kind=WorkloadKind.JOB, image=image,
                                    volumes=volumes if self.runtime.type != "local" else [],
                                    command=command, gpus_per_replica=job.params.proc_per_node, env=env,
                                    labels={OWNER_LABEL: self.owner, "aigc-admin/finetune": job.job_id})
                # a retried job: the runtimes return an existing workload of that name, so clear it first
                await self.runtime.stop(WorkloadHandle(self.runtime.type, spec.name))
                handle = await self.runtime.start(spec)
            except Exception as e:
                await self._finish(job, JobStatus.FAILED, f"cannot start: {e}")
                continue
            await self.repo.update(job.id, status=JobStatus.RUNNING, start_train_time=datetime.now(UTC),
                                   runtime_handle=handle.to_json())
            running += 1
            gpus_in_use += job.params.proc_per_node

    def _volumes(self, job: FineTuneJob) -> builtins.list[VolumeMount]:
        """The configured mounts, plus the storage path read-write outside the local runtime. On docker, whose
        bind mounts are host paths (the storage mount already assumes the Engine sees the API host's paths), also
        the program's directory and the base model read-only at their paths, as deployments mount the model; a
        configured mount of the same container path wins."""
        volumes = [*self.config.volumes]
        if self.runtime.type == "local":
            return volumes
        if self.config.storage_dir:
            volumes.append(VolumeMount(mount_path=self.config.storage_dir, host_path=self.config.storage_dir,
                                       read_only=False))
        if self.runtime.type == "docker":
            own = () if self.config.program_in_image else (self.config.program.rpartition("/")[0],)
            for path in (*own, job.base_model_path.rstrip("/")):
                if path.startswith("/") and path not in {v.mount_path.rstrip("/") for v in volumes}:
                    volumes.append(VolumeMount(mount_path=path, host_path=path, read_only=True))
        return volumes

    async def interrupt_running(self, reason: str) -> int:
        """The platform stops its workloads (``aigc-admin up`` exits): every running job is stopped and ends FAILED
        with ``reason`` (retryFineTuningJob starts it again), never left RUNNING with nothing behind it."""
        running, _ = await self.repo.list(tenant_id=None, statuses=[JobStatus.RUNNING], offset=0, limit=10_000)
        for job in running:
            if job.runtime_handle:
                await self.runtime.stop(WorkloadHandle.from_json(job.runtime_handle))
            await self._finish(job, JobStatus.FAILED, reason)
        return len(running)

    async def remove_tenant(self, tenant_id: int) -> builtins.list[FineTuneJob]:
        """Stop and forget every fine-tuning job of a tenant being deleted (live log subscriptions end); returns
        the jobs, whose fine-tuned models and outputs the caller removes."""
        removed: builtins.list[FineTuneJob] = []
        while True:
            jobs, _ = await self.repo.list(tenant_id=tenant_id, statuses=None, offset=0, limit=100)
            if not jobs:
                return removed
            for job in jobs:
                if job.runtime_handle:
                    await self.runtime.stop(WorkloadHandle.from_json(job.runtime_handle))
                if job.status not in FINISHED:
                    await self.events.lines(job.id, [], JobStatus.CANCELLED)
                await self.repo.delete_logs(job.id)
                await self.repo.delete(job.id)
                removed.append(job)

    async def _stop_cancelled(self) -> None:
        cancelled, _ = await self.repo.list(tenant_id=None, statuses=[JobStatus.CANCELLED], offset=0, limit=10_000)
        for job in cancelled:
            if job.runtime_handle:
                await self.runtime.stop(WorkloadHandle.from_json(job.runtime_handle))
                await self.repo.update(job.id, runtime_handle="")
                await self.events.lines(job.id, [], JobStatus.CANCELLED)

    async def _follow(self, job: FineTuneJob) -> None:
        current = await self.repo.get(job.id)
        if current is None or current.status != JobStatus.RUNNING:
            return  # cancelled (or deleted) since this round began
        handle = WorkloadHandle.from_json(job.runtime_handle)
        status = await self.runtime.status(handle)  # read before the logs: no line is missed at the end
        chunk = await self.runtime.logs(handle, since=job.log_cursor)
        progress = Progress(job.progress, job.progress_epochs, job.progress_loss, job.progress_learning_rate)
        if chunk.lines:
            await self.repo.append_logs(job.id, job.log_cursor + 1, chunk.lines)
            for line in chunk.lines:
                progress.feed(line)
            batch = [LogLine(job.log_cursor + 1 + i, line) for i, line in enumerate(chunk.lines)]
            job = await self.repo.update(job.id, progress=progress.progress, progress_epochs=progress.epochs,
                                         progress_loss=progress.loss, progress_learning_rate=progress.learning_rate)
            for start in range(0, len(batch), MAX_EVENT_LINES):  # bounded messages on Redis and the sockets
                await self.events.lines(job.id, batch[start:start + MAX_EVENT_LINES], JobStatus.RUNNING)
        if status.state == WorkloadState.SUCCEEDED:
            await self._succeed(job)
        elif status.state in (WorkloadState.FAILED, WorkloadState.MISSING, WorkloadState.STOPPED):
            reason = progress.final.get("message") if progress.final.get("type") == "error" else None
            await self._finish(job, JobStatus.FAILED, reason or status.message or f"workload {status.state.value}")

    async def _succeed(self, job: FineTuneJob) -> None:
        name = model_name(job.base_model, await self.tenant_code(job.tenant_id), job.suffix)
        model_id = await self.finisher.register(job, name, job.output_dir)
        if job.gate is not None:
            # registered; granted and deployed only if its evaluation passes (the gate job decides)
            job = await self._finish(job, JobStatus.SUCCEEDED, "", fine_tuned_model=name, progress=1.0,
                                     gate_status=GateStatus.PENDING, gate_reason="the evaluations run")
            try:
                if self.gates is None:
                    raise RuntimeError("evaluation gates are not available in this process")
                await self.gates.start(job, model_id)
            except Exception as e:
                log.warning("the gate of fine-tuning job %s could not start: %s", job.job_id, e)
                reason = e.message if isinstance(e, DomainError) else str(e)
                await self.repo.update(job.id, gate_status=GateStatus.ERROR,
                                       gate_reason=f"the gate's evaluations could not start: {reason}")
            return
        if job.channel_id is not None:
            await self.finisher.grant(job.channel_id, model_id)
        job = await self._finish(job, JobStatus.SUCCEEDED, "", fine_tuned_model=name, progress=1.0)
        if job.auto_deploy:
            try:
                await self.finisher.deploy(job, model_id)
            except DomainError as e:
                log.warning("fine-tuned model %s registered but not deployed: %s", name, e.message)

    async def _finish(self, job: FineTuneJob, status: JobStatus, reason: str, **extra: Any) -> FineTuneJob:
        now = datetime.now(UTC)
        started = job.start_train_time or now
        job = await self.repo.update(job.id, status=status, error_message=reason[:4000], finished_at=now,
                                     train_duration=int((now - started).total_seconds()), **extra)
        await self.events.lines(job.id, [], status)
        return job
