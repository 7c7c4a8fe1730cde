"""The Docker runtime against a real, private Docker Engine (Debian's docker.io, started by the test)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker.client import DockerClient

from aigc_admin.adapters.runtime.docker import DockerRuntime, WorkloadRejected, parse_size
from aigc_admin.domain.runtime import (
    OWNER_LABEL,
    WORKLOAD_LABEL,
    RuntimeUnavailable,
    VolumeMount,
    WorkloadHandle,
    WorkloadKind,
    WorkloadSpec,
    WorkloadState,
)
from tests.support.dockerd import build_test_image, start_dockerd

IMAGE = "aigc-test/busybox:latest"


@dataclass
class Engine:
    base_url: str
    client: DockerClient


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    daemon = start_dockerd(tmp_path_factory.mktemp("dockerd"))
    client = DockerClient(base_url=daemon.base_url, timeout=60)
    try:
        build_test_image(client, IMAGE)
        yield Engine(daemon.base_url, client)
    finally:
        for c in client.containers.list(all=True):
            c.remove(force=True)
        client.close()
        daemon.stop()


@pytest.fixture
def runtime(engine: Engine) -> Iterator[DockerRuntime]:
    rt = DockerRuntime(base_url=engine.base_url, owner=f"test-{uuid.uuid4().hex[:6]}", stop_timeout=2)
    yield rt
    rt.close()


def containers_of(engine: Engine, name: str) -> list[Any]:
    return list(engine.client.containers.list(all=True, filters={"label": f"{WORKLOAD_LABEL}={name}"}))


async def eventually(check, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


async def test_service_replicas_run_answer_log_and_stop(engine: Engine, runtime: DockerRuntime,
                                                        tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the host\n")
    spec = WorkloadSpec(
        name="web", image=IMAGE, replicas=2, env={"GREETING": "hello-env"}, labels={"team": "a"},
        volumes=[VolumeMount(mount_path="/www", host_path=str(www), read_only=True)], working_dir="/www",
        command=["sh", "-c", "echo listening on {host}:{port} as $AIGC_REPLICA $GREETING; "
                 "httpd -f -p 127.0.0.1:{port} -h /www & i=0; "
                 "while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"])
    handle = await runtime.start(spec)
    try:
        ports = handle.data["ports"]
        assert len(set(ports)) == 2

        async def running():  # type: ignore[no-untyped-def]
            st = await runtime.status(handle)
            return st if st.state == WorkloadState.RUNNING else None

        status = await eventually(running)
        assert [r.address for r in status.replicas] == [f"http://127.0.0.1:{p}" for p in ports]

        # Host network: each replica answers on its own port from the host.
        async with httpx.AsyncClient() as http:
            for r in status.replicas:
                resp = await eventually(lambda r=r: _get(http, f"{r.address}/index.html"))
                assert resp.text == "hello from the host\n"

        # What the Engine was asked for.
        for i, c in enumerate(sorted(containers_of(engine, "web"), key=lambda c: c.name)):
            assert c.name == f"web-{i}"
            assert c.labels[OWNER_LABEL] == runtime.owner and c.labels["team"] == "a"
            assert c.labels["aigc-admin/replica"] == str(i)
            assert "GREETING=hello-env" in c.attrs["Config"]["Env"]
            assert c.attrs["HostConfig"]["NetworkMode"] == "host"
            assert c.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
            assert c.attrs["Config"]["WorkingDir"] == "/www"
            assert c.attrs["HostConfig"].get("DeviceRequests") in (None, [])
            assert c.exec_run(["cat", "/www/index.html"]).output == b"hello from the host\n"
            assert c.exec_run(["touch", "/www/new-file"]).exit_code != 0  # read-only bind
        assert not (www / "new-file").exists()

        # Logs: the echoed line, then a cursor that continues without repeating.
        first = await eventually(lambda: _logs_with(runtime, handle, 0, "tick 1"))
        assert first.lines[0] == f"listening on 127.0.0.1:{ports[0]} as 0 hello-env"
        await asyncio.sleep(0.6)
        second = await runtime.logs(handle, since=first.cursor)
        assert second.lines and second.cursor == first.cursor + len(second.lines)
        assert second.lines[0] == f"tick {int(first.lines[-1].split()[1]) + 1}"
        other = await runtime.logs(handle, replica=1)
        assert other.lines[0] == f"listening on 127.0.0.1:{ports[1]} as 1 hello-env"

        # Idempotent start; list_owned finds it.
        ids = sorted(c.id for c in containers_of(engine, "web"))
        again = await runtime.start(spec)
        assert again == handle
        assert sorted(c.id for c in containers_of(engine, "web")) == ids
        owned = await runtime.list_owned()
        assert [h.name for h in owned] == ["web"] and owned[0].data["ports"] == ports

        # A replica removed behind our back: FAILED (missing); start repairs it.
        engine.client.containers.get("web-1").remove(force=True)
        broken = await runtime.status(handle)
        assert broken.state == WorkloadState.FAILED and broken.replicas[1].state == WorkloadState.MISSING
        await runtime.start(spec)
        await eventually(running)
    finally:
        await runtime.stop(handle)
    assert containers_of(engine, "web") == []
    assert (await runtime.status(handle)).state == WorkloadState.MISSING
    await runtime.stop(handle)  # idempotent
    assert await runtime.list_owned() == []


async def _get(http: httpx.AsyncClient, url: str) -> httpx.Response | None:
    try:
        resp = await http.get(url, timeout=2)
    except httpx.TransportError:
        return None
    return resp if resp.status_code == 200 else None


async def _logs_with(runtime: DockerRuntime, handle: WorkloadHandle, replica: int, text: str) -> Any:
    chunk = await runtime.logs(handle, replica=replica)
    return chunk if text in chunk.lines else None


async def test_jobs_succeed_or_fail_with_exit_code_and_last_log_line(engine: Engine, runtime: DockerRuntime) -> None:
    ok = await runtime.start(WorkloadSpec(name="job-ok", image=IMAGE, kind=WorkloadKind.JOB,
                                          command=["sh", "-c", "echo done"]))
    bad = await runtime.start(WorkloadSpec(name="job-bad", image=IMAGE, kind=WorkloadKind.JOB,
                                           command=["sh", "-c", "echo working; echo boom: out of cheese; exit 3"]))
    try:
        async def finished(h: WorkloadHandle):  # type: ignore[no-untyped-def]
            st = await runtime.status(h)
            return st if st.state not in (WorkloadState.PENDING, WorkloadState.RUNNING) else None

        assert (await eventually(lambda: finished(ok))).state == WorkloadState.SUCCEEDED
        failed = await eventually(lambda: finished(bad))
        assert failed.state == WorkloadState.FAILED
        assert failed.replicas[0].exit_code == 3
        assert "boom: out of cheese" in failed.replicas[0].message and "boom: out of cheese" in failed.message
        assert engine.client.containers.get("job-bad-0").attrs["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
        assert (await runtime.logs(ok)).lines == ["done"]
    finally:
        await runtime.stop(ok)
        await runtime.stop(bad)
    assert containers_of(engine, "job-ok") == containers_of(engine, "job-bad") == []


async def test_a_service_that_exits_without_restart_policy_fails(engine: Engine) -> None:
    rt = DockerRuntime(base_url=engine.base_url, owner="test-exit", restart_policy="no", stop_timeout=2)
    handle = await rt.start(WorkloadSpec(name="svc-exit", image=IMAGE, command=["sh", "-c", "echo bye; exit 0"]))
    try:
        async def failed():  # type: ignore[no-untyped-def]
            st = await rt.status(handle)
            return st if st.state == WorkloadState.FAILED else None

        status = await eventually(failed)
        assert status.replicas[0].exit_code == 0 and "bye" in status.message
    finally:
        await rt.stop(handle)
        rt.close()


async def test_a_service_stopped_by_hand_reads_stopped(engine: Engine, runtime: DockerRuntime) -> None:
    handle = await runtime.start(WorkloadSpec(name="svc-manual", image=IMAGE, command=["sleep", "600"]))
    try:
        await asyncio.to_thread(engine.client.containers.get("svc-manual-0").stop, timeout=2)
        assert (await runtime.status(handle)).state == WorkloadState.STOPPED
    finally:
        await runtime.stop(handle)


async def test_gpu_spec_on_a_gpu_less_engine_is_rejected_and_leaves_nothing(engine: Engine,
                                                                             runtime: DockerRuntime) -> None:
    spec = WorkloadSpec(name="gpu", image=IMAGE, gpus_per_replica=2, replicas=2, command=["sleep", "60"])
    with pytest.raises(WorkloadRejected, match="GPU"):
        await runtime.start(spec)
    assert containers_of(engine, "gpu") == []


async def test_missing_image_is_rejected_without_pulling(engine: Engine, runtime: DockerRuntime) -> None:
    with pytest.raises(WorkloadRejected, match="never pulled"):
        await runtime.start(WorkloadSpec(name="noimg", image="example.invalid/nope:1", command=["true"]))
    assert containers_of(engine, "noimg") == []


async def test_a_name_taken_by_a_foreign_container_is_rejected(engine: Engine, runtime: DockerRuntime) -> None:
    foreign = engine.client.containers.create(IMAGE, ["true"], name="taken-0", network_mode="none")
    try:
        with pytest.raises(WorkloadRejected, match="taken"):
            await runtime.start(WorkloadSpec(name="taken", image=IMAGE, replicas=2, command=["sleep", "60"]))
        assert [c.name for c in containers_of(engine, "taken")] == []
    finally:
        foreign.remove(force=True)


async def test_unreachable_engine_raises_runtime_unavailable(tmp_path: Path) -> None:
    rt = DockerRuntime(base_url=f"unix://{tmp_path}/nope.sock", owner="x")
    handle = WorkloadHandle("docker", "anything")
    with pytest.raises(RuntimeUnavailable, match="unreachable"):
        await rt.start(WorkloadSpec(name="a", image=IMAGE, command=["true"]))
    with pytest.raises(RuntimeUnavailable):
        await rt.status(handle)
    with pytest.raises(RuntimeUnavailable):
        await rt.list_owned()


# --- container_kwargs: what would be sent, without an Engine ------------------------------------

def test_container_kwargs_gpus_volumes_and_placeholders() -> None:
    rt = DockerRuntime(base_url=None, owner="me", shm_size="16Gi", workspace="/srv/ws")
    spec = WorkloadSpec(name="w", image="img", command=["serve", "--host", "{host}", "--port={port}"], replicas=2,
                        gpus_per_replica=2, labels={OWNER_LABEL: "intruder"},
                        volumes=[VolumeMount("/models", host_path="models"),
                                 VolumeMount("/out", host_path="/data/out", read_only=False)])
    kw = rt.container_kwargs(spec, 1, 4321)
    assert kw["name"] == "w-1" and kw["command"] == ["serve", "--host", "127.0.0.1", "--port=4321"]
    assert kw["labels"][OWNER_LABEL] == "me" and kw["labels"]["aigc-admin/port"] == "4321"
    assert kw["environment"]["AIGC_REPLICA"] == "1"
    [request] = kw["device_requests"]
    assert request["Count"] == 2 and request["Capabilities"] == [["gpu"]] and request["DeviceIDs"] == []
    assert kw["volumes"] == {"/srv/ws/models": {"bind": "/models", "mode": "ro"},
                             "/data/out": {"bind": "/out", "mode": "rw"}}
    assert kw["shm_size"] == 16 * 1024**3 and kw["restart_policy"] == {"Name": "unless-stopped"}
    assert kw["network_mode"] == "host" and "working_dir" not in kw

    pinned = WorkloadSpec(name="w", image="img", command=["x"], replicas=2, gpus_per_replica=1,
                          gpu_device_ids=["0", "3"])
    assert rt.container_kwargs(pinned, 1, 1)["device_requests"][0]["DeviceIDs"] == ["3"]
    shared = WorkloadSpec(name="w", image="img", command=["x"], gpu_device_ids=["GPU-abc", "GPU-def"])
    request = rt.container_kwargs(shared, 0, 1)["device_requests"][0]
    assert request["DeviceIDs"] == ["GPU-abc", "GPU-def"] and request["Count"] == 0

    job = WorkloadSpec(name="j", image="img", command=["x"], kind=WorkloadKind.JOB)
    kw = rt.container_kwargs(job, 0, 1)
    assert "device_requests" not in kw and "restart_policy" not in kw
    with pytest.raises(WorkloadRejected, match="host_path"):
        rt.container_kwargs(WorkloadSpec(name="k", image="img", command=["x"],
                                         volumes=[VolumeMount("/m", claim_name="pvc")]), 0, 1)


def test_parse_size() -> None:
    assert parse_size("16Gi") == parse_size("16g") == parse_size("16GB") == 16 * 1024**3
    assert parse_size("512M") == 512 * 1024**2 and parse_size("1024") == 1024
    with pytest.raises(ValueError, match="invalid size"):
        parse_size("lots")


def test_gpus_asked_by_count_are_pinned_per_replica_around_the_running_ones(runtime: DockerRuntime,
                                                                            engine: Engine) -> None:
    """Docker's ``count`` would give every container the first N GPUs: each replica gets devices of its own,
    none a running workload of this platform holds (by their label). The test Engine has no GPU runtime, so the
    host's list is given and nothing with a device request is started."""
    from aigc_admin.adapters.runtime.docker import GPUS_LABEL

    runtime.gpus = lambda: ["0", "1", "2", "3"]
    holder = engine.client.containers.run(IMAGE, ["sleep", "60"], detach=True, labels={
        OWNER_LABEL: runtime.owner, "aigc-admin/workload": "other", GPUS_LABEL: "0,2"})
    try:
        spec = runtime._pinned(WorkloadSpec(name="w", image=IMAGE, command=["x"], replicas=2, gpus_per_replica=1))
        assert spec.gpu_device_ids == ["1", "3"]
        second = runtime.container_kwargs(spec, 1, 1)
        assert second["device_requests"][0]["DeviceIDs"] == ["3"] and second["labels"][GPUS_LABEL] == "3"
        with pytest.raises(WorkloadRejected, match="2 of 4 free"):
            runtime._pinned(WorkloadSpec(name="w", image=IMAGE, command=["x"], replicas=3, gpus_per_replica=1))
    finally:
        holder.remove(force=True)
