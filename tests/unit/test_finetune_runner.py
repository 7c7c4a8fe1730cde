"""FineTuneRunner's decisions with in-memory fakes: capacity and order, the spec per runtime, progress
from step lines, success (register, grant, deploy) and failure reasons."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from aigc_admin.domain.capacity import GpuPool
from aigc_admin.domain.finetunes.service import (
    FineTuneJob,
    FineTuneRunner,
    HyperParams,
    JobStatus,
    LogLine,
    TrainingConfig,
)
from aigc_admin.domain.runtime import (
    LogChunk,
    VolumeMount,
    WorkloadHandle,
    WorkloadSpec,
    WorkloadState,
    WorkloadStatus,
)


class Repo:
    def __init__(self) -> None:
        self.rows: dict[int, FineTuneJob] = {}
        self.logs: list[LogLine] = []

    def add(self, **kw: Any) -> FineTuneJob:
        job = FineTuneJob(id=len(self.rows) + 1, job_id=f"ftjob-{len(self.rows) + 1}", tenant_id=1, base_model="tiny",
                          base_model_path="/m", file_id="file-1", data_path="/d.jsonl", status=JobStatus.WAITING,
                          params=HyperParams(), output_dir="/out")
        job = dataclasses.replace(job, **kw)
        self.rows[job.id] = job
        return job

    async def get(self, pk: int) -> FineTuneJob | None:
        return self.rows.get(pk)

    async def update(self, pk: int, **changes: Any) -> FineTuneJob:
        changes.pop("train_duration", None)
        self.rows[pk] = dataclasses.replace(self.rows[pk], **changes)
        return self.rows[pk]

    async def list(self, *, tenant_id: int | None, statuses: list[JobStatus] | None, offset: int,
                   limit: int) -> tuple[list[FineTuneJob], int]:
        rows = [j for j in self.rows.values() if not statuses or j.status in statuses]
        return rows, len(rows)

    async def delete_logs(self, pk: int) -> None:
        self.logs = []

    async def gpus_in_use(self) -> int:
        return sum(j.params.proc_per_node for j in self.rows.values() if j.status == JobStatus.RUNNING)

    async def append_logs(self, pk: int, first_seq: int, lines: list[str]) -> None:
        self.logs += [LogLine(first_seq + i, line) for i, line in enumerate(lines)]
        self.rows[pk] = dataclasses.replace(self.rows[pk], log_cursor=first_seq + len(lines) - 1)


class Runtime:
    def __init__(self, type_: str = "local") -> None:
        self.type = type_
        self.started: list[WorkloadSpec] = []
        self.state = WorkloadState.RUNNING
        self.lines: list[str] = []
        self.stopped: list[str] = []

    async def start(self, spec: WorkloadSpec) -> WorkloadHandle:
        self.started.append(spec)
        return WorkloadHandle(self.type, spec.name, {})

    async def status(self, handle: WorkloadHandle) -> WorkloadStatus:
        return WorkloadStatus(self.state, message="replica 0: process exited with status 1")

    async def logs(self, handle: WorkloadHandle, since: int = 0, replica: int = 0) -> LogChunk:
        return LogChunk(self.lines[since:], len(self.lines))

    async def stop(self, handle: WorkloadHandle) -> None:
        self.stopped.append(handle.name)


class Events:
    def __init__(self) -> None:
        self.sent: list[tuple[list[int], JobStatus]] = []

    async def lines(self, job_pk: int, batch: list[LogLine], status: JobStatus) -> None:
        self.sent.append(([x.seq for x in batch], status))


class Finisher:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def register(self, job: FineTuneJob, name: str, output_dir: str) -> int:
        self.calls.append(("register", name))
        return 42

    async def grant(self, channel_id: int, model_id: int) -> None:
        self.calls.append(("grant", (channel_id, model_id)))

    async def deploy(self, job: FineTuneJob, model_id: int) -> None:
        self.calls.append(("deploy", model_id))


async def code(tenant_id: int) -> str:
    return "acme"


def pool(gpus: int, repo: Repo) -> GpuPool:
    """The GPU pool as the composition root registers training in it."""
    p = GpuPool(gpus)
    p.register("training", repo.gpus_in_use)
    return p


def make(runtime: Runtime, gpus: int = 0, **cfg: Any) -> tuple[FineTuneRunner, Repo, Events, Finisher]:
    repo, events, finisher = Repo(), Events(), Finisher()
    runner = FineTuneRunner(repo=repo, runtime=runtime, events=events, finisher=finisher, owner="t",  # type: ignore[arg-type]
                            config=TrainingConfig(python="/py", program="/p/finetune.py", **cfg), tenant_code=code,
                            gpus=pool(gpus, repo))
    return runner, repo, events, finisher


async def test_capacity_and_first_come_first_served() -> None:
    runtime = Runtime()
    runner, repo, _, _ = make(runtime, gpus=4, max_running=2)
    a = repo.add()
    big = repo.add(params=HyperParams(proc_per_node=8))  # never fits: later jobs wait behind it
    c = repo.add()
    await runner.tick()
    assert [s.name for s in runtime.started] == [f"aigc-ft-{a.id}"]
    assert repo.rows[big.id].status == JobStatus.WAITING and repo.rows[c.id].status == JobStatus.WAITING
    spec = runtime.started[0]
    assert spec.command[:2] == ["/py", "/p/finetune.py"] and "--merge" in spec.command and spec.volumes == []


async def test_gpus_held_by_deployments_count_against_the_same_capacity() -> None:
    runtime = Runtime()
    repo, events, finisher = Repo(), Events(), Finisher()
    deployed = 3

    async def deployment_gpus() -> int:
        return deployed

    gpus = pool(4, repo)
    gpus.register("deployments", deployment_gpus)
    runner = FineTuneRunner(repo=repo, runtime=runtime, events=events, finisher=finisher, owner="t",  # type: ignore[arg-type]
                            config=TrainingConfig(python="/py", program="/p/finetune.py"), tenant_code=code, gpus=gpus)
    job = repo.add(params=HyperParams(proc_per_node=2))
    await runner.tick()
    assert runtime.started == [] and repo.rows[job.id].status == JobStatus.WAITING  # 3 + 2 > 4
    deployed = 2
    await runner.tick()
    assert [s.name for s in runtime.started] == [f"aigc-ft-{job.id}"]


async def test_container_runtimes_get_the_image_and_a_writable_storage_mount() -> None:
    runtime = Runtime("kubernetes")
    runner, repo, _, _ = make(runtime, image="engine:1", storage_dir="/data")
    repo.add()
    await runner.tick()
    spec = runtime.started[0]
    assert spec.image == "engine:1"
    assert [(v.mount_path, v.read_only) for v in spec.volumes] == [("/data", False)]


async def test_docker_also_mounts_the_program_directory_and_the_base_model_read_only() -> None:
    runtime = Runtime("docker")
    runner, repo, _, _ = make(runtime, image="engine:1", storage_dir="/data", max_running=2,
                              volumes=(VolumeMount("/models/other", host_path="/srv/other"),))
    repo.add()
    repo.add(base_model_path="/models/other/")  # configured by hand: that mount wins, no duplicate mount point
    await runner.tick()
    mine, configured = runtime.started
    assert [(v.mount_path, v.host_path, v.read_only) for v in mine.volumes] == [
        ("/models/other", "/srv/other", True), ("/data", "/data", False), ("/p", "/p", True), ("/m", "/m", True)]
    assert [v.mount_path for v in configured.volumes] == ["/models/other", "/data", "/p"]


async def test_a_training_image_that_carries_the_program_gets_no_mount_of_it() -> None:
    runtime = Runtime("docker")
    runner, repo, _, _ = make(runtime, image="training:1", storage_dir="/data", program_in_image=True)
    repo.add()
    await runner.tick()
    spec = runtime.started[0]
    assert spec.image == "training:1" and spec.command[1] == "/p/finetune.py"
    assert [v.mount_path for v in spec.volumes] == ["/data", "/m"]  # the base model, not the program's directory


async def test_progress_success_register_grant_deploy() -> None:
    runtime = Runtime()
    runner, repo, events, finisher = make(runtime)
    job = repo.add(channel_id=7, auto_deploy=True, suffix="sum")
    await runner.tick()
    runtime.lines = [json.dumps({"type": "step", "step": s, "total_steps": 4, "epoch": s / 2, "loss": 1.0 / s,
                                 "learning_rate": 0.001}) for s in (1, 2)]
    await runner.tick()
    assert repo.rows[job.id].progress == 0.5 and repo.rows[job.id].progress_loss == 0.5
    runtime.lines += ["noise", json.dumps({"type": "done"})]
    runtime.state = WorkloadState.SUCCEEDED
    await runner.tick()
    done = repo.rows[job.id]
    assert done.status == JobStatus.SUCCEEDED and done.fine_tuned_model and done.fine_tuned_model.endswith(":sum")
    assert done.fine_tuned_model.startswith("ft::tiny:acme-")
    assert [c[0] for c in finisher.calls] == ["register", "grant", "deploy"]
    assert [x.seq for x in repo.logs] == [1, 2, 3, 4]  # the cursor goes on where it was
    assert events.sent[-1] == ([], JobStatus.SUCCEEDED)


async def test_failure_reason_prefers_the_programs_error_line() -> None:
    runtime = Runtime()
    runner, repo, _, finisher = make(runtime)
    job = repo.add()
    await runner.tick()
    runtime.lines = [json.dumps({"type": "error", "message": "data line 3: invalid JSON"})]
    runtime.state = WorkloadState.FAILED
    await runner.tick()
    assert repo.rows[job.id].status == JobStatus.FAILED
    assert repo.rows[job.id].error_message == "data line 3: invalid JSON" and finisher.calls == []


async def test_cancelled_running_job_is_stopped() -> None:
    runtime = Runtime()
    runner, repo, _, _ = make(runtime)
    job = repo.add()
    await runner.tick()
    runtime.stopped.clear()  # (a start first clears any leftover of an earlier run)
    await repo.update(job.id, status=JobStatus.CANCELLED)
    await runner.tick()
    assert runtime.stopped == [f"aigc-ft-{job.id}"] and repo.rows[job.id].runtime_handle == ""


async def test_the_training_template_decides_the_command() -> None:
    from aigc_admin.domain.deployments.templates import FINETUNE

    class Templates:
        async def training_template(self) -> str:
            return json.dumps({**FINETUNE, "env": {"EXTRA": "1"}})

    runtime = Runtime()
    repo, events, finisher = Repo(), Events(), Finisher()
    runner = FineTuneRunner(repo=repo, runtime=runtime, events=events, finisher=finisher, owner="t",  # type: ignore[arg-type]
                            config=TrainingConfig(python="/py", program="/p/finetune.py"), tenant_code=code,
                            templates=Templates())
    repo.add(params=HyperParams(epochs=3, lora=True))
    await runner.tick()
    spec = runtime.started[0]
    assert spec.command[:2] == ["/py", "/p/finetune.py"] and spec.env == {"EXTRA": "1"}
    assert spec.command[spec.command.index("--epochs") + 1] == "3" and spec.command[-2:] == ["--lora", "--merge"]
