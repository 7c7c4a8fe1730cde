from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class DeploymentStatus(StrEnum):
    PENDING = "PENDING"  # recorded, job enqueued
    STARTING = "STARTING"  # workload started, workers not all registered yet
    RUNNING = "RUNNING"  # every replica registered with the controller and answering
    DEGRADED = "DEGRADED"  # some replicas stopped answering
    FAILED = "FAILED"  # with a reason
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"


# A model with a deployment in one of these states counts as deployed.
ACTIVE_STATUSES = (DeploymentStatus.PENDING, DeploymentStatus.STARTING, DeploymentStatus.RUNNING,
                   DeploymentStatus.DEGRADED, DeploymentStatus.STOPPING)


class Engine(StrEnum):
    MODEL_WORKER = "model_worker"  # FastChat's model_worker, behind the FastChat controller
    VLLM_WORKER = "vllm_worker"  # FastChat's vllm_worker (needs a vLLM old enough for FastChat 0.2.36)
    VLLM = "vllm"  # vLLM's own OpenAI server per replica; the gateway routes to it directly


@dataclass(frozen=True)
class EngineOptions:
    """How the ``vllm`` engine runs a replica (0 / "" / False: vLLM's own default)."""

    tensor_parallel_size: int = 0  # 0: the replica's GPU count (1 on CPU)
    max_model_len: int = 0
    gpu_memory_utilization: float = 0.0  # fraction of each GPU's memory vLLM may take
    dtype: str = ""
    max_loras: int = 0  # > 0: LoRA adapters can be served on this deployment (adapter deployments)
    max_lora_rank: int = 0
    cpu_kv_cache_gib: int = 0  # CPU replicas: the KV cache's size (vLLM's CPU default is most of the memory)
    enforce_eager: bool = False  # no CUDA graphs / compilation: starts much faster, serves somewhat slower
    nodes: int = 0  # > 1: each replica spans this many machines (pipeline parallel over Ray; kubernetes only)

    def to_dict(self) -> dict[str, int | float | str | bool]:
        return {k: v for k, v in self.__dict__.items() if v != getattr(EngineOptions, k)}

    @classmethod
    def from_dict(cls, data: dict[str, object] | None) -> EngineOptions:
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Deployment:
    id: int
    model_id: int
    model_name: str
    tenant_id: int | None
    status: DeploymentStatus
    reason: str
    engine: Engine
    replicas: int
    gpus_per_replica: int
    label: str
    quantization: str
    runtime_backend: str
    model_path: str = ""
    worker_addresses: tuple[str, ...] = field(default_factory=tuple)
    runtime_handle: str = ""
    operator: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    updated_at: datetime | None = None
    conversation_template: str = ""  # the model's FastChat template override ("": the worker chooses by the name)
    restarts: int = 0  # automatic restarts after its workers were lost, since the last deploy, redeploy or scale
    engine_options: EngineOptions = field(default_factory=EngineOptions)
    base_deployment_id: int | None = None  # a LoRA adapter served on this (vllm) deployment's replicas


@dataclass(frozen=True)
class HealthRecord:
    worker_address: str
    healthy: bool
    speed: float
    queue_length: int
    detail: str
    checked_at: datetime
    running: int = 0  # vllm: requests being generated
    waiting: int = 0  # vllm: requests queued in the engine
    kv_cache_usage: float | None = None  # vllm: the share of the KV cache in use (0..1)
