"""A real FastChat model_worker started by the Docker runtime, registering with a controller on the host.

The image is (almost) empty: ``FROM scratch`` with ``/tmp``, ``/sbin`` and the host's top-level symlinks (``lib ->
usr/lib`` on a merged-/usr host); nothing is pulled. The engine venv, the interpreter it links to, ``/usr``
(plus ``/lib``, ``/lib64``, … where they are real directories), ``/etc`` and the tiny model are bind-mounted
read-only at their host paths; ``/tmp`` is a writable host directory. The container uses the host network, so
the worker reaches the controller at 127.0.0.1 and the controller reaches the worker at the address the
runtime allocated. The command is the built-in MODEL_WORKER template, rendered as a deployment would.

Needs dockerd (Debian's docker.io), the engine venv and the tiny model (`bash scripts/prepare-engine.sh`).
"""

from __future__ import annotations

import io
import json
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from docker.client import DockerClient

from aigc_admin.adapters.fastchat.controller import FastChatController
from aigc_admin.adapters.net import free_port
from aigc_admin.adapters.runtime.docker import DockerRuntime
from aigc_admin.domain.deployments.templates import MODEL_WORKER, render
from aigc_admin.domain.runtime import WORKLOAD_LABEL, VolumeMount, WorkloadSpec, WorkloadState
from tests.support.dockerd import Dockerd, start_dockerd
from tests.support.engine import (
    engine_python,
    engine_venv,
    log_tail,
    start_controller,
    stop_process_group,
    tiny_model_path,
    wait_until_async,
)

IMAGE = "aigc-test/empty-root:latest"
REGISTER_TIMEOUT_S = 120  # liveness bound: a CPU worker with the tiny model registers in a few seconds
# /sbin stays a real, empty directory of the image: Docker bind-mounts its init (runtime init=True) at
# /sbin/docker-init, and a /sbin -> usr/sbin symlink would put that mount point inside the read-only /usr.
TOP_LEVEL = ("/bin", "/lib", "/lib32", "/lib64", "/libx32")


@dataclass
class Engine:
    daemon: Dockerd
    client: DockerClient


@dataclass
class Controller:
    url: str
    log: Path


def build_empty_image(client: DockerClient, tag: str = IMAGE) -> str:
    """``FROM scratch`` + ``/tmp``, ``/sbin`` + the host's top-level symlinks (``/lib -> usr/lib``, …); no pull."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add(name: str, kind: bytes, *, data: bytes = b"", link: str = "", mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname, info.size = kind, mode, link, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("Dockerfile", tarfile.REGTYPE, data=b"FROM scratch\nCOPY rootfs/ /\n", mode=0o644)
        add("rootfs", tarfile.DIRTYPE)
        add("rootfs/tmp", tarfile.DIRTYPE, mode=0o1777)
        add("rootfs/sbin", tarfile.DIRTYPE)
        add("rootfs/.aigc-empty-root", tarfile.REGTYPE, data=b"an almost empty image\n", mode=0o644)
        for top in TOP_LEVEL:
            if Path(top).is_symlink():
                add(f"rootfs{top}", tarfile.SYMTYPE, link=str(Path(top).readlink()))
    buf.seek(0)
    client.images.build(fileobj=buf, custom_context=True, tag=tag, pull=False, rm=True, forcerm=True,
                        network_mode="none")
    return tag


def host_mounts(tmp: Path) -> list[VolumeMount]:
    """What the engine needs from the host, read-only at the same paths, plus a writable /tmp."""
    interpreter = engine_python().resolve()  # venv python -> e.g. /root/.pyenv/versions/3.11.7/bin/python3.11
    paths = [engine_venv(), interpreter.parent.parent, Path("/usr"), Path("/etc"), tiny_model_path()]
    paths += [Path(top) for top in TOP_LEVEL if Path(top).is_dir() and not Path(top).is_symlink()]
    mounts = [VolumeMount(mount_path=str(p), host_path=str(p.resolve()), read_only=True) for p in paths]
    return [*mounts, VolumeMount(mount_path="/tmp", host_path=str(tmp), read_only=False)]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    daemon = start_dockerd(tmp_path_factory.mktemp("dockerd"))  # sockets live under a short /tmp/dkrXXXX
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
async def controller(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Controller]:
    port = free_port()
    log_dir = tmp_path_factory.mktemp("controller")
    proc = start_controller(port, log_dir)
    ctl = Controller(f"http://127.0.0.1:{port}", log_dir / f"controller-{port}.log")
    try:
        async with FastChatController(ctl.url) as client:
            await wait_until_async(client.alive, 30, what="controller up")
        yield ctl
    finally:
        stop_process_group(proc)


def containers_of(engine: Engine, name: str) -> list[Any]:
    return list(engine.client.containers.list(all=True, filters={"label": f"{WORKLOAD_LABEL}={name}"}))


async def test_model_worker_in_a_container_registers_serves_and_goes_away(
    engine: Engine, controller: Controller, tmp_path: Path
) -> None:
    model_name = f"tiny-docker-{uuid.uuid4().hex[:6]}"
    rendered = render(json.dumps(MODEL_WORKER), {
        "image": IMAGE, "python": str(engine_python()), "model_path": str(tiny_model_path()),
        "model_name": model_name, "controller_address": controller.url, "device": "cpu", "gpus": "1",
        "quantization_args": [], "worker_args": [], "max_gpu_memory": "",
        "conv_template_args": ["--conv-template", "vicuna_v1.1"],  # the tiny model named no template
    })
    assert rendered.image == IMAGE
    container_tmp = tmp_path / "container-tmp"
    container_tmp.mkdir()
    spec = WorkloadSpec(
        name=f"fc-{uuid.uuid4().hex[:6]}", image=rendered.image, command=rendered.command,
        env={**rendered.env, "HOME": "/tmp", "TMPDIR": "/tmp", "LOGDIR": "/tmp", "HF_HOME": "/tmp/hf",
             "USER": "root", "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"},
        volumes=host_mounts(container_tmp), working_dir="/tmp")
    runtime = DockerRuntime(base_url=engine.daemon.base_url, owner="test", network_mode="host", stop_timeout=10)
    handle = None
    try:
        async with FastChatController(controller.url) as client:
            started = time.monotonic()
            handle = await runtime.start(spec)
            address = ""

            async def registered() -> bool:
                nonlocal address
                status = await runtime.status(handle)
                if status.state == WorkloadState.FAILED:
                    raise AssertionError(f"worker container failed: {status.message}")
                if status.state != WorkloadState.RUNNING:
                    return False
                address = status.replicas[0].address
                if model_name not in await client.list_models():
                    return False
                worker = await client.worker_status(address)
                return worker is not None and model_name in worker.model_names

            try:
                await wait_until_async(registered, REGISTER_TIMEOUT_S, interval=0.5, what="worker registered")
            except BaseException:
                print("--- container logs\n" + "\n".join((await runtime.logs(handle)).lines[-40:]))
                print("--- controller log\n" + log_tail(controller.log))
                print("--- dockerd log\n" + engine.daemon.log_tail())
                raise
            registration_s = time.monotonic() - started
            print(f"\n[docker-fastchat] model_worker container registered {model_name} in {registration_s:.1f} s")

            assert address == f"http://127.0.0.1:{handle.data['ports'][0]}"
            assert await client.get_worker_address(model_name) == address
            assert await client.workers([address], discover=False) == {model_name: [address]}

            # What the Engine runs: host network, the host's files read-only, only /tmp writable.
            (container,) = containers_of(engine, spec.name)
            container.reload()
            assert container.status == "running"
            assert container.attrs["HostConfig"]["NetworkMode"] == "host"
            mounts = {m["Destination"]: m["RW"] for m in container.attrs["Mounts"]}
            assert mounts == {v.mount_path: not v.read_only for v in spec.volumes}
            assert [d for d, rw in mounts.items() if rw] == ["/tmp"]
            assert container.attrs["Config"]["Cmd"][0] == str(engine_python())

            logs = "\n".join((await runtime.logs(handle)).lines)
            assert f"Loading the model ['{model_name}']" in logs
            assert "Register to controller" in logs
            assert f"Uvicorn running on {address}" in logs

            stopping = time.monotonic()
            await runtime.stop(handle)
            print(f"[docker-fastchat] stopped and removed in {time.monotonic() - stopping:.1f} s")
            assert containers_of(engine, spec.name) == []
            assert (await runtime.status(handle)).state == WorkloadState.MISSING
            assert await client.worker_status(address) is None

            await client.refresh_all_workers()
            assert model_name not in await client.list_models()
            assert await client.get_worker_address(model_name) == ""
    finally:
        if handle is not None:
            await runtime.stop(handle)
        runtime.close()
