"""The local runtime against real child processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from aigc_admin.adapters.runtime.local import MAX_REPLICA_RESTARTS, LocalRuntime
from aigc_admin.domain.runtime import WorkloadKind, WorkloadSpec, WorkloadState

PY = sys.executable


async def eventually(check, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def group_members(pgid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


@pytest.fixture
def runtime(tmp_path: Path) -> LocalRuntime:
    return LocalRuntime(work_dir=tmp_path / "rt", owner="test", stop_timeout=5)


async def test_service_replicas_run_answer_log_and_stop(runtime: LocalRuntime, tmp_path: Path) -> None:
    spec = WorkloadSpec(name="web", replicas=2, env={"GREETING": "hello-env"},
                        command=[PY, "-u", "-c", "import os,sys,http.server as h; print(os.environ['GREETING'], "
                                 "os.environ['AIGC_REPLICA'], flush=True); "
                                 "h.test(HandlerClass=h.SimpleHTTPRequestHandler, port=int(sys.argv[1]), "
                                 "bind='127.0.0.1')", "{port}"])
    handle = await runtime.start(spec)
    status = await eventually(lambda: _running(runtime, handle))
    addresses = [r.address for r in status.replicas]
    assert len(set(addresses)) == 2

    async def answers() -> bool:
        try:
            async with httpx.AsyncClient() as c:
                return all([(await c.get(a)).status_code == 200 for a in addresses])
        except httpx.TransportError:
            return False
    await eventually(answers)

    chunk = await runtime.logs(handle, 0, replica=1)
    assert any("hello-env 1" in line for line in chunk.lines)
    again = await runtime.logs(handle, chunk.cursor, replica=1)
    assert not any("hello-env" in line for line in again.lines)  # the cursor does not repeat lines

    assert (await runtime.start(spec)).data == handle.data  # idempotent
    assert [h.name for h in await runtime.list_owned()] == ["web"]
    other = LocalRuntime(work_dir=runtime.work_dir, owner="test")  # another platform process sees the same
    assert (await other.status(handle)).state == WorkloadState.RUNNING

    pids = [int(p) for p in _pids(runtime, "web")]
    await runtime.stop(handle)
    assert (await runtime.status(handle)).state == WorkloadState.STOPPED
    assert not any(group_members(p) for p in pids), "processes left behind"
    assert await runtime.list_owned() == []
    await runtime.stop(handle)  # idempotent


async def _running(runtime: LocalRuntime, handle):  # type: ignore[no-untyped-def]
    s = await runtime.status(handle)
    return s if s.state == WorkloadState.RUNNING else None


def _pids(runtime: LocalRuntime, name: str) -> list[int]:
    import json

    state = json.loads((runtime.work_dir / name / "state.json").read_text())
    return [r["pid"] for r in state["replicas"]]


async def test_killed_process_turns_failed_with_reason(runtime: LocalRuntime) -> None:
    handle = await runtime.start(WorkloadSpec(
        name="victim", command=[PY, "-u", "-c", "import time; print('serving', flush=True); time.sleep(600)"]))
    await eventually(lambda: _running(runtime, handle))
    await eventually(lambda: _logged(runtime, handle, "serving"))
    shell = _pids(runtime, "victim")[0]
    child = next(p for p in group_members(shell) if p != shell)
    os.kill(child, signal.SIGKILL)  # kill -9 of the engine process, not of our wrapper

    async def failed():  # type: ignore[no-untyped-def]
        s = await runtime.status(handle)
        return s if s.state == WorkloadState.FAILED else None
    status = await eventually(failed, timeout=10)
    assert status.replicas[0].exit_code == 137
    assert "serving" in status.message
    await runtime.stop(handle)
    assert not group_members(shell)


async def test_a_replica_that_ended_is_started_again_on_its_port(runtime: LocalRuntime) -> None:
    """What Docker's restart policy and Kubernetes do by themselves: the dead replica (only it) starts again, on its
    own port, appending to its log; one that keeps dying is left failed after MAX_REPLICA_RESTARTS."""
    spec = WorkloadSpec(name="pair", replicas=2, env={"GREETING": "hi"},
                        command=[PY, "-u", "-c", "import os,sys,http.server as h; print(os.environ['GREETING'], "
                                 "flush=True); h.test(HandlerClass=h.SimpleHTTPRequestHandler, port=int(sys.argv[1]), "
                                 "bind='127.0.0.1')", "{port}"])
    handle = await runtime.start(spec)
    before = (await eventually(lambda: _running(runtime, handle))).replicas

    async def answers(address: str) -> bool:
        try:
            async with httpx.AsyncClient() as c:
                return (await c.get(address)).status_code == 200
        except httpx.TransportError:
            return False
    await eventually(lambda: answers(before[0].address))
    assert await runtime.restart_failed(handle, spec) == []  # nothing ended: nothing to do
    shells = _pids(runtime, "pair")
    for attempt in range(1, MAX_REPLICA_RESTARTS + 2):
        shell = _pids(runtime, "pair")[0]
        os.kill(next(p for p in group_members(shell) if p != shell), signal.SIGKILL)

        async def failed():  # type: ignore[no-untyped-def]
            s = await runtime.status(handle)
            return s if s.state == WorkloadState.FAILED else None
        await eventually(failed, timeout=10)
        restarted = await runtime.restart_failed(handle, spec)
        if attempt > MAX_REPLICA_RESTARTS:
            assert restarted == []  # it keeps dying: left failed, the deployment says so
            break
        assert restarted == [0]
        after = (await eventually(lambda: _running(runtime, handle))).replicas
        assert [r.address for r in after] == [r.address for r in before]  # the same ports
        assert await eventually(lambda: answers(before[0].address))
    assert _pids(runtime, "pair")[1] == shells[1]  # the other replica was never touched
    assert sum("hi" == line for line in (await runtime.logs(handle, 0, replica=0)).lines) == MAX_REPLICA_RESTARTS + 1
    await runtime.stop(handle)
    assert not any(group_members(p) for p in _pids(runtime, "pair"))


async def _logged(runtime: LocalRuntime, handle, text: str) -> bool:  # type: ignore[no-untyped-def]
    return any(text in line for line in (await runtime.logs(handle)).lines)


async def test_jobs_succeed_or_fail_with_exit_code(runtime: LocalRuntime) -> None:
    ok = await runtime.start(WorkloadSpec(name="ok", kind=WorkloadKind.JOB, command=[PY, "-c", "print('done')"]))
    bad = await runtime.start(WorkloadSpec(name="bad", kind=WorkloadKind.JOB,
                                           command=[PY, "-c", "print('boom: out of memory'); raise SystemExit(3)"]))

    async def finished(h):  # type: ignore[no-untyped-def]
        s = await runtime.status(h)
        return s if s.state in (WorkloadState.SUCCEEDED, WorkloadState.FAILED) else None
    assert (await eventually(lambda: finished(ok))).state == WorkloadState.SUCCEEDED
    failed = await eventually(lambda: finished(bad))
    assert failed.state == WorkloadState.FAILED
    assert failed.replicas[0].exit_code == 3 and "boom: out of memory" in failed.message


async def test_bad_requests_and_missing_workloads(runtime: LocalRuntime) -> None:
    from aigc_admin.domain.runtime import WorkloadHandle

    assert (await runtime.status(WorkloadHandle("local", "nope"))).state == WorkloadState.MISSING
    await runtime.stop(WorkloadHandle("local", "nope"))  # no error
    if not any(Path(p, "nvidia-smi").exists() for p in os.environ.get("PATH", "").split(":")):
        with pytest.raises(ValueError, match="GPU"):
            await runtime.start(WorkloadSpec(name="gpu", command=["true"], gpus_per_replica=1))
        assert not (runtime.work_dir / "gpu").exists()
    with pytest.raises(ValueError):
        await runtime.start(WorkloadSpec(name="../escape", command=["true"]))


async def test_each_replica_gets_gpus_of_its_own_and_the_next_workload_the_free_ones(tmp_path: Path) -> None:
    """CUDA_VISIBLE_DEVICES per replica, from the host's GPUs no other live workload holds. This machine has no
    GPU: the host's device list (nvidia-smi's, in production) is given to the runtime; the processes are real."""
    runtime = LocalRuntime(work_dir=tmp_path / "rt", owner="test", stop_timeout=5, gpus=lambda: ["0", "1", "2", "3"])
    show = [PY, "-c", "import os, time; print('gpus=' + os.environ['CUDA_VISIBLE_DEVICES'], flush=True); "
                      "time.sleep(60)"]

    async def seen(handle, replica: int) -> str:  # type: ignore[no-untyped-def]
        async def line() -> str | None:
            lines = (await runtime.logs(handle, replica=replica)).lines
            return next((x[5:] for x in lines if x.startswith("gpus=")), None)
        return str(await eventually(line))

    first = await runtime.start(WorkloadSpec(name="a", command=show, replicas=2, gpus_per_replica=1))
    assert [await seen(first, 0), await seen(first, 1)] == ["0", "1"]
    second = await runtime.start(WorkloadSpec(name="b", command=show, gpus_per_replica=2))
    assert await seen(second, 0) == "2,3"
    with pytest.raises(ValueError, match="0 of 4 free"):
        await runtime.start(WorkloadSpec(name="c", command=show, gpus_per_replica=1))
    await runtime.stop(first)  # its devices are free again
    third = await runtime.start(WorkloadSpec(name="c", command=show, replicas=2, gpus_per_replica=1))
    assert [await seen(third, 0), await seen(third, 1)] == ["0", "1"]
    for handle in (second, third):
        await runtime.stop(handle)
