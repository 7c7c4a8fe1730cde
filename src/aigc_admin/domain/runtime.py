"""The one interface every runtime (local processes, Docker, Kubernetes) implements.

A workload is N replicas of one command. Commands may contain two placeholders that the runtime
fills per replica: ``{host}`` (the address the replica is reachable at) and ``{port}`` (a port the
replica may listen on). Local and Docker (host network) allocate a free port per replica; Kubernetes
uses the pod IP (``$(POD_IP)``) and the fixed ``container_port``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

OWNER_LABEL = "aigc-admin/owner"  # every workload carries it: the reconciler finds leftovers by it
WORKLOAD_LABEL = "aigc-admin/workload"


class WorkloadKind(StrEnum):
    SERVICE = "service"  # runs until stopped (inference workers, FastChat controller)
    JOB = "job"  # runs to completion (training)


class WorkloadState(StrEnum):
    PENDING = "PENDING"  # accepted, not running yet (image pull, scheduling)
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"  # jobs only
    FAILED = "FAILED"
    STOPPED = "STOPPED"  # stopped on request
    MISSING = "MISSING"  # the runtime knows nothing of it (deleted behind our back)


@dataclass(frozen=True)
class VolumeMount:
    mount_path: str
    host_path: str = ""  # local/docker: a host directory; kubernetes: hostPath when no claim is given
    claim_name: str = ""  # kubernetes: a PersistentVolumeClaim
    read_only: bool = True


@dataclass(frozen=True)
class WorkloadSpec:
    name: str  # DNS-1123 label: lowercase letters, digits and '-', at most 50 characters
    command: list[str]
    kind: WorkloadKind = WorkloadKind.SERVICE
    image: str = ""  # docker and kubernetes
    env: dict[str, str] = field(default_factory=dict)
    replicas: int = 1
    gpus_per_replica: int = 0
    gpu_device_ids: list[str] = field(default_factory=list)  # docker: pin these devices
    labels: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[VolumeMount] = field(default_factory=list)
    container_port: int = 21002  # kubernetes: the port every pod listens on; exposed by a Service
    working_dir: str = ""
    shm_size: str = ""
    # a replica that spans several machines (kubernetes only: a LeaderWorkerSet): ``command`` runs on its leader,
    # ``worker_command`` on each of the other ``nodes - 1`` pods; every pod gets ``gpus_per_replica`` GPUs
    nodes: int = 1
    worker_command: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReplicaStatus:
    index: int
    state: WorkloadState
    address: str = ""  # http://host:port of this replica when known
    exit_code: int | None = None
    message: str = ""


@dataclass(frozen=True)
class WorkloadStatus:
    state: WorkloadState
    replicas: list[ReplicaStatus] = field(default_factory=list)
    message: str = ""


@dataclass(frozen=True)
class WorkloadHandle:
    """What a runtime needs to find a workload again; JSON-serializable, stored with the deployment."""

    backend: str
    name: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"backend": self.backend, "name": self.name, "data": self.data})

    @classmethod
    def from_json(cls, raw: str) -> WorkloadHandle:
        data = json.loads(raw)
        return cls(data["backend"], data["name"], data.get("data", {}))


@dataclass(frozen=True)
class LogChunk:
    lines: list[str]
    cursor: int  # pass back as ``since`` to continue after these lines


def assign_gpus(devices: list[str], busy: set[str], replicas: int, per_replica: int) -> list[list[str]]:
    """Each replica its own ``per_replica`` devices among those no other workload holds (in the host's order), or
    ValueError saying how many are free: two replicas never share a GPU unless an operator pins them so."""
    free = [d for d in devices if d not in busy]
    needed = replicas * per_replica
    if len(free) < needed:
        raise ValueError(f"{needed} GPU(s) asked ({replicas} × {per_replica}), {len(free)} of {len(devices)} free "
                         f"on this host")
    return [free[i * per_replica:(i + 1) * per_replica] for i in range(replicas)]


class RuntimeUnavailable(Exception):
    """The runtime itself cannot be reached (daemon down, API server unreachable)."""


class Runtime(Protocol):
    type: str

    async def start(self, spec: WorkloadSpec) -> WorkloadHandle: ...
    async def status(self, handle: WorkloadHandle) -> WorkloadStatus: ...
    async def logs(self, handle: WorkloadHandle, since: int = 0, replica: int = 0) -> LogChunk: ...
    async def stop(self, handle: WorkloadHandle) -> None:
        """Stop and remove the workload; idempotent (stopping a missing workload is not an error)."""
        ...

    async def list_owned(self) -> list[WorkloadHandle]:
        """Every workload this platform started that still exists (for the reconciler)."""
        ...

    async def restart_failed(self, handle: WorkloadHandle, spec: WorkloadSpec) -> list[int]:
        """Start again the replicas of a service whose process ended, from ``spec`` (its current form); the
        indexes restarted. A runtime whose orchestrator restarts them by itself returns []."""
        ...
