"""DeploymentRunner's decisions (RUNNING only when every worker answers, failures with reasons, health,
reconciliation) with in-memory fakes of the runtime, the controller and the repository."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from aigc_admin.domain.deployments.entities import Deployment, DeploymentStatus, Engine, HealthRecord
from aigc_admin.domain.deployments.service import DeploymentRunner, EngineConfig, workload_name
from aigc_admin.domain.deployments.templates import MODEL_WORKER
from aigc_admin.domain.runtime import (
    LogChunk,
    ReplicaStatus,
    WorkloadHandle,
    WorkloadSpec,
    WorkloadState,
    WorkloadStatus,
)


class FakeRepo:
    def __init__(self) -> None:
        self.rows: dict[int, Deployment] = {}
        self.health_rows: list[tuple] = []

    def add(self, **kw: Any) -> Deployment:
        d = Deployment(id=len(self.rows) + 1, model_id=1, model_name="tiny", tenant_id=1,
                       status=DeploymentStatus.PENDING, reason="", engine=Engine.MODEL_WORKER, replicas=1,
                       gpus_per_replica=0, label="", quantization="", runtime_backend="fake", model_path="/m",
                       created_at=datetime.now(UTC))
        d = dataclasses.replace(d, **kw)
        self.rows[d.id] = d
        return d

    async def get(self, deployment_id: int) -> Deployment | None:
        return self.rows.get(deployment_id)

    async def update(self, deployment_id: int, **changes: Any) -> Deployment:
        if "status" in changes:
            changes["status"] = DeploymentStatus(changes["status"])
        if "worker_addresses" in changes:
            import json

            changes["worker_addresses"] = tuple(json.loads(changes["worker_addresses"]))
        self.rows[deployment_id] = dataclasses.replace(self.rows[deployment_id], **changes)
        return self.rows[deployment_id]

    async def list(self, *, tenant_id: int | None, statuses: list[DeploymentStatus] | None, offset: int,
                   limit: int) -> tuple[list[Deployment], int]:
        rows = [d for d in self.rows.values() if not statuses or d.status in statuses]
        return rows, len(rows)

    async def record_health(self, *args: Any) -> None:
        self.health_rows.append(args)

    async def health(self, deployment_id: int | None, limit: int) -> list[HealthRecord]:
        return []

    async def prune_health(self, before: datetime) -> int:
        self.pruned_before = before
        return 0


class FakeRuntime:
    type = "fake"

    def __init__(self) -> None:
        self.state = WorkloadState.RUNNING
        self.started: list[WorkloadSpec] = []
        self.stopped: list[str] = []
        self.owned: list[WorkloadHandle] = []
        self.message = ""
        self.revived: list[WorkloadSpec] = []

    async def start(self, spec: WorkloadSpec) -> WorkloadHandle:
        self.started.append(spec)
        return WorkloadHandle("fake", spec.name, {"replicas": spec.replicas})

    async def status(self, handle: WorkloadHandle) -> WorkloadStatus:
        if handle.name in self.stopped:
            return WorkloadStatus(WorkloadState.MISSING)
        n = self.started[-1].replicas if self.started else 1
        return WorkloadStatus(self.state, [ReplicaStatus(i, self.state, f"http://w{i}") for i in range(n)],
                              self.message)

    async def logs(self, handle: WorkloadHandle, since: int = 0, replica: int = 0) -> LogChunk:
        return LogChunk(["loading", "OOM"], 2)

    async def stop(self, handle: WorkloadHandle) -> None:
        self.stopped.append(handle.name)

    async def list_owned(self) -> list[WorkloadHandle]:
        return self.owned

    async def restart_failed(self, handle: WorkloadHandle, spec: WorkloadSpec) -> list[int]:
        self.revived.append(spec)
        return [0]


@dataclasses.dataclass
class Probe:
    model_names: tuple[str, ...]
    speed: float = 1.0
    queue_length: int = 0


class FakeController:
    def __init__(self) -> None:
        self.models: list[str] = []
        self.answering: set[str] = set()

    async def list_models(self) -> list[str]:
        return self.models

    async def worker_status(self, worker_address: str) -> Probe | None:
        return Probe(("tiny",)) if worker_address in self.answering else None


class Templates:
    async def inference_template(self, engine: Engine) -> str:
        import json

        return json.dumps(MODEL_WORKER)


class Events:
    def __init__(self) -> None:
        self.seen: list[DeploymentStatus] = []

    async def deployment_changed(self, deployment: Deployment) -> None:
        self.seen.append(deployment.status)


def make(timeout: float = 5.0) -> tuple[DeploymentRunner, FakeRepo, FakeRuntime, FakeController, Events]:
    repo, runtime, controller, events = FakeRepo(), FakeRuntime(), FakeController(), Events()
    runner = DeploymentRunner(repo=repo, runtime=runtime, controller=controller, templates=Templates(),  # type: ignore[arg-type]
                              events=events, owner="t",
                              engine=EngineConfig(python="/py", image="img", controller_address="http://c",
                                                  device="auto", start_timeout=timeout, poll_interval=0.01,
                                                  tolerations=({"key": "nvidia.com/gpu", "operator": "Exists"},)))
    return runner, repo, runtime, controller, events


async def test_running_only_when_every_replica_answers() -> None:
    runner, repo, runtime, controller, events = make()
    d = repo.add(replicas=2)
    controller.models = ["tiny"]
    controller.answering = {"http://w0", "http://w1"}
    result = await runner.deploy(d.id)
    assert result.status == DeploymentStatus.RUNNING and result.worker_addresses == ("http://w0", "http://w1")
    assert events.seen == [DeploymentStatus.STARTING, DeploymentStatus.RUNNING]
    spec = runtime.started[0]
    assert spec.name == workload_name(d.id) and spec.replicas == 2 and "--device" in spec.command
    assert spec.command[spec.command.index("--device") + 1] == "cpu"  # auto without GPUs
    assert spec.tolerations == [{"key": "nvidia.com/gpu", "operator": "Exists"}]


async def test_start_timeout_fails_with_log_tail_and_stops_the_workload() -> None:
    runner, repo, runtime, controller, _ = make(timeout=0.2)
    d = repo.add()
    controller.models = ["tiny"]  # registered, but the worker never answers worker_get_status
    result = await runner.deploy(d.id)
    assert result.status == DeploymentStatus.FAILED and "did not register" in result.reason and "OOM" in result.reason
    assert runtime.stopped == [workload_name(d.id)]


async def test_a_crashing_workload_fails_with_the_runtime_message() -> None:
    runner, repo, runtime, _, _ = make()
    runtime.state, runtime.message = WorkloadState.FAILED, "replica 0: exited with status 1"
    result = await runner.deploy(repo.add().id)
    assert result.status == DeploymentStatus.FAILED and result.reason == "replica 0: exited with status 1"


async def test_health_degraded_failed_and_recovered() -> None:
    runner, repo, runtime, controller, _ = make()
    d = repo.add(replicas=2)
    controller.models, controller.answering = ["tiny"], {"http://w0", "http://w1"}
    await runner.deploy(d.id)
    controller.answering = {"http://w0"}
    seen: list = []
    assert [x.status for x in await runner.check_health(seen)] == [DeploymentStatus.DEGRADED]
    # what the probes found, for the health event: no reading back per deployment
    assert [(dep.id, h.worker_address, h.healthy) for dep, h in seen] == [(d.id, "http://w0", True),
                                                                         (d.id, "http://w1", False)]
    controller.answering = set()  # alive but silent (a loaded machine?): degraded, not failed
    assert [(x.status, x.reason) for x in await runner.check_health()] == [
        (DeploymentStatus.DEGRADED, "0 of 2 workers answer")]
    runtime.state, runtime.message = WorkloadState.FAILED, "replica 0: exited with status 137"
    assert [x.status for x in await runner.check_health()] == [DeploymentStatus.FAILED]
    assert len(repo.health_rows) == 6  # one probe per worker per round
    runtime.state, runtime.message = WorkloadState.RUNNING, ""
    repo.rows[d.id] = dataclasses.replace(repo.rows[d.id], status=DeploymentStatus.DEGRADED)
    controller.answering = {"http://w0", "http://w1"}
    assert [x.status for x in await runner.check_health()] == [DeploymentStatus.RUNNING]
    assert await runner.check_health() == []  # no change, no event


async def test_a_replica_that_ended_is_started_again_while_the_others_serve() -> None:
    runner, repo, runtime, controller, _ = make()
    d = repo.add(replicas=2)
    controller.models, controller.answering = ["tiny"], {"http://w0", "http://w1"}
    await runner.deploy(d.id)
    runtime.state, runtime.message = WorkloadState.FAILED, "replica 0: exited with status 137"
    controller.answering = {"http://w1"}
    assert [(x.status, x.reason) for x in await runner.check_health()] == [
        (DeploymentStatus.DEGRADED, "1 of 2 workers answer: replica 0 ended and was started again")]
    assert [s.name for s in runtime.revived] == [workload_name(d.id)]  # the deployment's spec, env included
    assert runtime.revived[0].command == runtime.started[-1].command
    runtime.state, runtime.message = WorkloadState.RUNNING, ""
    controller.answering = {"http://w0", "http://w1"}
    assert [x.status for x in await runner.check_health()] == [DeploymentStatus.RUNNING]
    assert len(runtime.revived) == 1 and runtime.stopped == []  # the other replica was never touched


async def test_reconcile_stops_leftovers_fails_vanished_and_stuck() -> None:
    runner, repo, runtime, controller, _ = make(timeout=1)
    running = repo.add()
    controller.models, controller.answering = ["tiny"], {"http://w0"}
    await runner.deploy(running.id)
    stuck = repo.add(status=DeploymentStatus.PENDING, created_at=datetime.now(UTC) - timedelta(hours=1),
                     updated_at=datetime.now(UTC) - timedelta(hours=1))
    # created long ago but redeployed just now: not stuck
    fresh = repo.add(status=DeploymentStatus.PENDING, created_at=datetime.now(UTC) - timedelta(hours=1),
                     updated_at=datetime.now(UTC))
    runtime.owned = [WorkloadHandle("fake", "aigc-deploy-999"), WorkloadHandle("fake", workload_name(running.id))]
    runtime.stopped.append(workload_name(running.id))  # vanished behind our back
    result = await runner.reconcile()
    assert "aigc-deploy-999" in runtime.stopped
    assert result == {"stopped_leftovers": 1, "failed_vanished": 2}
    assert repo.rows[running.id].status == DeploymentStatus.FAILED and "vanished" in repo.rows[running.id].reason
    assert repo.rows[stuck.id].status == DeploymentStatus.FAILED and "no progress" in repo.rows[stuck.id].reason
    assert repo.rows[fresh.id].status == DeploymentStatus.PENDING
    assert repo.pruned_before < datetime.now(UTC) - timedelta(hours=23)  # health history is pruned


class Jobs:
    def __init__(self) -> None:
        self.enqueued: list[str] = []

    def enqueue(self, func_path: str, *, job_id: str, **kwargs: Any) -> str:
        self.enqueued.append(job_id)
        return job_id


async def test_lost_workers_are_started_again_three_times_in_a_row_then_failed() -> None:
    """The deployment is still wanted when its workers are lost (killed, crashed, stopped with the platform):
    a deploy job starts them again, at most MAX_AUTO_RESTARTS times in a row."""
    from aigc_admin.domain.deployments.service import MAX_AUTO_RESTARTS

    runner, repo, runtime, controller, _ = make()
    runner.jobs = jobs = Jobs()
    d = repo.add()
    controller.models, controller.answering = ["tiny"], {"http://w0"}
    await runner.deploy(d.id)
    for attempt in range(1, MAX_AUTO_RESTARTS + 2):
        assert repo.rows[d.id].status == DeploymentStatus.RUNNING
        runtime.state, controller.answering = WorkloadState.STOPPED, set()  # the workers are gone
        [changed] = await runner.check_health()
        if attempt > MAX_AUTO_RESTARTS:
            break
        assert changed.status == DeploymentStatus.PENDING and changed.restarts == attempt
        assert f"automatic restart {attempt} of {MAX_AUTO_RESTARTS}" in changed.reason
        assert jobs.enqueued[-1] == f"deploy:{d.id}"
        # the deploy job brings them back
        runtime.state, controller.answering = WorkloadState.RUNNING, {"http://w0"}
        repo.rows[d.id] = dataclasses.replace(repo.rows[d.id], status=DeploymentStatus.RUNNING)
    assert changed.status == DeploymentStatus.FAILED and f"after {MAX_AUTO_RESTARTS} automatic" in changed.reason
    assert len(jobs.enqueued) == MAX_AUTO_RESTARTS


async def test_a_deployment_running_for_a_while_starts_its_restart_count_over() -> None:
    runner, repo, _runtime, controller, _ = make()
    runner.jobs = Jobs()
    controller.models, controller.answering = ["tiny"], {"http://w0"}
    d = repo.add()
    await runner.deploy(d.id)
    repo.rows[d.id] = dataclasses.replace(repo.rows[d.id], restarts=2,
                                          started_at=datetime.now(UTC) - timedelta(hours=1))
    assert await runner.check_health() == []  # no status change, but the count starts over
    assert repo.rows[d.id].restarts == 0


async def test_the_worker_gets_the_models_conversation_template_only_when_it_names_one() -> None:
    runner, repo, runtime, controller, _ = make()
    controller.models, controller.answering = ["tiny"], {"http://w0"}
    await runner.deploy(repo.add().id)
    await runner.deploy(repo.add(conversation_template="qwen-7b-chat").id)
    chosen, named = runtime.started[0].command, runtime.started[1].command
    assert "--conv-template" not in chosen  # FastChat matches by name; the gateway uses the model's own template
    assert named[named.index("--conv-template") + 1] == "qwen-7b-chat"


async def test_reconcile_enqueues_the_job_of_every_waiting_deployment_again() -> None:
    """A job that died with its worker (kill -9) leaves its deployment PENDING/STARTING/STOPPING: the reconciler
    enqueues its job again (the queue ignores that while the job still runs), so the desired state is reached."""
    runner, repo, _runtime, _controller, _ = make()
    runner.jobs = jobs = Jobs()
    pending = repo.add(status=DeploymentStatus.PENDING)
    starting = repo.add(status=DeploymentStatus.STARTING)
    stopping = repo.add(status=DeploymentStatus.STOPPING)
    stopped = repo.add(status=DeploymentStatus.STOPPED)
    await runner.reconcile()
    assert sorted(jobs.enqueued) == sorted([f"deploy:{pending.id}", f"deploy:{starting.id}",
                                            f"undeploy:{stopping.id}"])
    assert f"deploy:{stopped.id}" not in jobs.enqueued
