"""Local runtime: each replica is a child process in its own process group, logging to a file.

State lives on disk (``<work_dir>/<name>/state.json``) so that any process of the platform (API,
worker, reconciler) can find, inspect and stop a workload another process started. Each replica
runs under ``sh`` that records the command's exit status in a file, so the status survives the
death of whoever started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aigc_admin.adapters.net import free_port as _free_port
from aigc_admin.adapters.net import port_free
from aigc_admin.adapters.runtime.gpus import nvidia_gpus
from aigc_admin.domain.runtime import (
    LogChunk,
    ReplicaStatus,
    WorkloadHandle,
    WorkloadKind,
    WorkloadSpec,
    WorkloadState,
    WorkloadStatus,
    assign_gpus,
)

MAX_REPLICA_RESTARTS = 5  # a replica that keeps dying is left failed (its deployment DEGRADED, saying why)

# "$0" is the exit-status file; "$@" the command. The shell stays the group leader.
_WRAPPER = 'trap "kill -TERM $child 2>/dev/null" TERM INT; "$@" & child=$!; wait $child; echo $? > "$0"'


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against pid reuse); None when gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # reap our own zombie
        return None
    return fields[19]


def _group_alive(pgid: int) -> bool:
    """Whether a process of this group still runs (zombies, already dead, do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


class LocalRuntime:
    type = "local"

    def __init__(self, *, work_dir: Path, owner: str, stop_timeout: float = 10.0,
                 base_env: dict[str, str] | None = None, gpus: Callable[[], list[str]] = nvidia_gpus) -> None:
        self.gpus = gpus  # the host's GPU devices
        self.work_dir = Path(work_dir)
        self.owner = owner
        self.stop_timeout = stop_timeout
        self.base_env = dict(os.environ if base_env is None else base_env)

    @classmethod
    def from_settings(cls, s: Any) -> LocalRuntime:
        return cls(work_dir=Path(s.storage_dir) / "runtime" / "local", owner=s.redis_prefix)

    # --- helpers ---------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"invalid workload name {name!r}")
        return self.work_dir / name

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self._dir(name) / "state.json").read_text()))
        except (OSError, ValueError):
            return None

    def _write(self, name: str, state: dict[str, Any]) -> None:
        path = self._dir(name) / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)

    def _handle(self, state: dict[str, Any]) -> WorkloadHandle:
        return WorkloadHandle(self.type, state["name"], {"dir": str(self._dir(state["name"])),
                                                         "ports": [r["port"] for r in state["replicas"]]})

    # --- the port --------------------------------------------------------------------------
    async def start(self, spec: WorkloadSpec) -> WorkloadHandle:
        existing = self._read(spec.name)
        if existing and not existing.get("stopped"):
            return self._handle(existing)  # idempotent: already started
        if spec.nodes > 1:
            raise ValueError("a replica over several machines (nodes > 1) needs the kubernetes runtime")
        pinned = self._pin(spec)
        directory = self._dir(spec.name)
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        replicas = [self._launch(spec, directory, i, _free_port(), pinned[i] if pinned else [])
                    for i in range(spec.replicas)]
        state = {"name": spec.name, "owner": self.owner, "kind": spec.kind.value, "labels": spec.labels,
                 "replicas": replicas, "stopped": False, "started_at": time.time(),
                 "spec": {k: v for k, v in asdict(spec).items() if k != "env"}}  # env may hold secrets
        self._write(spec.name, state)
        return self._handle(state)

    def _launch(self, spec: WorkloadSpec, directory: Path, i: int, port: int, gpus: list[str]) -> dict[str, Any]:
        """Start replica ``i`` on ``port``; its log is appended to (a restarted replica keeps its earlier lines)."""
        argv = [a.replace("{host}", "127.0.0.1").replace("{port}", str(port)) for a in spec.command]
        env = {**self.base_env, **spec.env, "AIGC_REPLICA": str(i)}
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        log_path = directory / f"replica-{i}.log"
        exit_path = directory / f"replica-{i}.exit"
        exit_path.unlink(missing_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", _WRAPPER, str(exit_path), *argv], stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, env=env, cwd=spec.working_dir or directory, start_new_session=True)
        return {"pid": proc.pid, "start": _start_time(proc.pid), "port": port, "log": str(log_path),
                "exit": str(exit_path), "gpus": gpus}

    async def restart_failed(self, handle: WorkloadHandle, spec: WorkloadSpec) -> list[int]:
        """Start again, on their own ports, the replicas of a running service whose process ended (what Docker's
        restart policy and Kubernetes do by themselves), ``MAX_REPLICA_RESTARTS`` times each at most."""
        state = self._read(handle.name)
        if state is None or state.get("stopped") or state["kind"] != WorkloadKind.SERVICE.value:
            return []
        restarted = []
        directory = self._dir(handle.name)
        for i, r in enumerate(state["replicas"]):
            alive = r["start"] is not None and _start_time(r["pid"]) == r["start"]
            if alive or r.get("restarts", 0) >= MAX_REPLICA_RESTARTS:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(r["pid"], signal.SIGKILL)  # what outlived its shell, holding the port
            port = r["port"] if port_free(r["port"]) else _free_port()
            state["replicas"][i] = {**self._launch(spec, directory, i, port, r.get("gpus", [])),
                                    "restarts": r.get("restarts", 0) + 1}
            restarted.append(i)
        if restarted:
            self._write(handle.name, state)
        return restarted

    def _pin(self, spec: WorkloadSpec) -> list[list[str]]:
        """The GPUs of each replica: the spec's own devices (one slice per replica when they add up), else free
        ones of this host, none held by another live workload of this runtime."""
        per = spec.gpus_per_replica
        ids = spec.gpu_device_ids
        if ids:
            if per and len(ids) == per * spec.replicas:
                return [ids[i * per:(i + 1) * per] for i in range(spec.replicas)]
            return [list(ids)] * spec.replicas  # shared on purpose
        if not per:
            return []
        devices = self.gpus()
        if not devices:
            raise ValueError(f"{per} GPU(s) per replica asked, but this host has no NVIDIA GPU")
        busy = {gpu for other in self._live_states() for r in other["replicas"] for gpu in r.get("gpus", [])}
        return assign_gpus(devices, busy, spec.replicas, per)

    def _live_states(self) -> list[dict[str, Any]]:
        if not self.work_dir.exists():
            return []
        states = (self._read(child.name) for child in sorted(self.work_dir.iterdir()))
        return [s for s in states if s and not s.get("stopped")]

    async def status(self, handle: WorkloadHandle) -> WorkloadStatus:
        state = self._read(handle.name)
        if state is None:
            return WorkloadStatus(WorkloadState.MISSING, message="no such workload")
        if state.get("stopped"):
            return WorkloadStatus(WorkloadState.STOPPED, [
                ReplicaStatus(i, WorkloadState.STOPPED) for i in range(len(state["replicas"]))])
        job = state["kind"] == WorkloadKind.JOB.value
        replicas = [self._replica(i, r, job) for i, r in enumerate(state["replicas"])]
        states = {r.state for r in replicas}
        if WorkloadState.FAILED in states:
            failed = next(r for r in replicas if r.state == WorkloadState.FAILED)
            return WorkloadStatus(WorkloadState.FAILED, replicas, f"replica {failed.index}: {failed.message}")
        if states == {WorkloadState.SUCCEEDED}:
            return WorkloadStatus(WorkloadState.SUCCEEDED, replicas)
        return WorkloadStatus(WorkloadState.RUNNING, replicas)

    def _replica(self, i: int, r: dict[str, Any], job: bool) -> ReplicaStatus:
        address = f"http://127.0.0.1:{r['port']}"
        alive = r["start"] is not None and _start_time(r["pid"]) == r["start"]
        if alive:
            return ReplicaStatus(i, WorkloadState.RUNNING, address)
        try:
            code: int | None = int(Path(r["exit"]).read_text().strip())
        except (OSError, ValueError):
            code = None  # killed together with its shell: no status was written
        if code == 0 and job:
            return ReplicaStatus(i, WorkloadState.SUCCEEDED, address, 0)
        tail = " | ".join(self._tail(Path(r["log"]), 5))
        why = "exited" if code is not None else "vanished (killed?)"
        return ReplicaStatus(i, WorkloadState.FAILED, address, code,
                             f"process {why} with status {code}; last log lines: {tail}")

    @staticmethod
    def _tail(path: Path, n: int) -> list[str]:
        try:
            return path.read_text(errors="replace").splitlines()[-n:]
        except OSError:
            return []

    async def logs(self, handle: WorkloadHandle, since: int = 0, replica: int = 0) -> LogChunk:
        state = self._read(handle.name)
        if state is None or replica >= len(state["replicas"]):
            return LogChunk([], since)
        try:
            lines = Path(state["replicas"][replica]["log"]).read_text(errors="replace").splitlines()
        except OSError:
            return LogChunk([], since)
        return LogChunk(lines[since:], max(since, len(lines)))

    async def stop(self, handle: WorkloadHandle) -> None:
        state = self._read(handle.name)
        if state is None or state.get("stopped"):
            return
        live = [r for r in state["replicas"] if r["start"] is not None and _start_time(r["pid"]) == r["start"]]
        for r in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(r["pid"], signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while live and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            live = [r for r in live if _start_time(r["pid"]) == r["start"]]
        for r in state["replicas"]:
            # The whole group, even children that outlived their shell: a pid that still leads a
            # non-empty group cannot have been reused, so this only reaches our processes.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(r["pid"], signal.SIGKILL)
            _start_time(r["pid"])  # reap
        # SIGKILL is asynchronous: report STOPPED only once the processes are really gone (bounded)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and any(_group_alive(r["pid"]) for r in state["replicas"]):  # noqa: ASYNC110 - /proc has no event
            await asyncio.sleep(0.02)
        state["stopped"] = True
        self._write(handle.name, state)

    async def list_owned(self) -> list[WorkloadHandle]:
        return [self._handle(state) for state in self._live_states() if state.get("owner") == self.owner]
