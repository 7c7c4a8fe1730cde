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
    MODEL_WORKER = "model_worker"
    VLLM_WORKER = "vllm_worker"


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


@dataclass(frozen=True)
class HealthRecord:
    worker_address: str
    healthy: bool
    speed: float
    queue_length: int
    detail: str
    checked_at: datetime
