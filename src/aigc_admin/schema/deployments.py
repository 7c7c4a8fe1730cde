"""Deployments, their logs and health."""

from __future__ import annotations

from datetime import datetime

import strawberry

from aigc_admin.domain.deployments import entities as dep
from aigc_admin.domain.deployments.service import DeploymentErrorCode as _DeploymentErrorCode

DeploymentStatus = strawberry.enum(dep.DeploymentStatus, description="Where a deployment is in its life.")
Engine = strawberry.enum(dep.Engine, description="What serves a deployment: FastChat's model_worker or vllm_worker "
                                                 "behind the FastChat controller, or vLLM's own OpenAI server "
                                                 "(vllm), which the gateway calls directly.")


@strawberry.type(description="How the vllm engine runs each replica; 0, '' or false: vLLM's default.")
class EngineOptions:
    tensor_parallel_size: int = strawberry.field(description="GPUs one model copy is split over (0: the "
                                                             "replica's GPUs).")
    max_model_len: int = strawberry.field(description="Longest prompt plus completion, in tokens (0: the model's).")
    gpu_memory_utilization: float = strawberry.field(description="Share of each GPU's memory vLLM may take.")
    dtype: str = strawberry.field(description="auto, half, float16, bfloat16, float or float32.")
    max_loras: int = strawberry.field(description="LoRA adapters served at once on this deployment (0: none; "
                                                  "> 0 lets adapter deployments use it as their base).")
    max_lora_rank: int = strawberry.field(description="The largest adapter rank (0: vLLM's default, 16).")
    cpu_kv_cache_gib: int = strawberry.field(description="CPU replicas: KV cache size in GiB (0: 2).")
    enforce_eager: bool = strawberry.field(description="No compilation or CUDA graphs: starts faster.")
    nodes: int = strawberry.field(description="Machines one replica spans (> 1: pipeline parallel over Ray, a "
                                              "LeaderWorkerSet on Kubernetes; gpusPerReplica GPUs on each).")

    @classmethod
    def from_domain(cls, o: dep.EngineOptions) -> EngineOptions:
        return cls(**o.__dict__)


@strawberry.input(description="Engine options of the vllm engine (see EngineOptions).")
class EngineOptionsInput:
    tensor_parallel_size: int = 0
    max_model_len: int = 0
    gpu_memory_utilization: float = 0.0
    dtype: str = ""
    max_loras: int = 0
    max_lora_rank: int = 0
    cpu_kv_cache_gib: int = 0
    enforce_eager: bool = False
    nodes: int = 0

    def to_domain(self) -> dep.EngineOptions:
        return dep.EngineOptions(**{k: getattr(self, k) for k in dep.EngineOptions.__dataclass_fields__})
DeploymentErrorCode = strawberry.enum(_DeploymentErrorCode, description="Codes of deployment failures.")


@strawberry.type(description="A model deployed as FastChat workers on the configured runtime.")
class Deployment:
    id: strawberry.ID
    model_id: strawberry.ID
    model_name: str
    tenant_id: strawberry.ID | None
    status: DeploymentStatus  # type: ignore[valid-type]
    reason: str
    engine: Engine  # type: ignore[valid-type]
    replicas: int
    gpus_per_replica: int
    label: str
    quantization: str
    runtime_backend: str
    worker_addresses: list[str]
    operator: str
    created_at: datetime | None
    started_at: datetime | None
    stopped_at: datetime | None
    restarts: int = strawberry.field(description="Automatic restarts after its workers were lost (killed, crashed, "
                                                 "stopped with the platform) since the last deploy, redeploy or "
                                                 "scale; at 3 in a row it is FAILED.")
    engine_options: EngineOptions
    base_deployment_id: strawberry.ID | None = strawberry.field(
        description="A LoRA adapter deployment: the vllm deployment whose replicas serve it.")

    @classmethod
    def from_domain(cls, d: dep.Deployment) -> Deployment:
        return cls(id=strawberry.ID(str(d.id)), model_id=strawberry.ID(str(d.model_id)), model_name=d.model_name,
                   tenant_id=strawberry.ID(str(d.tenant_id)) if d.tenant_id is not None else None, status=d.status,
                   reason=d.reason, engine=d.engine, replicas=d.replicas, gpus_per_replica=d.gpus_per_replica,
                   label=d.label, quantization=d.quantization, runtime_backend=d.runtime_backend,
                   worker_addresses=list(d.worker_addresses), operator=d.operator, created_at=d.created_at,
                   started_at=d.started_at, stopped_at=d.stopped_at, restarts=d.restarts,
                   engine_options=EngineOptions.from_domain(d.engine_options),
                   base_deployment_id=_id(d.base_deployment_id))

    @classmethod
    def from_event(cls, data: dict) -> Deployment:
        def when(key: str) -> datetime | None:
            return datetime.fromisoformat(data[key]) if data.get(key) else None
        return cls(id=strawberry.ID(str(data["id"])), model_id=strawberry.ID(str(data["model_id"])),
                   model_name=data["model_name"],
                   tenant_id=strawberry.ID(str(data["tenant_id"])) if data.get("tenant_id") is not None else None,
                   status=dep.DeploymentStatus(data["status"]), reason=data.get("reason", ""),
                   engine=dep.Engine(data["engine"]), replicas=int(data["replicas"]),
                   gpus_per_replica=int(data["gpus_per_replica"]), label=data.get("label", ""),
                   quantization=data.get("quantization", ""), runtime_backend=data.get("runtime_backend", ""),
                   worker_addresses=list(data.get("worker_addresses", [])), operator=data.get("operator", ""),
                   created_at=when("created_at"), started_at=when("started_at"), stopped_at=when("stopped_at"),
                   restarts=int(data.get("restarts") or 0),
                   engine_options=EngineOptions.from_domain(dep.EngineOptions.from_dict(data.get("engine_options"))),
                   base_deployment_id=_id(data.get("base_deployment_id")))


def _id(value: int | None) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value is not None else None


@strawberry.type(description="Log lines of one replica; pass cursor back as since to continue.")
class LogLines:
    lines: list[str]
    cursor: int


@strawberry.type(description="One probe of a worker.")
class HealthProbe:
    worker_address: str
    healthy: bool
    speed: float
    queue_length: int = strawberry.field(description="Requests on the worker: FastChat's queue; vLLM's running "
                                                     "plus waiting.")
    detail: str
    checked_at: datetime
    running: int = strawberry.field(default=0, description="vllm: requests being generated.")
    waiting: int = strawberry.field(default=0, description="vllm: requests queued in the engine.")
    kv_cache_usage: float | None = strawberry.field(default=None, description="vllm: share of the KV cache in "
                                                                              "use, 0 to 1.")


@strawberry.type(description="The FastChat controller and the workers of the request's tenant, as last probed.")
class FastChatHealth:
    controller_alive: bool
    checked_at: datetime
    workers: list[HealthProbe]


@strawberry.type(description="An expected failure of a deployment mutation.")
class DeploymentError:
    field: str | None
    code: DeploymentErrorCode  # type: ignore[valid-type]
    message: str


@strawberry.input
class DeployModelInput:
    model_id: strawberry.ID
    replicas: int = 1
    gpus_per_replica: int = 0
    label: str = strawberry.field(default="", description="Node label value (Kubernetes nodeSelector).")
    quantization: str = strawberry.field(default="", description="'' or '8bit' (FastChat); vllm: a vLLM method "
                                                                 "(awq, gptq, fp8, bitsandbytes...).")
    engine: Engine = dep.Engine.MODEL_WORKER  # type: ignore[valid-type]
    engine_options: EngineOptionsInput | None = strawberry.field(default=None,
                                                                 description="The vllm engine's options.")
    base_deployment_id: strawberry.ID | None = strawberry.field(
        default=None, description="Serve this model (a LoRA adapter, e.g. a LoRA fine-tune) on the replicas of "
                                  "this running vllm deployment (engineOptions.maxLoras > 0) instead of starting "
                                  "workers of its own.")


@strawberry.input
class ScaleDeploymentInput:
    id: strawberry.ID
    replicas: int


@strawberry.type
class DeploymentPayload:
    deployment: Deployment | None = None
    errors: list[DeploymentError] = strawberry.field(default_factory=list)
