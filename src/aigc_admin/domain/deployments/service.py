"""Deployments: validate and record requests (API side), then carry them out (worker side).

API side: ``DeploymentService.deploy/undeploy/scale`` validate, record and enqueue a job with an
explicit id (``deploy:<id>``), so that enqueueing twice is harmless. Worker side:
``DeploymentRunner`` starts or stops the workload on the runtime and decides RUNNING only when every
replica's worker is registered with the FastChat controller and answers ``worker_get_status``.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import json
import logging
import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from aigc_admin.domain.capacity import GpuPool
from aigc_admin.domain.deployments.entities import (
    ACTIVE_STATUSES,
    Deployment,
    DeploymentStatus,
    Engine,
    EngineOptions,
    HealthRecord,
)
from aigc_admin.domain.deployments.templates import render
from aigc_admin.domain.errors import DomainError, NotFound
from aigc_admin.domain.models.service import ModelService, Provider
from aigc_admin.domain.runtime import (
    OWNER_LABEL,
    LogChunk,
    Runtime,
    RuntimeUnavailable,
    VolumeMount,
    WorkloadHandle,
    WorkloadSpec,
    WorkloadState,
)

log = logging.getLogger(__name__)
DEPLOY_JOB = "aigc_admin.workers.tasks.deployments:deploy"
UNDEPLOY_JOB = "aigc_admin.workers.tasks.deployments:undeploy"
MAX_REPLICAS = 16
MAX_GPUS_PER_REPLICA = 8
MAX_NODES = 16  # machines one vllm replica may span
RAY_PORT = 6379  # multi-node vllm: the Ray head on each replica's leader pod
# what each engine can load quantized: FastChat's model_worker 8-bit (bitsandbytes); vLLM its methods by name
QUANTIZATION = {Engine.MODEL_WORKER: ("8bit",), Engine.VLLM_WORKER: ("8bit",),
                Engine.VLLM: ("awq", "awq_marlin", "gptq", "gptq_marlin", "fp8", "bitsandbytes", "gguf",
                              "compressed-tensors", "experts_int8")}
DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
HEALTH_HISTORY = timedelta(days=1)  # probes older than this are pruned by the reconciler
MAX_AUTO_RESTARTS = 3  # workers lost this many times in a row: FAILED, until someone redeploys
STABLE_AFTER = timedelta(minutes=10)  # running this long since its last start: the restarts count starts over


class DeploymentErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"
    ALREADY_DEPLOYED = "ALREADY_DEPLOYED"
    NOT_DEPLOYABLE = "NOT_DEPLOYABLE"
    INSUFFICIENT_CAPACITY = "INSUFFICIENT_CAPACITY"
    NOT_RUNNING = "NOT_RUNNING"
    QUEUE_UNAVAILABLE = "QUEUE_UNAVAILABLE"


def _error(code: DeploymentErrorCode, message: str, field: str | None = None) -> DomainError:
    return DomainError(code, message, field)


class DeploymentRepository(Protocol):
    async def get(self, deployment_id: int) -> Deployment | None: ...
    async def create(self, **values: Any) -> Deployment: ...
    async def update(self, deployment_id: int, **changes: Any) -> Deployment: ...
    async def delete(self, deployment_id: int) -> None: ...
    async def active_for_model(self, model_id: int) -> Deployment | None: ...
    async def gpus_in_use(self) -> int: ...
    async def status_counts(self, tenant_id: int | None) -> dict[str, int]: ...
    async def list(self, *, tenant_id: int | None, statuses: builtins.list[DeploymentStatus] | None,
                   offset: int, limit: int, model_ids: builtins.list[int] | None = None,
                   ) -> tuple[builtins.list[Deployment], int]: ...
    async def record_health(self, deployment_id: int | None, record: HealthRecord) -> None: ...
    async def health(self, deployment_id: int | None, limit: int) -> builtins.list[HealthRecord]: ...
    async def prune_health(self, before: datetime) -> int: ...


class JobEnqueuer(Protocol):
    def enqueue(self, func_path: str, *, job_id: str, **kwargs: Any) -> str: ...


class DeploymentEvents(Protocol):
    async def deployment_changed(self, deployment: Deployment) -> None: ...


class WorkerProbe(Protocol):
    """What worker_get_status tells about one worker."""

    @property
    def model_names(self) -> Sequence[str]: ...
    @property
    def speed(self) -> float: ...
    @property
    def queue_length(self) -> int: ...


class ReplicaProbe(Protocol):
    async def worker_status(self, worker_address: str) -> WorkerProbe | None: ...


class Controller(ReplicaProbe, Protocol):
    """The FastChat controller and its workers, as the runner needs them."""

    async def list_models(self) -> list[str]: ...


class AdapterHost(ReplicaProbe, Protocol):
    """vLLM replicas that serve LoRA adapters on their base model."""

    async def load_adapter(self, address: str, name: str, path: str) -> None: ...
    async def unload_adapter(self, address: str, name: str) -> None: ...


@dataclass(frozen=True)
class DeployRequest:
    model_id: int
    replicas: int = 1
    gpus_per_replica: int = 0
    label: str = ""
    quantization: str = ""  # "" or one of QUANTIZATION[engine]
    engine: Engine = Engine.MODEL_WORKER
    options: EngineOptions = dataclasses.field(default_factory=EngineOptions)  # the vllm engine's
    base_deployment_id: int | None = None  # serve the model (a LoRA adapter) on this vllm deployment's replicas


class DeploymentService:
    def __init__(self, *, repo: DeploymentRepository, models: ModelService, jobs: JobEnqueuer,
                 events: DeploymentEvents, runtime: Runtime, gpus: GpuPool) -> None:
        self.repo = repo
        self.gpus = gpus  # shared with every other GPU consumer (training jobs, ...)
        self.runtime = runtime
        self.models = models
        self.jobs = jobs
        self.events = events

    async def get(self, deployment_id: int, *, tenant_id: int | None = None) -> Deployment:
        d = await self.repo.get(deployment_id)
        if d is None or (tenant_id is not None and d.tenant_id != tenant_id):
            raise NotFound("deployment", deployment_id)
        return d

    async def list(self, *, tenant_id: int | None, statuses: builtins.list[DeploymentStatus] | None = None,
                   offset: int = 0, limit: int = 20, model_ids: builtins.list[int] | None = None,
                   ) -> tuple[builtins.list[Deployment], int]:
        return await self.repo.list(tenant_id=tenant_id, statuses=statuses, offset=offset, limit=limit,
                                    model_ids=model_ids)

    async def status_counts(self, *, tenant_id: int | None) -> dict[str, int]:
        """How many of the tenant's deployments (every one's, without a tenant) are in each status."""
        return await self.repo.status_counts(tenant_id)

    async def logs(self, deployment_id: int, *, tenant_id: int | None, since: int = 0, replica: int = 0) -> LogChunk:
        d = await self.get(deployment_id, tenant_id=tenant_id)
        if not d.runtime_handle:
            return LogChunk([], since)
        return await self.runtime.logs(WorkloadHandle.from_json(d.runtime_handle), since=since, replica=replica)

    async def health(self, deployment_id: int, *, tenant_id: int | None,
                     limit: int = 50) -> builtins.list[HealthRecord]:
        await self.get(deployment_id, tenant_id=tenant_id)
        return await self.repo.health(deployment_id, limit)

    async def deploy(self, req: DeployRequest, *, tenant_id: int | None, operator: str) -> Deployment:
        model = await self.models.get(req.model_id, tenant_id=tenant_id)
        if model.provider != Provider.LOCAL:
            raise _error(DeploymentErrorCode.NOT_DEPLOYABLE, "only local models are deployed; external models "
                         "are served by their upstream", "modelId")
        if not model.model_path:
            raise _error(DeploymentErrorCode.NOT_DEPLOYABLE, "the model has no modelPath to load", "modelId")
        if req.base_deployment_id is not None:
            req = await self._adapter_request(req, tenant_id)
        self._check_numbers(req.replicas, req.gpus_per_replica, req.label, req.quantization, req.engine)
        self._check_options(req.engine, req.options, req.gpus_per_replica, self.runtime.type)
        if await self.repo.active_for_model(model.id) is not None:
            raise _error(DeploymentErrorCode.ALREADY_DEPLOYED, f"model {model.name} is already deployed", "modelId")
        await self._check_capacity(req.replicas * req.gpus_per_replica * max(1, req.options.nodes))
        d = await self.repo.create(
            model_id=model.id, tenant_id=tenant_id, status=DeploymentStatus.PENDING.value, engine=req.engine.value,
            replicas=req.replicas, gpus_per_replica=req.gpus_per_replica, label=req.label,
            quantization=req.quantization, runtime_backend=self.runtime.type, operator=operator,
            model_path=model.model_path, engine_options=json.dumps(req.options.to_dict()),
            base_deploy_id=req.base_deployment_id)
        await self._enqueue(DEPLOY_JOB, d, "deploy")
        await self.events.deployment_changed(d)
        return d

    async def _adapter_request(self, req: DeployRequest, tenant_id: int | None) -> DeployRequest:
        """A LoRA adapter on a running vllm deployment with adapter slots: no workload, GPUs or options of its own."""
        base = await self.repo.get(req.base_deployment_id or 0)
        if base is None or (tenant_id is not None and base.tenant_id != tenant_id):
            raise _error(DeploymentErrorCode.NOT_FOUND, f"deployment {req.base_deployment_id} not found",
                         "baseDeploymentId")
        if base.engine != Engine.VLLM or not base.engine_options.max_loras or base.base_deployment_id is not None:
            raise _error(DeploymentErrorCode.INVALID, "the base deployment must be a vllm deployment with "
                         "engineOptions.maxLoras > 0", "baseDeploymentId")
        if base.status not in (DeploymentStatus.RUNNING, DeploymentStatus.DEGRADED):
            raise _error(DeploymentErrorCode.NOT_RUNNING, f"the base deployment is {base.status.value}",
                         "baseDeploymentId")
        if req.replicas != 1 or req.gpus_per_replica or req.quantization or req.options != EngineOptions():
            raise _error(DeploymentErrorCode.INVALID, "an adapter runs on its base deployment's replicas: no "
                         "replicas, GPUs, quantization or engine options of its own", "baseDeploymentId")
        return dataclasses.replace(req, engine=Engine.VLLM)

    async def undeploy(self, deployment_id: int, *, tenant_id: int | None) -> Deployment:
        d = await self.get(deployment_id, tenant_id=tenant_id)
        if d.status in (DeploymentStatus.STOPPED, DeploymentStatus.STOPPING):
            return d  # idempotent
        d = await self.repo.update(d.id, status=DeploymentStatus.STOPPING.value, reason="")
        await self._enqueue(UNDEPLOY_JOB, d, "undeploy")
        await self.events.deployment_changed(d)
        return d

    async def scale(self, deployment_id: int, replicas: int, *, tenant_id: int | None) -> Deployment:
        d = await self.get(deployment_id, tenant_id=tenant_id)
        if d.base_deployment_id is not None:
            raise _error(DeploymentErrorCode.INVALID, "an adapter deployment runs on its base deployment's "
                         "replicas: scale the base deployment", "id")
        if d.status not in (DeploymentStatus.RUNNING, DeploymentStatus.DEGRADED, DeploymentStatus.FAILED,
                            DeploymentStatus.STARTING, DeploymentStatus.PENDING):
            raise _error(DeploymentErrorCode.NOT_RUNNING, f"deployment is {d.status.value}", "id")
        self._check_numbers(replicas, d.gpus_per_replica, d.label, d.quantization, d.engine)
        if replicas == d.replicas and d.status != DeploymentStatus.FAILED:
            return d  # idempotent
        held = 0 if d.status == DeploymentStatus.FAILED else d.replicas  # a failed one holds no capacity
        await self._check_capacity((replicas - held) * d.gpus_per_replica)
        return await self._restart(d, replicas=replicas)

    async def redeploy(self, deployment_id: int, *, tenant_id: int | None) -> Deployment:
        d = await self.get(deployment_id, tenant_id=tenant_id)
        if d.status == DeploymentStatus.STOPPING:
            raise _error(DeploymentErrorCode.NOT_RUNNING, "the deployment is stopping", "id")
        if d.status in (DeploymentStatus.STOPPED, DeploymentStatus.FAILED):
            other = await self.repo.active_for_model(d.model_id)
            if other is not None and other.id != d.id:
                raise _error(DeploymentErrorCode.ALREADY_DEPLOYED, "the model has another active deployment", "id")
            await self._check_capacity(d.replicas * d.gpus_per_replica)  # a failed one holds no capacity
        return await self._restart(d, replicas=d.replicas)

    async def _restart(self, d: Deployment, *, replicas: int) -> Deployment:
        d = await self.repo.update(d.id, status=DeploymentStatus.PENDING.value, replicas=replicas, reason="",
                                   restarts=0)
        await self._enqueue(DEPLOY_JOB, d, "deploy")
        await self.events.deployment_changed(d)
        return d

    async def _enqueue(self, func: str, d: Deployment, verb: str) -> None:
        try:
            self.jobs.enqueue(func, job_id=f"{verb}:{d.id}", deployment_id=d.id)
        except Exception as e:
            log.error("could not enqueue %s of deployment %s: %s", verb, d.id, e)
            await self.repo.update(d.id, status=DeploymentStatus.FAILED.value,
                                   reason=f"could not enqueue the {verb} job: the queue is unavailable")
            raise _error(DeploymentErrorCode.QUEUE_UNAVAILABLE, "the job queue (Redis) is unavailable; "
                         "try again", None) from None

    @staticmethod
    def _check_numbers(replicas: int, gpus: int, label: str, quantization: str, engine: Engine) -> None:
        if not 1 <= replicas <= MAX_REPLICAS:
            raise _error(DeploymentErrorCode.INVALID, f"replicas must be between 1 and {MAX_REPLICAS}", "replicas")
        if not 0 <= gpus <= MAX_GPUS_PER_REPLICA:
            raise _error(DeploymentErrorCode.INVALID, f"gpusPerReplica must be between 0 and {MAX_GPUS_PER_REPLICA}",
                         "gpusPerReplica")
        if label and not re.match(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$", label):
            raise _error(DeploymentErrorCode.INVALID, "label must be a Kubernetes label value", "label")
        if quantization and quantization not in QUANTIZATION[engine]:
            raise _error(DeploymentErrorCode.INVALID, f"quantization must be empty or one of "
                         f"{', '.join(QUANTIZATION[engine])} with the {engine.value} engine", "quantization")

    @staticmethod
    def _check_options(engine: Engine, o: EngineOptions, gpus: int, runtime: str = "local") -> None:
        def invalid(field: str, message: str) -> DomainError:
            return _error(DeploymentErrorCode.INVALID, message, f"engineOptions.{field}")

        if engine != Engine.VLLM:
            if o != EngineOptions():
                raise invalid("engine", f"engine options apply to the vllm engine, not {engine.value}")
            return
        if not 0 <= o.tensor_parallel_size <= max(1, gpus):
            raise invalid("tensorParallelSize", f"tensorParallelSize must be between 1 and the replica's GPUs "
                                                f"({max(1, gpus)}); 0: all of them")
        if not (o.max_model_len == 0 or 16 <= o.max_model_len <= 10_000_000):
            raise invalid("maxModelLen", "maxModelLen must be 0 (the model's) or between 16 and 10,000,000")
        if not 0 <= o.gpu_memory_utilization <= 1 or (o.gpu_memory_utilization and not gpus):
            raise invalid("gpuMemoryUtilization", "gpuMemoryUtilization must be in (0, 1], and only with GPUs")
        if o.dtype and o.dtype not in DTYPES:
            raise invalid("dtype", f"dtype must be empty or one of {', '.join(DTYPES)}")
        if not 0 <= o.max_loras <= 64 or o.max_lora_rank not in (0, 8, 16, 32, 64, 128, 256, 320, 512):
            raise invalid("maxLoras", "maxLoras must be between 0 and 64, maxLoraRank 0 or a power of two "
                                      "from 8 to 512")
        if not 0 <= o.cpu_kv_cache_gib <= 1024 or (o.cpu_kv_cache_gib and gpus):
            raise invalid("cpuKvCacheGib", "cpuKvCacheGib must be between 0 and 1024, and only without GPUs")
        if not 0 <= o.nodes <= MAX_NODES or (o.nodes > 1 and (not gpus or runtime != "kubernetes")):
            raise invalid("nodes", f"nodes must be between 0 and {MAX_NODES}; more than one needs GPUs and the "
                                   "kubernetes runtime (a LeaderWorkerSet)")

    async def _check_capacity(self, extra_gpus: int) -> None:
        if extra_gpus <= 0:
            return
        used, total = await self.gpus.in_use(), self.gpus.total
        if used + extra_gpus > total:
            raise _error(DeploymentErrorCode.INSUFFICIENT_CAPACITY,
                         f"{extra_gpus} GPU(s) asked, {max(0, total - used)} of {total} free", "gpusPerReplica")


# --- worker side -----------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineConfig:
    python: str  # the engine environment's interpreter (local runtime) or inside the image
    image: str
    controller_address: str
    device: str  # "auto" | "cpu" | "cuda"
    vllm_python: str = "python3"  # the vllm engine's (its own environment: a current vLLM needs transformers 5)
    vllm_image: str = "vllm/vllm-openai:latest"
    start_timeout: float = 300.0
    poll_interval: float = 0.5
    volumes: tuple[VolumeMount, ...] = ()  # extra mounts (docker/kubernetes)
    model_claim: str = ""  # kubernetes: the PersistentVolumeClaim holding models
    tolerations: tuple[dict[str, Any], ...] = ()  # kubernetes


class TemplateSource(Protocol):
    async def inference_template(self, engine: Engine) -> str: ...


def workload_name(deployment_id: int) -> str:
    return f"aigc-deploy-{deployment_id}"


class DeploymentRunner:
    def __init__(self, *, repo: DeploymentRepository, runtime: Runtime, controller: Controller,
                 templates: TemplateSource, events: DeploymentEvents, engine: EngineConfig, owner: str,
                 jobs: JobEnqueuer | None = None, vllm: AdapterHost | None = None) -> None:
        self.vllm = vllm  # the vllm engine's replicas (None: that engine cannot be deployed)
        self.jobs = jobs  # to start a deployment again when its workers are lost (None: such a loss is FAILED)
        self.repo = repo
        self.runtime = runtime
        self.controller = controller
        self.templates = templates
        self.events = events
        self.engine = engine
        self.owner = owner

    async def _set(self, deployment_id: int, **changes: Any) -> Deployment:
        d = await self.repo.update(deployment_id, **changes)
        await self.events.deployment_changed(d)
        return d

    async def remove_tenant(self, tenant_id: int) -> int:
        """Stop every deployment of a tenant being deleted and forget it; returns how many there were."""
        removed = 0
        while True:
            rows, _ = await self.repo.list(tenant_id=tenant_id, statuses=None, offset=0, limit=100)
            if not rows:
                return removed
            for d in rows:
                if d.runtime_handle:
                    await self.runtime.stop(WorkloadHandle.from_json(d.runtime_handle))
                await self.events.deployment_changed(dataclasses.replace(
                    d, status=DeploymentStatus.STOPPED, reason="the tenant was deleted", runtime_handle=""))
                await self.repo.delete(d.id)
                removed += 1

    async def spec(self, d: Deployment) -> WorkloadSpec:
        device = self.engine.device
        if device == "auto":
            device = "cuda" if d.gpus_per_replica else "cpu"
        vllm = d.engine == Engine.VLLM
        rendered = render(await self.templates.inference_template(d.engine), {
            "python": self.engine.vllm_python if vllm else self.engine.python,
            "image": self.engine.vllm_image if vllm else self.engine.image, "model_path": d.model_path,
            "model_name": d.model_name, "controller_address": self.engine.controller_address, "device": device,
            "gpus": str(max(1, d.gpus_per_replica)), "quantization_args": ["--load-8bit"] if d.quantization else [],
            "max_gpu_memory": "", "worker_args": [],
            "conv_template_args": ["--conv-template", d.conversation_template] if d.conversation_template else [],
            "engine_args": vllm_args(d) if vllm else [],
            "cpu_kv_cache_gib": str(d.engine_options.cpu_kv_cache_gib or DEFAULT_CPU_KV_CACHE_GIB),
        })
        command, worker_command, nodes = rendered.command, [], max(1, d.engine_options.nodes) if vllm else 1
        if nodes > 1:
            # vLLM's multi-node recipe: a Ray cluster per replica, its head on the leader (which then serves), the
            # other pods join it; the leader's address comes from the LeaderWorkerSet controller
            command = ["sh", "-c", f"ray start --head --port={RAY_PORT} && exec {shlex.join(rendered.command)}"]
            worker_command = ["sh", "-c", f"ray start --address=$(LWS_LEADER_ADDRESS):{RAY_PORT} --block"]
        return WorkloadSpec(
            name=workload_name(d.id), command=command, image=rendered.image, env=rendered.env,
            replicas=d.replicas, gpus_per_replica=d.gpus_per_replica, nodes=nodes, worker_command=worker_command,
            volumes=[VolumeMount(mount_path=d.model_path, host_path="" if self.engine.model_claim else d.model_path,
                                 claim_name=self.engine.model_claim, read_only=True), *self.engine.volumes]
            if self.runtime.type != "local" else [],
            labels={OWNER_LABEL: self.owner, "aigc-admin/deployment": str(d.id), "aigc-admin/model": _label(d)},
            node_selector={"aigc-admin/label": d.label} if d.label else {},
            tolerations=[dict(t) for t in self.engine.tolerations])

    async def deploy(self, deployment_id: int) -> Deployment:
        d = await self.repo.get(deployment_id)
        if d is None or d.status not in (DeploymentStatus.PENDING, DeploymentStatus.STARTING):
            return d  # type: ignore[return-value]  # undeployed meanwhile, or already handled: nothing to do
        if d.base_deployment_id is not None:
            return await self._load_adapter(d)
        if d.runtime_handle:  # a redeploy or scale: replace the old workload
            await self.runtime.stop(WorkloadHandle.from_json(d.runtime_handle))
        try:
            handle = await self.runtime.start(await self.spec(d))
        except RuntimeUnavailable as e:
            return await self._set(d.id, status=DeploymentStatus.FAILED.value, reason=f"runtime unavailable: {e}")
        except (ValueError, DomainError) as e:
            return await self._set(d.id, status=DeploymentStatus.FAILED.value, reason=f"cannot start: {e}")
        d = await self._set(d.id, status=DeploymentStatus.STARTING.value, runtime_handle=handle.to_json(),
                            started_at=datetime.now(UTC))
        return await self._wait_running(d, handle)

    async def _wait_running(self, d: Deployment, handle: WorkloadHandle) -> Deployment:
        deadline = time.monotonic() + self.engine.start_timeout
        while True:
            current = await self.repo.get(d.id)
            if current is not None and current.status == DeploymentStatus.PENDING:
                # scaled or redeployed while this job waited: its enqueue was absorbed by this job, so
                # this job starts over with the new settings
                return await self.deploy(d.id)
            if current is None or current.status != DeploymentStatus.STARTING:
                return current or d  # undeployed while starting
            status = await self.runtime.status(handle)
            if status.state in (WorkloadState.FAILED, WorkloadState.MISSING, WorkloadState.STOPPED):
                return await self._set(d.id, status=DeploymentStatus.FAILED.value,
                                       reason=status.message or f"workload {status.state.value.lower()}")
            addresses = [r.address for r in status.replicas if r.address]
            if status.state == WorkloadState.RUNNING and len(addresses) == d.replicas:
                if await self._all_registered(d, addresses):
                    return await self._set(d.id, status=DeploymentStatus.RUNNING.value, reason="",
                                           worker_addresses=json.dumps(addresses))
            if time.monotonic() > deadline:
                tail = " | ".join((await self.runtime.logs(handle, 0)).lines[-5:])
                await self.runtime.stop(handle)
                return await self._set(d.id, status=DeploymentStatus.FAILED.value,
                                       reason=f"workers did not register within {self.engine.start_timeout:.0f} s; "
                                              f"last log lines: {tail}")
            await asyncio.sleep(self.engine.poll_interval)

    @staticmethod
    def _base_down(d: Deployment, base: Deployment | None) -> str:
        """Why an adapter's base deployment cannot serve it ("": it can)."""
        if base is not None and base.status in (DeploymentStatus.RUNNING, DeploymentStatus.DEGRADED):
            return ""
        return f"the base deployment {d.base_deployment_id} is {base.status.value.lower() if base else 'gone'}"

    async def _load_adapter(self, d: Deployment) -> Deployment:
        """Serve a LoRA adapter on every replica of its base deployment (vLLM loads it at run time)."""
        base = await self.repo.get(d.base_deployment_id or 0)
        if down := self._base_down(d, base):
            return await self._set(d.id, status=DeploymentStatus.FAILED.value, reason=down)
        assert base is not None
        if self.vllm is None:
            return await self._set(d.id, status=DeploymentStatus.FAILED.value, reason="vllm is not configured")
        d = await self._set(d.id, status=DeploymentStatus.STARTING.value, started_at=datetime.now(UTC))
        try:
            for address in base.worker_addresses:
                await self.vllm.load_adapter(address, d.model_name, d.model_path)
        except Exception as e:
            return await self._set(d.id, status=DeploymentStatus.FAILED.value, reason=f"cannot load the adapter: {e}")
        return await self._set(d.id, status=DeploymentStatus.RUNNING.value, reason="",
                               worker_addresses=json.dumps(list(base.worker_addresses)))

    async def _check_adapter(self, d: Deployment, base: Deployment | None) -> Deployment | None:
        """An adapter follows its base: loaded again on a replica that lost it (restarted), on the base's current
        replicas; DEGRADED while the base is not running."""
        if down := self._base_down(d, base):
            return await self._set(d.id, status=DeploymentStatus.DEGRADED.value, reason=down) if (
                down != d.reason) else None
        assert base is not None
        if self.vllm is None:
            return None
        probes = await asyncio.gather(*(self.vllm.worker_status(a) for a in base.worker_addresses))
        for address, probe in zip(base.worker_addresses, probes, strict=True):
            if probe is not None and d.model_name not in probe.model_names:
                try:
                    await self.vllm.load_adapter(address, d.model_name, d.model_path)
                    log.info("loaded adapter %s again on %s", d.model_name, address)
                except Exception as e:
                    log.warning("could not load adapter %s again on %s: %s", d.model_name, address, e)
        if d.worker_addresses != base.worker_addresses or d.status != DeploymentStatus.RUNNING:
            return await self._set(d.id, status=DeploymentStatus.RUNNING.value, reason="",
                                   worker_addresses=json.dumps(list(base.worker_addresses)))
        return None

    def _probe(self, d: Deployment) -> ReplicaProbe:
        if d.engine == Engine.VLLM:
            if self.vllm is None:
                raise RuntimeError("the vllm engine is not configured in this process")
            return self.vllm
        return self.controller

    async def _all_registered(self, d: Deployment, addresses: list[str]) -> bool:
        """Every replica answers and serves the model (FastChat: registered with the controller too; vLLM's
        server answers only once the model is loaded)."""
        if d.engine != Engine.VLLM:
            try:
                if d.model_name not in await self.controller.list_models():
                    return False
            except Exception:
                return False
        probe = self._probe(d)
        probes = await asyncio.gather(*(probe.worker_status(a) for a in addresses))
        return all(p is not None and d.model_name in p.model_names for p in probes)

    async def restart_or_fail(self, d: Deployment, reason: str) -> Deployment:
        """Its workers are lost (killed, crashed, stopped with the platform): the deployment is still wanted, so it
        is started again by a deploy job, ``MAX_AUTO_RESTARTS`` times in a row at most; then FAILED."""
        if self.jobs is None or d.restarts >= MAX_AUTO_RESTARTS:
            tail = f" (after {d.restarts} automatic restarts)" if d.restarts else ""
            return await self._set(d.id, status=DeploymentStatus.FAILED.value, reason=f"{reason}{tail}")
        attempt = d.restarts + 1
        d = await self._set(d.id, status=DeploymentStatus.PENDING.value, restarts=attempt, worker_addresses="[]",
                            reason=f"{reason}: starting it again (automatic restart {attempt} of {MAX_AUTO_RESTARTS})")
        try:
            self.jobs.enqueue(DEPLOY_JOB, job_id=f"deploy:{d.id}", deployment_id=d.id)
        except Exception as e:
            log.error("could not enqueue the restart of deployment %s: %s", d.id, e)
            return await self._set(d.id, status=DeploymentStatus.FAILED.value,
                                   reason=f"{reason}; the restart could not be enqueued (queue unavailable)")
        return d

    async def fail(self, deployment_id: int, reason: str) -> None:
        await self._set(deployment_id, status=DeploymentStatus.FAILED.value, reason=reason[:2000])

    async def undeploy(self, deployment_id: int) -> Deployment | None:
        d = await self.repo.get(deployment_id)
        if d is None:
            return None
        if d.runtime_handle:
            await self.runtime.stop(WorkloadHandle.from_json(d.runtime_handle))
        if d.base_deployment_id is not None and self.vllm is not None:
            for address in d.worker_addresses:
                await self.vllm.unload_adapter(address, d.model_name)
        return await self._set(d.id, status=DeploymentStatus.STOPPED.value, stopped_at=datetime.now(UTC),
                               worker_addresses="[]")

    async def check_health(self, seen: list[tuple[Deployment, HealthRecord]] | None = None) -> list[Deployment]:
        """Probe every deployed worker; returns the deployments whose status changed. ``seen`` collects
        what each probe found (the health monitor's event, without reading it back)."""
        changed = []
        watched = [DeploymentStatus.RUNNING, DeploymentStatus.DEGRADED]
        deployments, _ = await self.repo.list(tenant_id=None, statuses=watched, offset=0, limit=10_000)
        serving = {d.id: d for d in deployments}  # an adapter's base, without a read per adapter
        for d in deployments:
            if not d.runtime_handle and d.base_deployment_id is None:
                continue
            try:
                if d.base_deployment_id is not None:  # a base that is not serving is read (rare) to say why
                    base = serving.get(d.base_deployment_id) or await self.repo.get(d.base_deployment_id)
                    new_d = await self._check_adapter(d, base)
                else:
                    new_d = await self._check_one(d, seen)
            except Exception:
                log.exception("health check of deployment %s failed", d.id)
                continue
            if new_d is not None:
                changed.append(new_d)
        return changed

    async def _check_one(self, d: Deployment, seen: list[tuple[Deployment, HealthRecord]] | None) -> Deployment | None:
        handle = WorkloadHandle.from_json(d.runtime_handle)
        status = await self.runtime.status(handle)
        addresses = [r.address for r in status.replicas if r.address] or list(d.worker_addresses)
        probes = await asyncio.gather(*(self._probe(d).worker_status(a) for a in addresses))
        healthy = 0
        silent = "the vLLM server does not answer" if d.engine == Engine.VLLM else (
            "worker does not answer worker_get_status")
        for address, probe in zip(addresses, probes, strict=True):
            ok = probe is not None and d.model_name in probe.model_names
            healthy += ok
            record = HealthRecord(address, ok, probe.speed if probe else 0, probe.queue_length if probe else 0,
                                  "" if ok else silent, datetime.now(UTC), running=getattr(probe, "running", 0),
                                  waiting=getattr(probe, "waiting", 0),
                                  kv_cache_usage=getattr(probe, "kv_cache_usage", None))
            await self.repo.record_health(d.id, record)
            if seen is not None:
                seen.append((d, record))
        if status.state in (WorkloadState.FAILED, WorkloadState.MISSING, WorkloadState.STOPPED) and not healthy:
            # the processes are gone: nothing comes back by itself, but the deployment is still wanted
            return await self.restart_or_fail(d, status.message or f"workload {status.state.value.lower()}")
        elif healthy == d.replicas and status.state == WorkloadState.RUNNING:
            new, reason = DeploymentStatus.RUNNING, ""
            started = d.started_at
            if d.restarts and started is not None and datetime.now(UTC) - started > STABLE_AFTER:
                await self.repo.update(d.id, restarts=0)
            if tuple(addresses) != d.worker_addresses:  # a replica started again on another port
                return await self._set(d.id, status=new.value, reason=reason, worker_addresses=json.dumps(addresses))
        else:
            # alive but (some) workers silent, e.g. a loaded machine: degraded, probed again next round
            detail = f": {status.message}" if status.message else ""
            if status.state == WorkloadState.FAILED:  # some replicas ended, the others answer: replace those
                restarted = await self.runtime.restart_failed(handle, await self.spec(d))
                if restarted:
                    detail = f": replica {', '.join(map(str, restarted))} ended and was started again"
            new, reason = DeploymentStatus.DEGRADED, f"{healthy} of {d.replicas} workers answer{detail}"
        if new != d.status or reason != d.reason:
            return await self._set(d.id, status=new.value, reason=reason)
        return None

    async def reconcile(self) -> dict[str, int]:
        """Repair drift between the database and the runtime: vanished workloads, leftovers."""
        active, _ = await self.repo.list(tenant_id=None, statuses=list(ACTIVE_STATUSES), offset=0, limit=10_000)
        by_name = {workload_name(d.id): d for d in active}
        stopped = failed = 0
        for handle in await self.runtime.list_owned():
            if handle.name.startswith("aigc-deploy-") and handle.name not in by_name:
                await self.runtime.stop(handle)  # its deployment is gone or stopped: a leftover
                stopped += 1
        now = datetime.now(UTC)
        for d in active:
            if d.status in (DeploymentStatus.RUNNING, DeploymentStatus.DEGRADED) and d.runtime_handle:
                state = (await self.runtime.status(WorkloadHandle.from_json(d.runtime_handle))).state
                if state == WorkloadState.MISSING:
                    if (await self.restart_or_fail(d, "the workload vanished")).status == DeploymentStatus.FAILED:
                        failed += 1
            # a job that died with its worker leaves the deployment waiting: its job is enqueued again (a no-op
            # while it is queued or running; the queue counts a job whose worker stopped heart-beating as
            # abandoned), and as a last resort a deadline, measured from the deployment's last change (a redeploy
            # or scale resets it)
            since = d.updated_at or d.created_at
            waiting = (DeploymentStatus.PENDING, DeploymentStatus.STARTING, DeploymentStatus.STOPPING)
            if d.status in waiting and self.jobs is not None:
                verb, func = ("undeploy", UNDEPLOY_JOB) if d.status == DeploymentStatus.STOPPING else ("deploy",
                                                                                                         DEPLOY_JOB)
                try:
                    self.jobs.enqueue(func, job_id=f"{verb}:{d.id}", deployment_id=d.id)
                except Exception as e:
                    log.warning("reconcile could not enqueue %s of deployment %s: %s", verb, d.id, e)
            stuck = d.status in waiting and since is not None and (
                now - since).total_seconds() > 2 * self.engine.start_timeout + 60
            if stuck:
                await self._set(d.id, status=DeploymentStatus.FAILED.value,
                                reason=f"no progress while {d.status.value.lower()}: is a worker running?")
                failed += 1
        await self.repo.prune_health(now - HEALTH_HISTORY)
        return {"stopped_leftovers": stopped, "failed_vanished": failed}


DEFAULT_CPU_KV_CACHE_GIB = 2  # vLLM's CPU build takes most of the memory for its KV cache unless told


def vllm_args(d: Deployment) -> list[str]:
    """vLLM server arguments from a deployment's engine options (those left at 0/""/False are not passed)."""
    o = d.engine_options
    args = ["--tensor-parallel-size", str(o.tensor_parallel_size or max(1, d.gpus_per_replica))]
    if o.max_model_len:
        args += ["--max-model-len", str(o.max_model_len)]
    if o.gpu_memory_utilization:
        args += ["--gpu-memory-utilization", f"{o.gpu_memory_utilization:g}"]
    if o.dtype:
        args += ["--dtype", o.dtype]
    if d.quantization:
        args += ["--quantization", d.quantization]
    if o.max_loras:
        args += ["--enable-lora", "--max-loras", str(o.max_loras)]
        if o.max_lora_rank:
            args += ["--max-lora-rank", str(o.max_lora_rank)]
    if o.enforce_eager:
        args.append("--enforce-eager")
    if o.nodes > 1:  # tensor parallel within a machine, pipeline parallel across them
        args += ["--pipeline-parallel-size", str(o.nodes), "--distributed-executor-backend", "ray"]
    return args


def _label(d: Deployment) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", d.model_name)[:63].strip("-._") or "model"
