"""Docker runtime: each replica is one container on a Docker Engine, found again by its labels.

Containers are named ``{workload}-{i}`` and labelled with the owner, the workload, the replica
index, the replica count, the workload kind and the replica's port, so that any process of the
platform (API, worker, reconciler) can rebuild a workload's state from the Engine alone. Images
are never pulled: a missing image is an error the operator fixes by loading or building it.

The SDK is synchronous; every call runs in a thread (``asyncio.to_thread``). An Engine that cannot
be reached raises ``RuntimeUnavailable``; a spec the Engine cannot run raises ``WorkloadRejected``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import docker.errors
import requests.exceptions
from docker.client import DockerClient
from docker.models.containers import Container
from docker.types import DeviceRequest

from aigc_admin.adapters.runtime.gpus import nvidia_gpus
from aigc_admin.domain.runtime import (
    OWNER_LABEL,
    WORKLOAD_LABEL,
    LogChunk,
    ReplicaStatus,
    RuntimeUnavailable,
    WorkloadHandle,
    WorkloadKind,
    WorkloadSpec,
    WorkloadState,
    WorkloadStatus,
    assign_gpus,
)

REPLICA_LABEL = "aigc-admin/replica"
REPLICAS_LABEL = "aigc-admin/replicas"
PORT_LABEL = "aigc-admin/port"
KIND_LABEL = "aigc-admin/kind"
GPUS_LABEL = "aigc-admin/gpus"  # the devices a replica was given (comma list), so the next workload avoids them
RESTARTING_POLICIES = ("always", "unless-stopped")  # the Engine restarts these unless stopped by hand
TAIL_LINES = 5

T = TypeVar("T")


class WorkloadRejected(ValueError):
    """The Engine cannot run this spec: missing image, no GPU, a name taken by someone else, a bad volume."""


_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(value: str) -> int:
    """Bytes of ``'16Gi'``, ``'16g'``, ``'512M'``, ``'1GB'`` or ``'1024'`` (binary units, as Docker reads them)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtKMGT]?)[iI]?[bB]?\s*", value)
    if not m:
        raise ValueError(f"invalid size {value!r}: expected e.g. '16Gi', '16g' or '512M'")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port


class DockerRuntime:
    type = "docker"

    def __init__(self, *, base_url: str | None, owner: str, network_mode: str = "host", shm_size: str = "",
                 restart_policy: str = "unless-stopped", stop_timeout: int = 10, workspace: str = "",
                 init: bool = True, timeout: int = 60, gpus: Callable[[], list[str]] = nvidia_gpus) -> None:
        """``workspace``: relative volume host paths are resolved against it. ``init``: run Docker's tiny
        init as PID 1 so that SIGTERM reaches the command (a bare PID 1 ignores it)."""
        self.base_url = base_url
        self.owner = owner
        self.network_mode = network_mode
        self.shm_size = shm_size
        self.restart_policy = restart_policy
        self.stop_timeout = stop_timeout
        self.workspace = workspace
        self.init = init
        self.timeout = timeout
        self._client: DockerClient | None = None
        self._lock = threading.Lock()
        # a local Engine's GPUs (to give each replica its own); a remote one's are not listed here
        self.gpus = gpus
        self.base_url_remote = bool(base_url) and not str(base_url).startswith("unix://")

    @classmethod
    def from_settings(cls, s: Any) -> DockerRuntime:
        return cls(base_url=s.docker_host or None, owner=s.redis_prefix, network_mode=s.docker_network or "host",
                   shm_size=s.runtime_shm_size, workspace=s.runtime_docker_workspace or str(s.storage_dir))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # --- the Engine ------------------------------------------------------------------------
    @property
    def _where(self) -> str:
        return self.base_url or "DOCKER_HOST (default unix:///var/run/docker.sock)"

    def _docker(self) -> DockerClient:
        with self._lock:
            if self._client is None:  # created lazily: the SDK asks the Engine its API version at once
                if self.base_url:
                    self._client = DockerClient(base_url=self.base_url, timeout=self.timeout)
                else:
                    self._client = DockerClient.from_env(timeout=self.timeout)
            return self._client

    def _guarded(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except docker.errors.APIError:
            raise  # the Engine answered: the caller decides
        except docker.errors.InvalidArgument as e:
            raise WorkloadRejected(str(e)) from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise RuntimeUnavailable(f"Docker Engine at {self._where} is unreachable: {e}") from e

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(self._guarded, fn, *args)

    def _containers(self, name: str | None = None, replica: int | None = None) -> list[Container]:
        labels = [f"{OWNER_LABEL}={self.owner}"]
        if name is not None:
            labels.append(f"{WORKLOAD_LABEL}={name}")
        if replica is not None:
            labels.append(f"{REPLICA_LABEL}={replica}")
        found: list[Container] = self._docker().containers.list(all=True, filters={"label": labels},
                                                                ignore_removed=True)
        return found

    # --- spec → container ------------------------------------------------------------------
    def container_kwargs(self, spec: WorkloadSpec, i: int, port: int) -> dict[str, Any]:
        """Keyword arguments of ``containers.create`` for replica ``i`` listening on ``port`` (no I/O)."""
        host = "127.0.0.1" if self.network_mode == "host" else f"{spec.name}-{i}"
        command = [a.replace("{host}", host).replace("{port}", str(port)) for a in spec.command]
        labels = {**spec.labels, OWNER_LABEL: self.owner, WORKLOAD_LABEL: spec.name, REPLICA_LABEL: str(i),
                  REPLICAS_LABEL: str(spec.replicas), PORT_LABEL: str(port), KIND_LABEL: spec.kind.value}
        kwargs: dict[str, Any] = {
            "image": spec.image, "command": command, "name": f"{spec.name}-{i}", "labels": labels,
            "environment": {**spec.env, "AIGC_REPLICA": str(i)}, "network_mode": self.network_mode,
            "init": self.init, "volumes": self._binds(spec),
        }
        if spec.working_dir:
            kwargs["working_dir"] = spec.working_dir
        if shm := spec.shm_size or self.shm_size:
            kwargs["shm_size"] = parse_size(shm)
        if spec.kind == WorkloadKind.SERVICE and self.restart_policy and self.restart_policy != "no":
            kwargs["restart_policy"] = {"Name": self.restart_policy}
        if request := self._gpus(spec, i):
            kwargs["device_requests"] = [request]
            if request.device_ids:
                labels[GPUS_LABEL] = ",".join(request.device_ids)
        return kwargs

    @staticmethod
    def _gpus(spec: WorkloadSpec, i: int) -> DeviceRequest | None:
        ids, per = spec.gpu_device_ids, spec.gpus_per_replica
        if ids:
            if per and spec.replicas > 1 and len(ids) == per * spec.replicas:
                ids = ids[i * per:(i + 1) * per]  # one slice per replica
            return DeviceRequest(device_ids=list(ids), capabilities=[["gpu"]])
        if per > 0:
            return DeviceRequest(count=per, capabilities=[["gpu"]])
        return None

    def _binds(self, spec: WorkloadSpec) -> dict[str, dict[str, str]]:
        binds = {}
        for v in spec.volumes:
            if not v.host_path:
                raise WorkloadRejected(f"volume {v.mount_path}: the docker runtime needs a host_path "
                                       f"(claim {v.claim_name!r} is for kubernetes)")
            host = Path(v.host_path)
            if not host.is_absolute():
                if not self.workspace:
                    raise WorkloadRejected(f"volume {v.mount_path}: relative host_path {v.host_path!r} "
                                           "needs a workspace (runtime.docker.workspace)")
                host = Path(self.workspace) / host
            binds[str(host)] = {"bind": v.mount_path, "mode": "ro" if v.read_only else "rw"}
        return binds

    # --- the port --------------------------------------------------------------------------
    async def start(self, spec: WorkloadSpec) -> WorkloadHandle:
        if spec.replicas < 1:
            raise WorkloadRejected(f"workload {spec.name}: replicas must be at least 1")
        if not spec.image:
            raise WorkloadRejected(f"workload {spec.name}: the docker runtime needs an image")
        if spec.nodes > 1:
            raise WorkloadRejected("a replica over several machines (nodes > 1) needs the kubernetes runtime")
        return await self._call(self._start, spec)

    def _start(self, spec: WorkloadSpec) -> WorkloadHandle:
        client = self._docker()
        try:
            client.images.get(spec.image)
        except docker.errors.ImageNotFound:
            raise WorkloadRejected(f"image {spec.image!r} is not on the Docker Engine at {self._where}; images are "
                                   "never pulled: build or load it there first") from None
        spec = self._pinned(spec)
        existing = {int(c.labels[REPLICA_LABEL]): c for c in self._containers(spec.name)}
        taken = {int(c.labels[PORT_LABEL]) for c in self._containers() if c.labels.get(PORT_LABEL, "").isdigit()}
        created: list[Container] = []
        try:
            for i in range(spec.replicas):
                if i not in existing:
                    port = _free_port(taken) if self.network_mode == "host" else spec.container_port
                    taken.add(port)
                    existing[i] = self._create(spec, i, port)
                    created.append(existing[i])
                if existing[i].status == "created":  # new, or left behind by an interrupted start
                    existing[i].start()
        except Exception as e:
            for c in created:  # leave nothing behind from this call
                with contextlib.suppress(docker.errors.NotFound):
                    c.remove(force=True)
            if not isinstance(e, docker.errors.APIError):
                raise
            hint = " (this Docker host has no GPU runtime)" if "capabilities: [[gpu]]" in str(e) else ""
            raise WorkloadRejected(f"Docker could not start workload {spec.name}: {e.explanation or e}{hint}") from e
        return self._handle(spec.name, list(existing.values()))

    def _pinned(self, spec: WorkloadSpec) -> WorkloadSpec:
        """GPUs asked by count get devices of their own per replica, free of the other workloads' (a local Docker
        Engine's GPUs, listed by nvidia-smi); Docker's ``count`` would give every container the first N."""
        if not spec.gpus_per_replica or spec.gpu_device_ids or self.base_url_remote:
            return spec
        devices = self.gpus()
        if not devices:
            return spec  # no nvidia-smi here: Docker's own choice (count)
        busy = {gpu for c in self._containers() if c.status == "running"
                for gpu in c.labels.get(GPUS_LABEL, "").split(",") if gpu}
        try:
            assigned = assign_gpus(devices, busy, spec.replicas, spec.gpus_per_replica)
        except ValueError as e:
            raise WorkloadRejected(str(e)) from None
        return dataclasses.replace(spec, gpu_device_ids=[gpu for replica in assigned for gpu in replica])

    def _create(self, spec: WorkloadSpec, i: int, port: int) -> Container:
        kwargs = self.container_kwargs(spec, i, port)
        try:
            container: Container = self._docker().containers.create(**kwargs)
            return container
        except docker.errors.APIError as e:
            if e.status_code != 409:
                raise
        # The name is taken: by a concurrent start of the same workload (fine), or by someone else.
        other = self._docker().containers.get(kwargs["name"])
        mine = {k: other.labels.get(k) for k in (OWNER_LABEL, WORKLOAD_LABEL, REPLICA_LABEL)}
        if mine != {k: kwargs["labels"][k] for k in mine}:
            raise WorkloadRejected(f"container name {kwargs['name']!r} is taken by a container this platform "
                                   f"(owner {self.owner!r}) did not start")
        return other

    def _handle(self, name: str, containers: list[Container]) -> WorkloadHandle:
        containers = sorted(containers, key=lambda c: int(c.labels[REPLICA_LABEL]))
        first = containers[0].labels
        return WorkloadHandle(self.type, name, {
            "replicas": int(first.get(REPLICAS_LABEL, len(containers))),
            "ports": [int(c.labels.get(PORT_LABEL, 0)) for c in containers],
            "containers": [c.name for c in containers],
            "kind": first.get(KIND_LABEL, WorkloadKind.SERVICE.value),
        })

    async def status(self, handle: WorkloadHandle) -> WorkloadStatus:
        return await self._call(self._status, handle)

    def _status(self, handle: WorkloadHandle) -> WorkloadStatus:
        containers = {int(c.labels[REPLICA_LABEL]): c for c in self._containers(handle.name)}
        if not containers:
            return WorkloadStatus(WorkloadState.MISSING, message=f"no container of workload {handle.name}")
        count = max(int(handle.data.get("replicas", 0)), max(containers) + 1)
        replicas = [self._replica(i, containers[i]) if i in containers else
                    ReplicaStatus(i, WorkloadState.MISSING, message=f"container {handle.name}-{i} is gone")
                    for i in range(count)]
        return _aggregate(replicas)

    def _replica(self, i: int, c: Container) -> ReplicaStatus:
        state = c.attrs.get("State", {})
        code = state.get("ExitCode")
        port = c.labels.get(PORT_LABEL, "")
        host = "127.0.0.1" if c.attrs.get("HostConfig", {}).get("NetworkMode") == "host" else c.name
        address = f"http://{host}:{port}" if port else ""
        job = c.labels.get(KIND_LABEL) == WorkloadKind.JOB.value
        status = c.status
        if status == "running":
            return ReplicaStatus(i, WorkloadState.RUNNING, address)
        if status in ("created", "paused"):
            return ReplicaStatus(i, WorkloadState.PENDING, address, message=f"container is {status}")
        if status == "restarting":
            return ReplicaStatus(i, WorkloadState.PENDING, address, code, (
                f"restarting (restart {c.attrs.get('RestartCount', 0)}) after exit status {code}; "
                f"last log lines: {self._tail(c)}"))
        if status == "removing":
            return ReplicaStatus(i, WorkloadState.STOPPED, address, code, "container is being removed")
        if status == "exited" and job and code == 0:
            return ReplicaStatus(i, WorkloadState.SUCCEEDED, address, 0)
        policy = c.attrs.get("HostConfig", {}).get("RestartPolicy", {}).get("Name", "")
        if status == "exited" and not job and policy in RESTARTING_POLICIES:
            # The Engine would have restarted it: someone stopped it on purpose.
            return ReplicaStatus(i, WorkloadState.STOPPED, address, code, "container was stopped")
        why = "was killed for lack of memory (OOM)" if state.get("OOMKilled") else f"{status} with status {code}"
        detail = state.get("Error") or ""
        return ReplicaStatus(i, WorkloadState.FAILED, address, code,
                             f"container {why}{'; ' + detail if detail else ''}; last log lines: {self._tail(c)}")

    @staticmethod
    def _tail(c: Container) -> str:
        try:
            raw: bytes = c.logs(stdout=True, stderr=True, tail=TAIL_LINES)
        except docker.errors.APIError:
            return ""
        return " | ".join(raw.decode(errors="replace").splitlines())

    async def logs(self, handle: WorkloadHandle, since: int = 0, replica: int = 0) -> LogChunk:
        return await self._call(self._logs, handle, since, replica)

    def _logs(self, handle: WorkloadHandle, since: int, replica: int) -> LogChunk:
        found = self._containers(handle.name, replica)
        if not found:
            return LogChunk([], since)
        try:
            raw: bytes = found[0].logs(stdout=True, stderr=True)
        except docker.errors.NotFound:
            return LogChunk([], since)
        lines = raw.decode(errors="replace").splitlines()
        return LogChunk(lines[since:], max(since, len(lines)))

    async def stop(self, handle: WorkloadHandle) -> None:
        containers = await self._call(self._containers, handle.name)
        await asyncio.gather(*(self._call(self._remove, c) for c in containers))

    def _remove(self, c: Container) -> None:
        try:
            if c.status in ("running", "restarting", "paused"):
                c.stop(timeout=self.stop_timeout)
            c.remove(force=True)
        except docker.errors.NotFound:
            pass  # already gone
        except docker.errors.APIError as e:
            if e.status_code != 409:  # 409: a removal is already in progress
                raise

    async def list_owned(self) -> list[WorkloadHandle]:
        return await self._call(self._list_owned)

    async def restart_failed(self, handle: WorkloadHandle, spec: WorkloadSpec) -> list[int]:
        return []  # its restart policy (``unless-stopped``) restarts a service's replicas

    def _list_owned(self) -> list[WorkloadHandle]:
        groups: dict[str, list[Container]] = {}
        for c in self._containers():
            if WORKLOAD_LABEL in c.labels and c.labels.get(REPLICA_LABEL, "").isdigit():
                groups.setdefault(c.labels[WORKLOAD_LABEL], []).append(c)
        return [self._handle(name, groups[name]) for name in sorted(groups)]


def _aggregate(replicas: list[ReplicaStatus]) -> WorkloadStatus:
    """FAILED if any replica failed or vanished; else PENDING while any waits; all alike → that state."""
    states = {r.state for r in replicas}
    for bad in (WorkloadState.FAILED, WorkloadState.MISSING):
        if bad in states:
            r = next(r for r in replicas if r.state == bad)
            return WorkloadStatus(WorkloadState.FAILED, replicas, f"replica {r.index}: {r.message}")
    if states == {WorkloadState.STOPPED}:
        return WorkloadStatus(WorkloadState.STOPPED, replicas)
    if WorkloadState.STOPPED in states:
        r = next(r for r in replicas if r.state == WorkloadState.STOPPED)
        return WorkloadStatus(WorkloadState.FAILED, replicas, f"replica {r.index}: {r.message}")
    if WorkloadState.PENDING in states:
        return WorkloadStatus(WorkloadState.PENDING, replicas)
    if states == {WorkloadState.SUCCEEDED}:
        return WorkloadStatus(WorkloadState.SUCCEEDED, replicas)
    return WorkloadStatus(WorkloadState.RUNNING, replicas)
