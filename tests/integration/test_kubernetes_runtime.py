"""KubernetesRuntime against a real kube-apiserver (etcd + kube-apiserver, nothing else).

No controller or kubelet runs, so the tests play their part: they patch the status subresource of
Deployments and Jobs and create Pods with the workload's labels, then set the pods' status, the way
the deployment controller and the kubelet would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kubernetes.client as k8s
import pytest
from kubernetes.client.rest import ApiException

from aigc_admin.adapters.runtime.kubernetes import KubernetesRuntime
from aigc_admin.domain.runtime import (
    OWNER_LABEL,
    WORKLOAD_LABEL,
    LogChunk,
    RuntimeUnavailable,
    VolumeMount,
    WorkloadHandle,
    WorkloadKind,
    WorkloadSpec,
    WorkloadState,
)
from tests.support.kube import KubeCluster, free_port, start_kube

NAMESPACE = "aigc-rt-test"
OWNER = "aigc-test"
PORT = 21002
NOW = "2026-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    cluster = start_kube(tmp_path_factory.mktemp("kube"))
    yield cluster
    cluster.stop()


def client_for(host: str, token: str, ca_file: str) -> k8s.ApiClient:
    config = k8s.Configuration()
    config.host = host
    config.api_key = {"authorization": token}
    config.api_key_prefix = {"authorization": "Bearer"}
    config.ssl_ca_cert = ca_file
    return k8s.ApiClient(config)


@pytest.fixture(scope="module")
def api(kube: KubeCluster) -> Iterator[k8s.ApiClient]:
    client = client_for(kube.host, kube.token, kube.ca_file)
    core(client).create_namespace({"metadata": {"name": NAMESPACE}})
    # The service-account admission plugin wants the namespace's "default" account (a controller makes it).
    core(client).create_namespaced_service_account(NAMESPACE, {"metadata": {"name": "default"}})
    yield client
    client.close()


@pytest.fixture(scope="module")
def runtime(api: k8s.ApiClient) -> KubernetesRuntime:
    return KubernetesRuntime(api_client=api, namespace=NAMESPACE, owner=OWNER, shm_size="1Gi")


def service_spec(name: str, **kw: Any) -> WorkloadSpec:
    args: dict[str, Any] = {
        "name": name, "image": "aigc/fastchat:test", "container_port": PORT, "env": {"HF_HUB_OFFLINE": "1"},
        "command": ["python3", "-m", "fastchat.serve.model_worker", "--host", "{host}", "--port", "{port}",
                    "--worker-address", "http://{host}:{port}"],
    }
    return WorkloadSpec(**{**args, **kw})


# The generated clients are typed for model objects; the tests pass plain dicts (as the API allows).
def core(api: k8s.ApiClient) -> Any:
    return k8s.CoreV1Api(api)


def apps(api: k8s.ApiClient) -> Any:
    return k8s.AppsV1Api(api)


def batch(api: k8s.ApiClient) -> Any:
    return k8s.BatchV1Api(api)


# --- playing controller and kubelet ---------------------------------------------------------------
def patch_deployment_status(api: k8s.ApiClient, name: str, status: dict[str, Any]) -> None:
    apps(api).patch_namespaced_deployment_status(name, NAMESPACE, {"status": status})


def create_pods(api: k8s.ApiClient, name: str, count: int) -> list[str]:
    labels = apps(api).read_namespaced_deployment(name, NAMESPACE).spec.template.metadata.labels
    names = [f"{name}-pod-{i}" for i in range(count)]
    for pod in names:
        core(api).create_namespaced_pod(NAMESPACE, {
            "metadata": {"name": pod, "labels": labels},
            "spec": {"automountServiceAccountToken": False, "containers": [{"name": "main", "image": "x"}]},
        })
    return names


def container_status(state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    status = {"name": "main", "image": "x", "imageID": "", "ready": "running" in state, "restartCount": 0,
              "state": state}
    if last:
        status["lastState"] = last
    return status


def set_pod_status(api: k8s.ApiClient, pod: str, ip: str, phase: str, container: dict[str, Any]) -> None:
    status = {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}], "containerStatuses": [container]}
    core(api).patch_namespaced_pod_status(pod, NAMESPACE, [{"op": "add", "path": "/status", "value": status}])


def running(api: k8s.ApiClient, pod: str, ip: str) -> None:
    set_pod_status(api, pod, ip, "Running", container_status({"running": {"startedAt": NOW}}))


# --- the tests ---------------------------------------------------------------------------------------
async def test_service_is_a_deployment_and_a_service_exactly_as_specified(
        runtime: KubernetesRuntime, api: k8s.ApiClient) -> None:
    spec = service_spec(
        "llm-worker", replicas=3, gpus_per_replica=2, node_selector={"aigc-admin/label": "a100"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        volumes=[VolumeMount("/models", claim_name="models-pvc"), VolumeMount("/data", host_path="/srv/aigc/data")],
        labels={"aigc-admin/deployment": "42"})
    handle = await runtime.start(spec)
    assert handle.backend == "kubernetes" and handle.name == "llm-worker"
    assert handle.data["service_address"] == f"http://llm-worker.{NAMESPACE}.svc:{PORT}"

    dep = apps(api).read_namespaced_deployment("llm-worker", NAMESPACE)
    assert dep.spec.replicas == 3
    selector = {OWNER_LABEL: OWNER, WORKLOAD_LABEL: "llm-worker"}
    assert dep.spec.selector.match_labels == selector
    assert dep.metadata.labels == {**selector, "aigc-admin/deployment": "42"}
    pod = dep.spec.template.spec
    assert dep.spec.template.metadata.labels == {**selector, "aigc-admin/deployment": "42"}
    assert pod.node_selector == {"aigc-admin/label": "a100"}
    assert [(t.key, t.operator, t.effect) for t in pod.tolerations] == [("nvidia.com/gpu", "Exists", "NoSchedule")]
    (container,) = pod.containers
    assert container.image == "aigc/fastchat:test"
    assert container.resources.limits == {"nvidia.com/gpu": "2"}
    assert container.command == ["python3", "-m", "fastchat.serve.model_worker", "--host", "$(POD_IP)",
                                 "--port", str(PORT), "--worker-address", f"http://$(POD_IP):{PORT}"]
    env = {e.name: e for e in container.env}
    assert env["POD_IP"].value_from.field_ref.field_path == "status.podIP"
    assert env["HF_HUB_OFFLINE"].value == "1"
    assert [p.container_port for p in container.ports] == [PORT]

    volumes = {v.name: v for v in pod.volumes}
    mounts = {m.mount_path: m for m in container.volume_mounts}
    claim = volumes[mounts["/models"].name].persistent_volume_claim
    assert claim.claim_name == "models-pvc" and claim.read_only is True
    assert volumes[mounts["/data"].name].host_path.path == "/srv/aigc/data"
    assert mounts["/models"].read_only is True and mounts["/data"].read_only is True
    shm = volumes[mounts["/dev/shm"].name].empty_dir
    assert shm.medium == "Memory" and shm.size_limit == "1Gi"
    assert len(volumes) == 3

    svc = core(api).read_namespaced_service("llm-worker", NAMESPACE)
    assert svc.spec.selector == selector
    assert [(p.port, p.target_port) for p in svc.spec.ports] == [(PORT, PORT)]
    assert svc.spec.cluster_ip  # allocated from --service-cluster-ip-range

    status = await runtime.status(handle)
    assert status.state == WorkloadState.PENDING
    assert status.replicas == []


async def test_service_runs_when_available_and_fails_on_a_bad_pod(
        runtime: KubernetesRuntime, api: k8s.ApiClient) -> None:
    handle = await runtime.start(service_spec("svc-run", replicas=3))
    pods = create_pods(api, "svc-run", 3)
    status = await runtime.status(handle)
    assert status.state == WorkloadState.PENDING
    assert [r.state for r in status.replicas] == [WorkloadState.PENDING] * 3

    patch_deployment_status(api, "svc-run", {
        "observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability.", "lastUpdateTime": NOW,
                        "lastTransitionTime": NOW}]})
    for i, pod in enumerate(pods):
        running(api, pod, f"10.1.0.{i + 1}")
    status = await runtime.status(handle)
    assert status.state == WorkloadState.RUNNING, status
    assert [(r.index, r.state) for r in status.replicas] == [(i, WorkloadState.RUNNING) for i in range(3)]
    assert [r.address for r in status.replicas] == [f"http://10.1.0.{i}:{PORT}" for i in (1, 2, 3)]

    # The kubelet reports an OOM kill of replica 0.
    set_pod_status(api, pods[0], "10.1.0.1", "Running", container_status(
        {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": NOW, "finishedAt": NOW}}))
    status = await runtime.status(handle)
    assert status.state == WorkloadState.FAILED
    assert status.replicas[0].exit_code == 137
    assert "OOMKilled" in status.message and "137" in status.message and status.message.startswith("replica 0")

    # It restarts, then replica 1 crash-loops.
    running(api, pods[0], "10.1.0.1")
    set_pod_status(api, pods[1], "10.1.0.2", "Running", container_status(
        {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
        last={"terminated": {"exitCode": 1, "reason": "Error", "startedAt": NOW, "finishedAt": NOW}}))
    status = await runtime.status(handle)
    assert status.state == WorkloadState.FAILED
    assert status.replicas[1].state == WorkloadState.FAILED and status.replicas[1].exit_code == 1
    assert "CrashLoopBackOff" in status.message and status.message.startswith("replica 1")

    running(api, pods[1], "10.1.0.2")
    set_pod_status(api, pods[2], "10.1.0.3", "Pending",
                   container_status({"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}))
    status = await runtime.status(handle)
    assert status.state == WorkloadState.FAILED and "ImagePullBackOff" in status.message


async def test_progress_deadline_exceeded_is_failed(runtime: KubernetesRuntime, api: k8s.ApiClient) -> None:
    handle = await runtime.start(service_spec("svc-deadline"))
    patch_deployment_status(api, "svc-deadline", {"replicas": 1, "unavailableReplicas": 1, "conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": 'ReplicaSet "svc-deadline-5d8f" has timed out progressing.', "lastUpdateTime": NOW,
         "lastTransitionTime": NOW}]})
    status = await runtime.status(handle)
    assert status.state == WorkloadState.FAILED
    assert "ProgressDeadlineExceeded" in status.message and "timed out progressing" in status.message


async def test_job_runs_to_success_or_failure(runtime: KubernetesRuntime, api: k8s.ApiClient) -> None:
    jobs = batch(api)
    spec = service_spec("train-ok", kind=WorkloadKind.JOB, gpus_per_replica=1,
                        command=["python3", "train.py", "--out", "/data/out"])
    handle = await runtime.start(spec)
    assert handle.data["kind"] == "job" and "service_address" not in handle.data
    job = jobs.read_namespaced_job("train-ok", NAMESPACE)
    assert job.spec.backoff_limit == 0
    assert job.spec.template.spec.restart_policy == "Never"
    assert job.spec.template.metadata.labels[WORKLOAD_LABEL] == "train-ok"
    assert job.spec.template.spec.containers[0].resources.limits == {"nvidia.com/gpu": "1"}
    with pytest.raises(ApiException) as exc:
        core(api).read_namespaced_service("train-ok", NAMESPACE)
    assert exc.value.status == 404

    assert (await runtime.status(handle)).state == WorkloadState.PENDING
    jobs.patch_namespaced_job_status("train-ok", NAMESPACE, {"status": {"active": 1, "startTime": NOW}})
    assert (await runtime.status(handle)).state == WorkloadState.RUNNING
    jobs.patch_namespaced_job_status("train-ok", NAMESPACE, {"status": {
        "active": 0, "succeeded": 1, "completionTime": NOW,
        "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": NOW, "lastTransitionTime": NOW}]}})
    assert (await runtime.status(handle)).state == WorkloadState.SUCCEEDED

    failing = await runtime.start(service_spec("train-bad", kind=WorkloadKind.JOB))
    jobs.patch_namespaced_job_status("train-bad", NAMESPACE, {"status": {
        "failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                     "message": "Job has reached the specified backoff limit",
                                     "lastProbeTime": NOW, "lastTransitionTime": NOW}]}})
    status = await runtime.status(failing)
    assert status.state == WorkloadState.FAILED and "BackoffLimitExceeded" in status.message

    await runtime.stop(handle)
    await runtime.stop(failing)
    assert (await runtime.status(handle)).state == WorkloadState.MISSING
    with pytest.raises(ApiException) as exc:
        jobs.read_namespaced_job("train-ok", NAMESPACE)
    assert exc.value.status == 404


async def test_start_is_idempotent(runtime: KubernetesRuntime, api: k8s.ApiClient) -> None:
    spec = service_spec("svc-twice", replicas=2)
    first = await runtime.start(spec)
    second = await runtime.start(spec)
    assert first == second
    deployments = apps(api).list_namespaced_deployment(
        NAMESPACE, label_selector=f"{WORKLOAD_LABEL}=svc-twice").items
    services = core(api).list_namespaced_service(NAMESPACE, label_selector=f"{WORKLOAD_LABEL}=svc-twice")
    assert len(deployments) == 1 and len(services.items) == 1


async def test_list_owned_sees_only_this_owner(runtime: KubernetesRuntime, api: k8s.ApiClient) -> None:
    await runtime.start(service_spec("owned-svc"))
    await runtime.start(service_spec("owned-job", kind=WorkloadKind.JOB))
    other = KubernetesRuntime(api_client=api, namespace=NAMESPACE, owner="someone-else")
    await other.start(service_spec("foreign-svc"))

    owned = {h.name: h for h in await runtime.list_owned()}
    assert {"owned-svc", "owned-job", "llm-worker"} <= set(owned)
    assert "foreign-svc" not in owned
    assert owned["owned-svc"].data == {"namespace": NAMESPACE, "kind": "service", "port": PORT,
                                       "service_address": f"http://owned-svc.{NAMESPACE}.svc:{PORT}"}
    assert owned["owned-job"].data["kind"] == "job"
    assert [h.name for h in await other.list_owned()] == ["foreign-svc"]
    # A handle from list_owned works like the one start returned.
    assert (await runtime.status(owned["owned-job"])).state == WorkloadState.PENDING


async def test_logs_before_any_pod_runs_are_empty(runtime: KubernetesRuntime, api: k8s.ApiClient) -> None:
    handle = await runtime.start(service_spec("svc-logs"))
    assert await runtime.logs(handle) == LogChunk([], 0)
    create_pods(api, "svc-logs", 1)  # stored, never scheduled: no container has logs
    assert await runtime.logs(handle, since=3) == LogChunk([], 3)
    assert await runtime.logs(handle, replica=5) == LogChunk([], 0)


async def test_stop_deletes_everything_and_is_idempotent(runtime: KubernetesRuntime, api: k8s.ApiClient) -> None:
    handle = await runtime.start(service_spec("svc-stop", replicas=2))
    await runtime.stop(handle)
    for read in (apps(api).read_namespaced_deployment, core(api).read_namespaced_service):
        with pytest.raises(ApiException) as exc:
            read("svc-stop", NAMESPACE)
        assert exc.value.status == 404
    status = await runtime.status(handle)
    assert status.state == WorkloadState.MISSING
    await runtime.stop(handle)  # again: nothing to do
    assert "svc-stop" not in {h.name for h in await runtime.list_owned()}


async def test_unreachable_api_server_raises_runtime_unavailable(kube: KubeCluster) -> None:
    dead = KubernetesRuntime(api_client=client_for(f"https://127.0.0.1:{free_port()}", kube.token, kube.ca_file),
                             namespace=NAMESPACE, owner=OWNER, request_timeout=5)
    handle = WorkloadHandle("kubernetes", "whatever", {"kind": "service", "port": PORT})
    with pytest.raises(RuntimeUnavailable):
        await dead.status(handle)
    with pytest.raises(RuntimeUnavailable):
        await dead.start(service_spec("never"))
    with pytest.raises(RuntimeUnavailable):
        await dead.list_owned()


async def test_bad_token_is_runtime_unavailable(kube: KubeCluster) -> None:
    denied = KubernetesRuntime(api_client=client_for(kube.host, "not-a-token", kube.ca_file),
                               namespace=NAMESPACE, owner=OWNER)
    with pytest.raises(RuntimeUnavailable):
        await denied.list_owned()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
async def test_from_settings_with_host_and_token_or_kubeconfig(kube: KubeCluster, api: k8s.ApiClient,
                                                               tmp_path: Path) -> None:
    base = {"runtime_k8s_namespace": NAMESPACE, "runtime_k8s_volume_name": "models", "runtime_shm_size": "2Gi",
            "redis_prefix": OWNER}
    by_token = KubernetesRuntime.from_settings(SimpleNamespace(
        **base, runtime_k8s_host=kube.host, runtime_k8s_token=kube.token, runtime_k8s_insecure=True,
        runtime_k8s_config_path=""))
    assert "llm-worker" in {h.name for h in await by_token.list_owned()}
    assert by_token.volume_claim == "models" and by_token.shm_size == "2Gi"

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: test, cluster: {{server: "{kube.host}", certificate-authority: "{kube.ca_file}"}}}}]
users: [{{name: admin, user: {{token: "{kube.token}"}}}}]
contexts: [{{name: test, context: {{cluster: test, user: admin, namespace: {NAMESPACE}}}}}]
current-context: test
""")
    by_file = KubernetesRuntime.from_settings(SimpleNamespace(
        **base, runtime_k8s_host="", runtime_k8s_token="", runtime_k8s_insecure=False,
        runtime_k8s_config_path=str(kubeconfig)))
    assert "llm-worker" in {h.name for h in await by_file.list_owned()}


async def test_an_invalid_spec_is_a_value_error(runtime: KubernetesRuntime, api: k8s.ApiClient) -> None:
    with pytest.raises(ValueError, match="image"):
        await runtime.start(service_spec("no-image", image=""))
    with pytest.raises(ValueError, match="neither a claim nor a host path"):
        await runtime.start(service_spec("no-volume", volumes=[VolumeMount("/models")]))
    assert not apps(api).list_namespaced_deployment(NAMESPACE, label_selector=f"{WORKLOAD_LABEL}=no-image").items
    # A VolumeMount without claim or host path gets the runtime's default claim.
    with_claim = KubernetesRuntime(api_client=api, namespace=NAMESPACE, owner=OWNER, volume_claim="shared-models")
    await with_claim.start(service_spec("default-claim", volumes=[VolumeMount("/models")]))
    pod = apps(api).read_namespaced_deployment("default-claim", NAMESPACE).spec.template.spec
    assert [v.persistent_volume_claim.claim_name for v in pod.volumes] == ["shared-models"]


def test_from_settings_needs_an_address_outside_a_cluster() -> None:
    with pytest.raises(ValueError, match=r"runtime\.k8s\.host"):
        KubernetesRuntime.from_settings(SimpleNamespace(
            runtime_k8s_host="", runtime_k8s_token="", runtime_k8s_config_path="", runtime_k8s_insecure=False,
            runtime_k8s_namespace="default", runtime_k8s_volume_name="", runtime_shm_size=""))


async def test_training_runner_runs_a_kubernetes_job(runtime: KubernetesRuntime, api: k8s.ApiClient) -> None:
    """The fine-tuning scheduler on the Kubernetes runtime: a batch Job with the training command, the
    engine image and a writable storage mount; finished when the Job reports success."""
    from aigc_admin.domain.finetunes.service import FineTuneRunner, JobStatus, TrainingConfig
    from tests.unit.test_finetune_runner import Events, Finisher, Repo, code

    repo, finisher = Repo(), Finisher()
    runner = FineTuneRunner(repo=repo, runtime=runtime, events=Events(), finisher=finisher, owner=OWNER,  # type: ignore[arg-type]
                            config=TrainingConfig(python="python3", program="/app/finetune.py", image="engine:1",
                                                  storage_dir="/data"), tenant_code=code)
    job = repo.add()
    await runner.tick()
    batch = k8s.BatchV1Api(api)
    created = batch.read_namespaced_job(f"aigc-ft-{job.id}", NAMESPACE)
    container = created.spec.template.spec.containers[0]
    assert container.image == "engine:1" and container.command[:2] == ["python3", "/app/finetune.py"]
    assert any(m.mount_path == "/data" and not m.read_only for m in container.volume_mounts)
    assert repo.rows[job.id].status == JobStatus.RUNNING
    batch.patch_namespaced_job_status(f"aigc-ft-{job.id}", NAMESPACE, {"status": {
        "active": 0, "succeeded": 1, "completionTime": NOW,
        "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": NOW, "lastTransitionTime": NOW}]}})
    await runner.tick()
    assert repo.rows[job.id].status == JobStatus.SUCCEEDED and finisher.calls[0][0] == "register"
    await runtime.stop(WorkloadHandle("kubernetes", f"aigc-ft-{job.id}", {"namespace": NAMESPACE, "kind": "job"}))


# --- multi-node replicas: a LeaderWorkerSet ------------------------------------------------------------
# The LeaderWorkerSet CRD as far as the runtime uses it, written for this test from the LWS API reference
# (https://lws.sigs.k8s.io/docs/reference/leaderworkerset.v1/): the API server checks these fields' names and types;
# the pod templates are kept as objects here and checked in full below by a server-side dry run of a Pod.
POD_TEMPLATE = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
LWS_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "leaderworkersets.leaderworkerset.x-k8s.io"},
    "spec": {
        "group": "leaderworkerset.x-k8s.io", "scope": "Namespaced",
        "names": {"kind": "LeaderWorkerSet", "listKind": "LeaderWorkerSetList", "plural": "leaderworkersets",
                  "singular": "leaderworkerset", "shortNames": ["lws"]},
        "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}}, "schema": {
            "openAPIV3Schema": {"type": "object", "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                "spec": {"type": "object", "required": ["leaderWorkerTemplate"], "properties": {
                    "replicas": {"type": "integer", "format": "int32", "minimum": 0},
                    "startupPolicy": {"type": "string", "enum": ["LeaderCreated", "LeaderReady"]},
                    "leaderWorkerTemplate": {"type": "object", "required": ["workerTemplate"], "properties": {
                        "size": {"type": "integer", "format": "int32", "minimum": 1},
                        "restartPolicy": {"type": "string", "enum": ["RecreateGroupOnPodRestart", "None"]},
                        "leaderTemplate": POD_TEMPLATE, "workerTemplate": POD_TEMPLATE}}}},
                "status": {"type": "object", "properties": {
                    "replicas": {"type": "integer"}, "readyReplicas": {"type": "integer"},
                    "updatedReplicas": {"type": "integer"}}}}}}}]}}


def install_lws_crd(api: k8s.ApiClient) -> None:
    import time

    extensions: Any = k8s.ApiextensionsV1Api(api)
    extensions.create_custom_resource_definition(LWS_CRD)
    for _ in range(100):
        crd = extensions.read_custom_resource_definition(LWS_CRD["metadata"]["name"])
        if any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
            time.sleep(1)  # discovery catches up
            return
        time.sleep(0.1)
    raise AssertionError("the LeaderWorkerSet CRD was not established")


async def test_a_multi_node_vllm_replica_is_a_leader_worker_set(runtime: KubernetesRuntime,
                                                                 api: k8s.ApiClient) -> None:
    """A vllm deployment whose replicas span two machines: the platform's spec (Ray head + vLLM serving with
    pipeline parallelism on the leader, Ray workers joining it) becomes a LeaderWorkerSet the API server accepts,
    with pod templates that are valid Pods; its status follows the groups; stop removes it."""
    from datetime import UTC, datetime

    from aigc_admin.domain.deployments.entities import Deployment, DeploymentStatus, Engine, EngineOptions
    from aigc_admin.domain.deployments.service import DeploymentRunner, EngineConfig
    from aigc_admin.domain.deployments.templates import VLLM

    class Templates:
        async def inference_template(self, engine: Engine) -> str:
            import json

            return json.dumps(VLLM)

    runner = DeploymentRunner(repo=None, runtime=runtime, controller=None, templates=Templates(),  # type: ignore[arg-type]
                              events=None, owner=OWNER,  # type: ignore[arg-type]
                              engine=EngineConfig(python="python3", image="aigc/fastchat:test", controller_address="",
                                                  device="auto", vllm_image="vllm/vllm-openai:v0.32.0",
                                                  model_claim="models"))
    d = Deployment(id=77, model_id=1, model_name="big-model", tenant_id=1, status=DeploymentStatus.PENDING, reason="",
                   engine=Engine.VLLM, replicas=2, gpus_per_replica=8, label="", quantization="", runtime_backend="",
                   model_path="/models/big", created_at=datetime.now(UTC),
                   engine_options=EngineOptions(nodes=2, max_model_len=32768))
    spec = await runner.spec(d)
    assert spec.nodes == 2 and spec.command[:2] == ["sh", "-c"] and "ray start --head" in spec.command[2]
    assert "--pipeline-parallel-size 2" in spec.command[2] and "--tensor-parallel-size 8" in spec.command[2]

    for _ in range(3):  # the API server closes the connection after such a 404: the next call must still work
        with pytest.raises(ValueError, match="LeaderWorkerSet CRD"):  # a cluster without LWS: said at once
            await runtime.start(spec)
    install_lws_crd(api)
    handle = await runtime.start(spec)
    assert await runtime.start(spec) == handle  # idempotent
    custom: Any = k8s.CustomObjectsApi(api)
    lws = custom.get_namespaced_custom_object("leaderworkerset.x-k8s.io", "v1", NAMESPACE, "leaderworkersets",
                                              spec.name)
    group = lws["spec"]["leaderWorkerTemplate"]
    assert lws["spec"]["replicas"] == 2 and group["size"] == 2
    assert group["restartPolicy"] == "RecreateGroupOnPodRestart"
    leader, worker = group["leaderTemplate"], group["workerTemplate"]
    assert leader["spec"]["containers"][0]["image"] == "vllm/vllm-openai:v0.32.0"
    assert "$(POD_IP)" in leader["spec"]["containers"][0]["command"][2]  # {host}, expanded by the kubelet
    assert "ray start --address=$(LWS_LEADER_ADDRESS):6379" in worker["spec"]["containers"][0]["command"][2]
    for template in (leader, worker):
        assert template["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    # each template is a valid Pod for this API server (a dry run validates it in full, defaults and all)
    for role, template in (("leader", leader), ("worker", worker)):
        pod_spec = {**template["spec"], "automountServiceAccountToken": False}  # (no token controller runs here)
        core(api).create_namespaced_pod(NAMESPACE, {"metadata": {"name": f"dry-{role}", **template["metadata"]},
                                                    "spec": pod_spec}, dry_run="All")
    service = core(api).read_namespaced_service(spec.name, NAMESPACE)
    assert service.spec.selector["aigc-admin/role"] == "leader"  # traffic to the leaders only

    status = await runtime.status(handle)
    assert status.state == WorkloadState.PENDING and status.message == "0 of 2 groups ready"
    # play the LWS controller and the kubelet: two groups, their leaders serving
    for i in range(2):
        for role in ("leader", "worker"):
            labels = (leader if role == "leader" else worker)["metadata"]["labels"]
            pod = f"{spec.name}-{i}-{role}"
            core(api).create_namespaced_pod(NAMESPACE, {"metadata": {"name": pod, "labels": labels}, "spec": {
                "automountServiceAccountToken": False, "containers": [{"name": "main", "image": "x"}]}})
            running(api, pod, f"10.2.{i}.{1 if role == 'leader' else 2}")
    custom.patch_namespaced_custom_object_status("leaderworkerset.x-k8s.io", "v1", NAMESPACE, "leaderworkersets",
                                                 spec.name, {"status": {"replicas": 2, "readyReplicas": 2}})
    status = await runtime.status(handle)
    assert status.state == WorkloadState.RUNNING, status
    assert [r.address for r in status.replicas] == [f"http://10.2.0.1:{PORT}", f"http://10.2.1.1:{PORT}"]
    # a worker pod of a group dies for good: the replica is failed (LWS recreates the group)
    set_pod_status(api, f"{spec.name}-1-worker", "10.2.1.2", "Running", container_status(
        {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": NOW, "finishedAt": NOW}}))
    status = await runtime.status(handle)
    assert status.state == WorkloadState.FAILED and status.message.startswith("worker pod 1")

    assert handle.name in [h.name for h in await runtime.list_owned()]
    await runtime.stop(handle)
    assert (await runtime.status(handle)).state in (WorkloadState.MISSING, WorkloadState.STOPPED)
