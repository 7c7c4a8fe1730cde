"""Fine-tuning on the Docker runtime: the training scheduler (FineTuneRunner) runs the real training program in a
container of a private Docker Engine, follows it to the end and cancels it.

The image is the almost empty one of test_docker_fastchat_worker (nothing can be pulled): the engine venv, the
interpreter it links to, ``/usr`` and ``/etc`` come in as configured mounts, as ``engine.volumes`` would give them.
The runner adds the rest by itself: the storage path read-write (data file in, weights out) and, on docker, the
training program's directory and the base model read-only at their host paths. Jobs and their log lines live in
SQLite through the production repository; the built-in training template (TemplateRepo) renders the command.
A LoRA run of the tiny model on CPU takes a few seconds.

Needs dockerd (Debian's docker.io), the engine venv and the tiny model (`bash scripts/prepare-engine.sh`).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from docker.client import DockerClient

import aigc_admin
from aigc_admin.adapters.db import close_db, init_db, migrate
from aigc_admin.adapters.db.finetunes import FineTuneRepo
from aigc_admin.adapters.db.models import Tenant
from aigc_admin.adapters.db.templates import TemplateRepo
from aigc_admin.adapters.runtime.docker import DockerRuntime
from aigc_admin.domain.finetunes.service import (
    FineTuneJob,
    FineTuneRunner,
    FineTuneService,
    HyperParams,
    JobStatus,
    TrainingConfig,
)
from aigc_admin.domain.runtime import OWNER_LABEL, VolumeMount, WorkloadHandle, WorkloadState
from aigc_admin.settings import load_settings
from tests.integration.test_docker_fastchat_worker import IMAGE, TOP_LEVEL, build_empty_image
from tests.support.dockerd import Dockerd, start_dockerd
from tests.support.engine import engine_python, engine_venv, tiny_model_path
from tests.unit.test_finetune_runner import Events, Finisher, code

PROGRAM = Path(aigc_admin.__file__).parent / "engine" / "finetune.py"
SAMPLES = 20
FINISH_TIMEOUT_S = 120  # liveness bound: the tiny model trains 10 steps on CPU in a few seconds


@dataclass
class Engine:
    daemon: Dockerd
    client: DockerClient


@dataclass
class Storage:
    path: Path  # server.storage.path: the data file lies below it, the output is written below it
    tenant_id: int
    data: Path


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine_python()  # fail early (EngineMissing) with the way to prepare it
    tiny_model_path()
    daemon = start_dockerd(tmp_path_factory.mktemp("dockerd"))
    client = DockerClient(base_url=daemon.base_url, timeout=60)
    try:
        build_empty_image(client)
        yield Engine(daemon, client)
    finally:
        for c in client.containers.list(all=True):
            c.remove(force=True)
        client.close()
        daemon.stop()


@pytest.fixture(scope="module")
async def storage(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Storage]:
    path = tmp_path_factory.mktemp("storage")
    settings = load_settings({"server.storage.path": str(path)}, environ={})
    await migrate(settings)
    await init_db(settings)
    try:
        tenant = await Tenant.create(name="Acme", code="acme", public_tenant_id=f"t-{uuid.uuid4().hex[:8]}")
        data = path / "files" / str(tenant.id) / "file-train.jsonl"
        data.parent.mkdir(parents=True)
        data.write_text("".join(json.dumps(chat_sample(i)) + "\n" for i in range(SAMPLES)))
        yield Storage(path, tenant.id, data)
    finally:
        await close_db()


def chat_sample(i: int) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": "You are a calculator."},
                         {"role": "user", "content": f"What is {i} plus {i}?"},
                         {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]}


def engine_mounts(tmp: Path) -> list[VolumeMount]:
    """The engine environment the image lacks (engine.volumes), read-only at the host paths, and a writable /tmp.
    Neither the program nor the base model nor the storage path: the runner mounts those."""
    interpreter = engine_python().resolve()
    paths = [engine_venv(), interpreter.parent.parent, Path("/usr"), Path("/etc")]
    paths += [Path(top) for top in TOP_LEVEL if Path(top).is_dir() and not Path(top).is_symlink()]
    container_tmp = tmp / "container-tmp"
    container_tmp.mkdir(exist_ok=True)
    return [*(VolumeMount(mount_path=str(p), host_path=str(p.resolve()), read_only=True) for p in paths),
            VolumeMount(mount_path="/tmp", host_path=str(container_tmp), read_only=False)]


class Lookup:
    """What job creation asks of models and files: the tiny model and the uploaded file."""

    def __init__(self, data: Path) -> None:
        self.data = data

    async def base_model(self, model_id: int, tenant_id: int) -> tuple[str, str]:
        return "tiny", str(tiny_model_path())

    async def training_file(self, file_id: str, tenant_id: int) -> str:
        return str(self.data)

    async def channel_of_tenant(self, channel_id: int, tenant_id: int) -> bool:
        return True


class Template:
    """A training template (admin-defined) other than the built-in one."""

    def __init__(self, content: dict[str, Any]) -> None:
        self.content = json.dumps(content)

    async def training_template(self) -> str:
        return self.content


@dataclass
class Setup:
    runner: FineTuneRunner
    runtime: DockerRuntime
    repo: FineTuneRepo
    service: FineTuneService
    events: Events
    finisher: Finisher


@pytest.fixture
def setup(engine: Engine, storage: Storage, tmp_path: Path) -> Iterator[Callable[..., Setup]]:
    made: list[DockerRuntime] = []

    def make(*, templates: Any = None, data: Path | None = None) -> Setup:
        owner = f"test-{uuid.uuid4().hex[:6]}"
        runtime = DockerRuntime(base_url=engine.daemon.base_url, owner=owner, stop_timeout=5)
        made.append(runtime)
        repo, events, finisher = FineTuneRepo(), Events(), Finisher()
        config = TrainingConfig(python=str(engine_python()), program=str(PROGRAM), image=IMAGE,
                                volumes=tuple(engine_mounts(tmp_path)), storage_dir=str(storage.path))
        runner = FineTuneRunner(repo=repo, runtime=runtime, events=events, finisher=finisher,  # type: ignore[arg-type]
                                config=config, owner=owner, tenant_code=code, templates=templates or TemplateRepo())
        service = FineTuneService(repo=repo, lookup=Lookup(data or storage.data), storage_dir=str(storage.path),
                                  events=events)  # type: ignore[arg-type]
        return Setup(runner, runtime, repo, service, events, finisher)

    yield make
    for runtime in made:
        runtime.close()


def params(**overrides: Any) -> HyperParams:
    values: dict[str, Any] = {"epochs": 2, "train_batch_size": 4, "accumulation_steps": 1, "learning_rate": 1e-3,
                              "warmup_ratio": 0.0, "model_max_length": 128, "logging_steps": 1, "save_steps": 0,
                              "lora": True}
    return HyperParams(**{**values, **overrides})


async def tick_until(s: Setup, job: FineTuneJob, done: Callable[[FineTuneJob], bool], *,
                     engine: Engine) -> tuple[FineTuneJob, list[JobStatus]]:
    """Scheduler rounds (0.3 s apart, not 2 s) until ``done``; returns the job and the statuses it went through."""
    seen = [job.status]
    deadline = time.monotonic() + FINISH_TIMEOUT_S
    while True:
        await s.runner.tick()
        current = await s.repo.get(job.id)
        assert current is not None
        if current.status != seen[-1]:
            seen.append(current.status)
        if done(current):
            return current, seen
        if time.monotonic() > deadline:
            lines = [x.line for x in await s.repo.logs(job.id, after=0, limit=10_000)]
            raise AssertionError(f"job still {current.status} ({current.error_message}); statuses {seen}\n"
                                 + "\n".join(lines[-40:]) + "\n--- dockerd log\n" + engine.daemon.log_tail())
        await asyncio.sleep(0.3)


def json_records(lines: list[str]) -> list[dict[str, Any]]:
    """The program's JSON lines (stdout); the Engine's log interleaves the libraries' stderr lines."""
    return [json.loads(line) for line in lines if line.startswith("{")]


def container_of(engine: Engine, job: FineTuneJob) -> Any:
    return engine.client.containers.get(f"aigc-ft-{job.id}-0")


def owned(engine: Engine, runtime: DockerRuntime) -> list[Any]:
    return list(engine.client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={runtime.owner}"}))


async def test_a_job_trains_for_real_in_a_container_to_success(engine: Engine, storage: Storage,
                                                               setup: Callable[..., Setup]) -> None:
    s = setup()
    job = await s.service.create(tenant_id=storage.tenant_id, base_model_id=1, file_id="file-train", params=params(),
                                 suffix="sum", operator="tester")
    assert job.status == JobStatus.WAITING and job.output_dir == f"{storage.path}/finetunes/{job.job_id}/output"
    started = time.monotonic()
    await s.runner.tick()
    job = await s.repo.get(job.id)  # type: ignore[assignment]
    assert job.status == JobStatus.RUNNING and job.start_train_time is not None
    handle = WorkloadHandle.from_json(job.runtime_handle)
    try:
        # What the Engine was asked to run: a job container (never restarted) with the training command.
        container = container_of(engine, job)
        attrs = container.attrs
        assert container.labels[OWNER_LABEL] == s.runtime.owner
        assert container.labels["aigc-admin/kind"] == "job" and container.labels["aigc-admin/finetune"] == job.job_id
        assert attrs["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
        command = attrs["Config"]["Cmd"]
        assert command[:2] == [str(engine_python()), str(PROGRAM)]
        assert command[command.index("--base-model-path") + 1] == str(tiny_model_path())
        assert command[command.index("--data-path") + 1] == str(storage.data)
        assert command[command.index("--output-dir") + 1] == job.output_dir and command[-2:] == ["--lora", "--merge"]
        assert "HF_HUB_OFFLINE=1" in attrs["Config"]["Env"]  # the built-in template's environment
        mounts = {m["Destination"]: (m["Source"], m["RW"]) for m in attrs["Mounts"]}
        assert mounts[str(storage.path)] == (str(storage.path), True)  # added by the runner
        assert mounts[str(PROGRAM.parent)] == (str(PROGRAM.parent), False)  # added by the runner on docker
        assert mounts[str(tiny_model_path())] == (str(tiny_model_path()), False)  # likewise
        assert sorted(d for d, (_, rw) in mounts.items() if rw) == sorted([str(storage.path), "/tmp"])  # any order

        job, seen = await tick_until(s, job, lambda j: j.status not in (JobStatus.WAITING, JobStatus.RUNNING),
                                     engine=engine)
        print(f"\n[docker-training] WAITING -> SUCCEEDED in {time.monotonic() - started:.1f} s")
        assert [JobStatus.WAITING, *seen] == [JobStatus.WAITING, JobStatus.RUNNING, JobStatus.SUCCEEDED], \
            job.error_message
        assert job.error_message == "" and job.finished_at is not None and job.progress == 1.0
        assert job.fine_tuned_model is not None and job.fine_tuned_model.startswith("ft::tiny:acme-")
        assert job.fine_tuned_model.endswith(":sum") and s.finisher.calls == [("register", job.fine_tuned_model)]
        assert (await s.runtime.status(handle)).state == WorkloadState.SUCCEEDED
        container.reload()
        assert container.status == "exited" and container.attrs["State"]["ExitCode"] == 0

        # Every line of the container's log persisted once, in order, with the cursor after the last one.
        stored = await s.repo.logs(job.id, after=0, limit=10_000)
        assert [x.seq for x in stored] == list(range(1, len(stored) + 1)) and job.log_cursor == len(stored)
        assert [x.line for x in stored] == container.logs(stdout=True, stderr=True).decode().splitlines()
        records = json_records([x.line for x in stored])
        steps = [r for r in records if r["type"] == "step"]
        total = 2 * SAMPLES // 4
        assert records[0]["type"] == "data" and records[0]["samples"] == SAMPLES  # what it read, then the start
        assert records[1]["type"] == "start" and records[1]["mode"] == "lora" and records[1]["device"] == "cpu"
        assert [r["step"] for r in steps] == list(range(1, total + 1))
        assert all(r["total_steps"] == total for r in steps)
        assert job.progress_loss == steps[-1]["loss"] and job.progress_epochs == steps[-1]["epoch"] == 2.0
        done = records[-1]
        assert done["type"] == "done" and done["saved"] == "merged" and done["output_dir"] == job.output_dir
        assert (await s.service.metrics(job.id, tenant_id=storage.tenant_id))[-1]["step"] == total
        assert s.events.sent[-1] == ([], JobStatus.SUCCEEDED)

        # The weights were written through the storage mount: a servable model.
        names = {p.name for p in Path(job.output_dir).iterdir()}
        assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
        assert "adapter_config.json" not in names  # merged into the base weights
    finally:
        await s.runtime.stop(handle)
    assert owned(engine, s.runtime) == []


async def test_failures_end_failed_with_the_reason_and_keep_the_logs(engine: Engine, storage: Storage,
                                                                     setup: Callable[..., Setup]) -> None:
    finished = lambda j: j.status not in (JobStatus.WAITING, JobStatus.RUNNING)  # noqa: E731
    # The program itself refuses the data: its error line is the reason.
    bad = storage.path / "files" / str(storage.tenant_id) / "file-bad.jsonl"
    bad.write_text(json.dumps(chat_sample(0)) + "\n" + '{"messages": [{"role": "user", "content": "unterminated\n')
    s = setup(data=bad)
    job = await s.service.create(tenant_id=storage.tenant_id, base_model_id=1, file_id="file-bad", params=params())
    job, seen = await tick_until(s, job, finished, engine=engine)
    assert seen == [JobStatus.WAITING, JobStatus.RUNNING, JobStatus.FAILED]
    assert job.status == JobStatus.FAILED and job.fine_tuned_model is None and s.finisher.calls == []
    assert "line 2" in job.error_message and "invalid JSON" in job.error_message, job.error_message
    stored = [x.line for x in await s.repo.logs(job.id, after=0, limit=10_000)]
    assert [r["type"] for r in json_records(stored)] == ["error"]
    container = container_of(engine, job)  # kept: its log stays readable on the Engine
    assert container.status == "exited" and container.attrs["State"]["ExitCode"] == 1
    await s.runtime.stop(WorkloadHandle.from_json(job.runtime_handle))

    # A crash without an error line (an admin's template here): the exit status and the log tail are the reason.
    crash = Template({"image": "${image}", "env": {"PYTHONUNBUFFERED": "1"}, "command": [
        "${python}", "-c", "import sys; print('loading ${base_model_path}'); "
        "print('boom: CUDA out of memory', file=sys.stderr); sys.exit(3)"]})
    s = setup(templates=crash)
    job = await s.service.create(tenant_id=storage.tenant_id, base_model_id=1, file_id="file-train", params=params())
    job, seen = await tick_until(s, job, finished, engine=engine)
    assert seen == [JobStatus.WAITING, JobStatus.RUNNING, JobStatus.FAILED]
    assert "exited with status 3" in job.error_message and "boom: CUDA out of memory" in job.error_message
    stored = [x.line for x in await s.repo.logs(job.id, after=0, limit=10_000)]
    assert sorted(stored) == sorted([f"loading {tiny_model_path()}", "boom: CUDA out of memory"])  # 2 streams
    assert s.events.sent[-1] == ([], JobStatus.FAILED)
    assert (await s.runtime.status(WorkloadHandle.from_json(job.runtime_handle))).replicas[0].exit_code == 3
    await s.runtime.stop(WorkloadHandle.from_json(job.runtime_handle))
    assert owned(engine, s.runtime) == []


async def test_cancel_removes_the_running_training_container(engine: Engine, storage: Storage,
                                                             setup: Callable[..., Setup]) -> None:
    s = setup()
    job = await s.service.create(tenant_id=storage.tenant_id, base_model_id=1, file_id="file-train",
                                 params=params(epochs=100))  # 500 steps: still training when cancelled
    job, _ = await tick_until(s, job, lambda j: j.status == JobStatus.RUNNING and j.progress > 0, engine=engine)
    handle = WorkloadHandle.from_json(job.runtime_handle)
    try:
        assert container_of(engine, job).status == "running"
        assert (await s.runtime.status(handle)).state == WorkloadState.RUNNING
        cancelled = await s.service.cancel(job.id, tenant_id=storage.tenant_id)
        assert cancelled.status == JobStatus.CANCELLED

        stopping = time.monotonic()
        await s.runner.tick()  # the runner owns the workload: it stops it on its next round
        print(f"\n[docker-training] cancelled container stopped and removed in {time.monotonic() - stopping:.1f} s")
        assert owned(engine, s.runtime) == []
        assert (await s.runtime.status(handle)).state == WorkloadState.MISSING
        job = await s.repo.get(job.id)  # type: ignore[assignment]
        assert job.status == JobStatus.CANCELLED and job.runtime_handle == ""
        stored = json_records([x.line for x in await s.repo.logs(job.id, after=0, limit=10_000)])
        assert any(r["type"] == "step" for r in stored)  # what it logged before the cancel is kept
        await s.runner.tick()  # nothing left to stop: no error, still cancelled
        assert (await s.repo.get(job.id)).status == JobStatus.CANCELLED  # type: ignore[union-attr]
    finally:
        await s.runtime.stop(handle)
