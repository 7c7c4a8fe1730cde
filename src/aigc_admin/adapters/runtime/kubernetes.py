"""Kubernetes runtime: a SERVICE is a Deployment plus a Service, a JOB is a batch/v1 Job; a SERVICE whose replicas
span several machines (``spec.nodes > 1``) is a LeaderWorkerSet (https://github.com/kubernetes-sigs/lws, its CRD and
controller installed in the cluster) plus a Service in front of the leaders.

Every object carries ``OWNER_LABEL`` (this platform instance) and ``WORKLOAD_LABEL`` (the spec's
name); pods are found by those labels. Replicas listen on the fixed ``container_port``: ``{host}``
in a command becomes ``$(POD_IP)`` (an env var from the downward API, expanded by the kubelet) and
``{port}`` the port. The Service gives the workload a stable in-cluster address.

The official client is synchronous: every call runs in a thread (``asyncio.to_thread``). Deletes
use background propagation, so the owner objects disappear at once and the garbage collector
removes their pods.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import kubernetes.client as k8s
import kubernetes.config
import urllib3
from kubernetes.client.rest import ApiException

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
)

T = TypeVar("T")

CONTAINER = "main"
GPU_RESOURCE = "nvidia.com/gpu"
LWS_GROUP, LWS_VERSION, LWS_PLURAL = "leaderworkerset.x-k8s.io", "v1", "leaderworkersets"
ROLE_LABEL = "aigc-admin/role"  # leader | worker: the Service sends traffic to the leaders only
# No LeaderWorkerSet can exist: the CRD is not installed (404), or the platform's Role predates multi-node replicas
# and may not see them (403): listing and stopping go on without them
_NO_LWS = (403, 404)
# Container waiting reasons that will not fix themselves.
FAILED_WAITING_REASONS = frozenset({
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull",
    "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
})


def label_value(value: str) -> str:
    """``value`` made a valid label value: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", value)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


class KubernetesRuntime:
    type = "kubernetes"

    def __init__(self, *, api_client: k8s.ApiClient, namespace: str, owner: str, volume_claim: str = "",
                 shm_size: str = "", request_timeout: float = 30.0) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.owner = label_value(owner) or "aigc-admin"
        self.volume_claim = volume_claim  # mounted where a VolumeMount names neither claim nor host path
        self.shm_size = shm_size
        self.request_timeout = request_timeout
        self.core = k8s.CoreV1Api(api_client)
        self.apps = k8s.AppsV1Api(api_client)
        self.batch = k8s.BatchV1Api(api_client)
        self.custom = k8s.CustomObjectsApi(api_client)

    @classmethod
    def from_settings(cls, s: Any) -> KubernetesRuntime:
        """host + token (+ insecure), else a kubeconfig file, else the in-cluster service account."""
        config = k8s.Configuration()
        if s.runtime_k8s_host:
            config.host = s.runtime_k8s_host.rstrip("/")
            if s.runtime_k8s_token:
                config.api_key = {"authorization": s.runtime_k8s_token}
                config.api_key_prefix = {"authorization": "Bearer"}
        elif s.runtime_k8s_config_path:
            kubernetes.config.load_kube_config(config_file=s.runtime_k8s_config_path, client_configuration=config)
        else:
            try:
                kubernetes.config.load_incluster_config(client_configuration=config)
            except kubernetes.config.ConfigException as exc:
                raise ValueError("the kubernetes runtime needs runtime.k8s.host (+ token) or runtime.k8s.config.path "
                                 f"when not running inside a cluster ({exc})") from exc
        if s.runtime_k8s_insecure:
            config.verify_ssl = False
        return cls(api_client=k8s.ApiClient(config), namespace=s.runtime_k8s_namespace,
                   owner=getattr(s, "redis_prefix", "aigc-admin"), volume_claim=s.runtime_k8s_volume_name,
                   shm_size=s.runtime_shm_size)

    # --- plumbing --------------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking client call in a thread; an unreachable API server → RuntimeUnavailable."""
        try:
            return await asyncio.to_thread(fn, *args)
        except ApiException as exc:
            if exc.status in (0, 401, 403) or (exc.status or 0) >= 500:
                raise RuntimeUnavailable(f"Kubernetes API: {exc.status} {exc.reason}") from exc
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RuntimeUnavailable(f"Kubernetes API unreachable: {exc}") from exc

    def _selector(self, name: str | None = None) -> str:
        selector = f"{OWNER_LABEL}={self.owner}"
        return f"{selector},{WORKLOAD_LABEL}={name}" if name else selector

    def _handle(self, name: str, kind: WorkloadKind, port: int, lws: bool = False) -> WorkloadHandle:
        data: dict[str, Any] = {"namespace": self.namespace, "kind": kind.value, "port": port}
        if lws:
            data["lws"] = True
        if kind == WorkloadKind.SERVICE:
            data["service_address"] = f"http://{name}.{self.namespace}.svc:{port}"
        return WorkloadHandle(self.type, name, data)

    # --- manifests -------------------------------------------------------------------------
    def _labels(self, spec: WorkloadSpec) -> dict[str, str]:
        return {**spec.labels, OWNER_LABEL: self.owner, WORKLOAD_LABEL: spec.name}

    def _volumes(self, spec: WorkloadSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        for i, v in enumerate(spec.volumes):
            name = f"volume-{i}"
            if v.claim_name or not v.host_path:
                claim = v.claim_name or self.volume_claim
                if not claim:
                    raise ValueError(f"volume at {v.mount_path} names neither a claim nor a host path")
                volumes.append({"name": name, "persistentVolumeClaim": {"claimName": claim, "readOnly": v.read_only}})
            else:
                volumes.append({"name": name, "hostPath": {"path": v.host_path}})
            mounts.append({"name": name, "mountPath": v.mount_path, "readOnly": v.read_only})
        shm = spec.shm_size or self.shm_size
        if shm:
            volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}})
            mounts.append({"name": "dshm", "mountPath": "/dev/shm"})  # noqa: S108 - the pod's shared memory
        return volumes, mounts

    def _pod_template(self, spec: WorkloadSpec, restart_policy: str, role: str = "") -> dict[str, Any]:
        port = str(spec.container_port)
        argv = spec.worker_command if role == "worker" else spec.command
        command = [a.replace("{host}", "$(POD_IP)").replace("{port}", port) for a in argv]
        env = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
        env += [{"name": k, "value": v} for k, v in spec.env.items()]
        volumes, mounts = self._volumes(spec)
        container: dict[str, Any] = {
            "name": CONTAINER, "image": spec.image, "command": command, "env": env,
            "ports": [{"name": "http", "containerPort": spec.container_port}], "volumeMounts": mounts,
        }
        if spec.working_dir:
            container["workingDir"] = spec.working_dir
        if spec.gpus_per_replica > 0:
            container["resources"] = {"limits": {GPU_RESOURCE: str(spec.gpus_per_replica)}}
        pod_spec: dict[str, Any] = {"containers": [container], "restartPolicy": restart_policy, "volumes": volumes}
        if spec.node_selector:
            pod_spec["nodeSelector"] = dict(spec.node_selector)
        if spec.tolerations:
            pod_spec["tolerations"] = [dict(t) for t in spec.tolerations]
        labels = {**self._labels(spec), ROLE_LABEL: role} if role else self._labels(spec)
        return {"metadata": {"labels": labels}, "spec": pod_spec}

    def _metadata(self, spec: WorkloadSpec) -> dict[str, Any]:
        return {"name": spec.name, "namespace": self.namespace, "labels": self._labels(spec)}

    def deployment_manifest(self, spec: WorkloadSpec) -> dict[str, Any]:
        selector = {OWNER_LABEL: self.owner, WORKLOAD_LABEL: spec.name}
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": self._metadata(spec),
                "spec": {"replicas": spec.replicas, "selector": {"matchLabels": selector},
                         "template": self._pod_template(spec, "Always")}}

    def leader_worker_set_manifest(self, spec: WorkloadSpec) -> dict[str, Any]:
        """``replicas`` groups of ``nodes`` pods: a leader (the serving command) and ``nodes - 1`` workers; a pod
        that fails restarts its whole group (a model split over the group cannot lose a part)."""
        return {"apiVersion": f"{LWS_GROUP}/{LWS_VERSION}", "kind": "LeaderWorkerSet", "metadata": self._metadata(spec),
                "spec": {"replicas": spec.replicas, "startupPolicy": "LeaderCreated",
                         "leaderWorkerTemplate": {
                             "size": spec.nodes, "restartPolicy": "RecreateGroupOnPodRestart",
                             "leaderTemplate": self._pod_template(spec, "Always", "leader"),
                             "workerTemplate": self._pod_template(spec, "Always", "worker")}}}

    def service_manifest(self, spec: WorkloadSpec) -> dict[str, Any]:
        port = spec.container_port
        leaders = {ROLE_LABEL: "leader"} if spec.nodes > 1 else {}
        return {"apiVersion": "v1", "kind": "Service", "metadata": self._metadata(spec),
                "spec": {"selector": {OWNER_LABEL: self.owner, WORKLOAD_LABEL: spec.name, **leaders},
                         "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]}}

    def job_manifest(self, spec: WorkloadSpec) -> dict[str, Any]:
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": self._metadata(spec),
                "spec": {"backoffLimit": 0, "completions": spec.replicas, "parallelism": spec.replicas,
                         "template": self._pod_template(spec, "Never")}}

    # --- the port --------------------------------------------------------------------------
    async def start(self, spec: WorkloadSpec) -> WorkloadHandle:
        if spec.kind == WorkloadKind.JOB:
            await self._run(self._create, self.batch.create_namespaced_job, self.job_manifest(spec))
        elif spec.nodes > 1:
            await self._run(self._create, self._create_lws, self.leader_worker_set_manifest(spec))
            await self._run(self._create, self.core.create_namespaced_service, self.service_manifest(spec))
            return self._handle(spec.name, spec.kind, spec.container_port, lws=True)
        else:
            await self._run(self._create, self.apps.create_namespaced_deployment, self.deployment_manifest(spec))
            await self._run(self._create, self.core.create_namespaced_service, self.service_manifest(spec))
        return self._handle(spec.name, spec.kind, spec.container_port)

    def _create_lws(self, namespace: str, body: dict[str, Any], **kw: Any) -> None:
        # asked first with a GET: the API server answers a POST to an API group it does not serve with a 404 and
        # then drops the connection, which breaks the next call that reuses it
        try:
            self.custom.get_api_resources(LWS_GROUP, LWS_VERSION, **kw)
        except ApiException as exc:
            if exc.status == 404:
                raise ValueError("multi-node replicas need the LeaderWorkerSet CRD and controller in the cluster "
                                 "(https://github.com/kubernetes-sigs/lws); it is not installed") from exc
            raise
        self.custom.create_namespaced_custom_object(LWS_GROUP, LWS_VERSION, namespace, LWS_PLURAL, body, **kw)

    def _create(self, create: Callable[..., Any], body: dict[str, Any]) -> None:
        try:
            create(self.namespace, body, _request_timeout=self.request_timeout)
        except ApiException as exc:
            if exc.status == 409:
                return  # already there: starting is idempotent
            if exc.status == 422:
                raise ValueError(f"Kubernetes rejected {body['kind']} {body['metadata']['name']}: "
                                 f"{_api_message(exc)}") from exc
            raise

    async def status(self, handle: WorkloadHandle) -> WorkloadStatus:
        return await self._run(self._status, handle)

    def _status(self, handle: WorkloadHandle) -> WorkloadStatus:
        namespace = handle.data.get("namespace") or self.namespace
        if handle.data.get("lws"):
            return self._lws_status(handle, namespace)
        job = handle.data.get("kind") == WorkloadKind.JOB.value
        read = self.batch.read_namespaced_job if job else self.apps.read_namespaced_deployment
        try:
            obj: Any = read(handle.name, namespace, _request_timeout=self.request_timeout)
        except ApiException as exc:
            if exc.status == 404:
                return WorkloadStatus(WorkloadState.MISSING, message="no such workload")
            raise
        if obj.metadata.deletion_timestamp:
            return WorkloadStatus(WorkloadState.STOPPED, message="being deleted")
        port = int(handle.data.get("port") or _container_port(obj))
        replicas = [_replica(i, pod, port, job) for i, pod in enumerate(self._pods(namespace, handle.name))]
        failed = next((r for r in replicas if r.state == WorkloadState.FAILED), None)
        overall = _job_state(obj) if job else _deployment_state(obj)
        if overall.state == WorkloadState.FAILED or overall.state == WorkloadState.SUCCEEDED:
            message = overall.message or (failed.message if failed else "")
            return WorkloadStatus(overall.state, replicas, message)
        if failed is not None:
            return WorkloadStatus(WorkloadState.FAILED, replicas, f"replica {failed.index}: {failed.message}")
        return WorkloadStatus(overall.state, replicas, overall.message)

    def _lws_status(self, handle: WorkloadHandle, namespace: str) -> WorkloadStatus:
        """A LeaderWorkerSet: one replica per group, addressed at its leader; RUNNING when every group is ready
        (its ``readyReplicas``), FAILED when one of its pods failed for good."""
        try:
            obj: Any = self.custom.get_namespaced_custom_object(LWS_GROUP, LWS_VERSION, namespace, LWS_PLURAL,
                                                                handle.name, _request_timeout=self.request_timeout)
        except ApiException as exc:
            if exc.status == 404:
                return WorkloadStatus(WorkloadState.MISSING, message="no such workload")
            raise
        if obj.get("metadata", {}).get("deletionTimestamp"):
            return WorkloadStatus(WorkloadState.STOPPED, message="being deleted")
        port = int(handle.data.get("port") or 0)
        pods = self._pods(namespace, handle.name)
        leaders = [_replica(i, p, port, False)
                   for i, p in enumerate(p for p in pods if p.metadata.labels.get(ROLE_LABEL) == "leader")]
        workers = [_replica(i, p, port, False)
                   for i, p in enumerate(p for p in pods if p.metadata.labels.get(ROLE_LABEL) == "worker")]
        failed = next((r for r in [*leaders, *workers] if r.state == WorkloadState.FAILED), None)
        if failed is not None:
            role = "leader" if failed in leaders else "worker"
            return WorkloadStatus(WorkloadState.FAILED, leaders, f"{role} pod {failed.index}: {failed.message}")
        wanted = int(obj.get("spec", {}).get("replicas") or 0)
        ready = int(obj.get("status", {}).get("readyReplicas") or 0)
        if wanted and ready >= wanted:
            return WorkloadStatus(WorkloadState.RUNNING, leaders)
        return WorkloadStatus(WorkloadState.PENDING, leaders, f"{ready} of {wanted} groups ready")

    def _pods(self, namespace: str, name: str) -> list[Any]:
        pods: list[Any] = self.core.list_namespaced_pod(namespace, label_selector=self._selector(name),
                                                        _request_timeout=self.request_timeout).items
        return sorted((p for p in pods if not p.metadata.deletion_timestamp), key=lambda p: p.metadata.name)

    async def logs(self, handle: WorkloadHandle, since: int = 0, replica: int = 0) -> LogChunk:
        return await self._run(self._logs, handle, since, replica)

    def _logs(self, handle: WorkloadHandle, since: int, replica: int) -> LogChunk:
        namespace = handle.data.get("namespace") or self.namespace
        pods = self._pods(namespace, handle.name)
        if replica >= len(pods):
            return LogChunk([], since)
        try:
            text = self.core.read_namespaced_pod_log(pods[replica].metadata.name, namespace,
                                                     container=CONTAINER, _request_timeout=self.request_timeout)
        except ApiException as exc:
            if exc.status in (400, 404):  # not scheduled / container not started yet / gone
                return LogChunk([], since)
            raise
        lines = str(text or "").splitlines()
        return LogChunk(lines[since:], max(since, len(lines)))

    async def stop(self, handle: WorkloadHandle) -> None:
        await self._run(self._stop, handle.data.get("namespace") or self.namespace, handle.name)

    def _stop(self, namespace: str, name: str) -> None:
        options = k8s.V1DeleteOptions(propagation_policy="Background")
        deletes: list[Callable[..., Any]] = [self.apps.delete_namespaced_deployment,
                                             self.batch.delete_namespaced_job, self.core.delete_namespaced_service]
        for delete in deletes:
            try:
                # Raw response: API servers answer some deletes with a Status the client would fail to parse.
                response = delete(name, namespace, body=options, _request_timeout=self.request_timeout,
                                  _preload_content=False)
                response.read()
                response.release_conn()
            except ApiException as exc:
                if exc.status != 404:
                    raise
        try:  # a multi-node workload (404 also when the CRD is not installed: nothing to delete)
            self.custom.delete_namespaced_custom_object(LWS_GROUP, LWS_VERSION, namespace, LWS_PLURAL, name,
                                                        body=options, _request_timeout=self.request_timeout)
        except ApiException as exc:
            if exc.status not in _NO_LWS:
                raise

    async def list_owned(self) -> list[WorkloadHandle]:
        return await self._run(self._list_owned)

    async def restart_failed(self, handle: WorkloadHandle, spec: WorkloadSpec) -> list[int]:
        return []  # the kubelet (and the Deployment/LeaderWorkerSet) restarts a service's replicas

    def _list_owned(self) -> list[WorkloadHandle]:
        selector = self._selector()
        deployments: list[Any] = self.apps.list_namespaced_deployment(
            self.namespace, label_selector=selector, _request_timeout=self.request_timeout).items
        jobs: list[Any] = self.batch.list_namespaced_job(
            self.namespace, label_selector=selector, _request_timeout=self.request_timeout).items
        handles = [self._handle(d.metadata.name, WorkloadKind.SERVICE, _container_port(d)) for d in deployments]
        handles += [self._handle(j.metadata.name, WorkloadKind.JOB, _container_port(j)) for j in jobs]
        try:
            found: Any = self.custom.list_namespaced_custom_object(
                LWS_GROUP, LWS_VERSION, self.namespace, LWS_PLURAL, label_selector=selector,
                _request_timeout=self.request_timeout)
            sets: list[Any] = found.get("items", [])
        except ApiException as exc:
            if exc.status not in _NO_LWS:
                raise
            sets = []
        handles += [self._handle(x["metadata"]["name"], WorkloadKind.SERVICE, _lws_port(x), lws=True) for x in sets]
        return sorted(handles, key=lambda h: h.name)


# --- reading object status --------------------------------------------------------------------
def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "")["message"])
    except (ValueError, KeyError, TypeError):
        return str(exc.reason)


def _lws_port(obj: dict[str, Any]) -> int:
    template = obj.get("spec", {}).get("leaderWorkerTemplate", {}).get("leaderTemplate", {})
    for container in template.get("spec", {}).get("containers", []):
        for port in container.get("ports", []):
            return int(port["containerPort"])
    return 0


def _container_port(obj: Any) -> int:
    for container in obj.spec.template.spec.containers:
        for port in container.ports or []:
            return int(port.container_port)
    return 0


def _condition(obj: Any, kind: str) -> Any | None:
    return next((c for c in obj.status.conditions or [] if c.type == kind), None)


def _deployment_state(dep: Any) -> WorkloadStatus:
    progressing = _condition(dep, "Progressing")
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        return WorkloadStatus(WorkloadState.FAILED, message=f"ProgressDeadlineExceeded: {progressing.message or ''}")
    replica_failure = _condition(dep, "ReplicaFailure")
    if replica_failure is not None and replica_failure.status == "True":
        return WorkloadStatus(WorkloadState.FAILED,
                              message=f"{replica_failure.reason or 'ReplicaFailure'}: {replica_failure.message or ''}")
    desired = dep.spec.replicas if dep.spec.replicas is not None else 1
    available = dep.status.available_replicas or 0
    if available >= desired:
        return WorkloadStatus(WorkloadState.RUNNING)
    return WorkloadStatus(WorkloadState.PENDING, message=f"{available}/{desired} replicas available")


def _job_state(job: Any) -> WorkloadStatus:
    completions = job.spec.completions or 1
    failed = _condition(job, "Failed")
    if (failed is not None and failed.status == "True") or (job.status.failed or 0) > 0:
        why = f"{failed.reason}: {failed.message}" if failed is not None else f"{job.status.failed} pod(s) failed"
        return WorkloadStatus(WorkloadState.FAILED, message=why)
    complete = _condition(job, "Complete")
    if (complete is not None and complete.status == "True") or (job.status.succeeded or 0) >= completions:
        return WorkloadStatus(WorkloadState.SUCCEEDED)
    if (job.status.active or 0) > 0:
        return WorkloadStatus(WorkloadState.RUNNING)
    return WorkloadStatus(WorkloadState.PENDING)


def _replica(index: int, pod: Any, port: int, job: bool) -> ReplicaStatus:
    status = pod.status
    address = f"http://{status.pod_ip}:{port}" if status and status.pod_ip else ""
    phase = status.phase if status else None
    for cs in (status.container_statuses if status else None) or []:
        waiting, terminated = cs.state and cs.state.waiting, cs.state and cs.state.terminated
        last = cs.last_state and cs.last_state.terminated
        if waiting is not None and waiting.reason in FAILED_WAITING_REASONS:
            code = last.exit_code if last is not None else None
            return ReplicaStatus(index, WorkloadState.FAILED, address, code,
                                 f"{waiting.reason}: {waiting.message or ''}".rstrip(": "))
        if terminated is not None and not (job and terminated.exit_code == 0):
            why = f"{terminated.reason or 'exited'} with status {terminated.exit_code}"
            return ReplicaStatus(index, WorkloadState.FAILED, address, terminated.exit_code,
                                 f"{why}: {terminated.message}" if terminated.message else why)
    if phase == "Succeeded":
        state = WorkloadState.SUCCEEDED if job else WorkloadState.FAILED
        return ReplicaStatus(index, state, address, 0, "" if job else "exited with status 0")
    if phase == "Failed":
        return ReplicaStatus(index, WorkloadState.FAILED, address, None,
                             f"{status.reason or 'Failed'}: {status.message or ''}".rstrip(": "))
    if phase == "Running":
        return ReplicaStatus(index, WorkloadState.RUNNING, address)
    return ReplicaStatus(index, WorkloadState.PENDING, address)
