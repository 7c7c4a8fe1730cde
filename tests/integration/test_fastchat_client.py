"""The FastChat client against a real controller, two model_worker replicas and openai_api_server.

Needs the engine venv and the tiny model: `bash scripts/prepare-engine.sh` (see tests/support/engine.py).
Heart beats are sped up (worker every 2 s, controller expiration 6 s; FastChat's defaults are 45 s and
90 s) so that the time a dead worker stays registered can be measured here: it is printed, not asserted.
The controller does not expose its registry, so each replica also registers a second name of its own
(``tiny-llama-0`` / ``tiny-llama-1``, FastChat's ``--model-names`` aliases): /list_models then shows
exactly which replicas are still registered.

The last test of the shared engine kills its workers, so it stays last in this file.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from aigc_admin.adapters.fastchat.controller import FastChatController, FastChatUnavailable
from aigc_admin.adapters.net import free_port
from tests.support.engine import (
    log_tail,
    start_controller,
    start_model_worker,
    start_openai_api_server,
    stop_process_group,
    tiny_model_path,
    wait_until_async,
)

MODEL = "tiny-llama"
HEART_BEAT_EXPIRATION_S = 6
WORKER_HEART_BEAT_S = 2
CONTROLLER_ENV = {"FASTCHAT_CONTROLLER_HEART_BEAT_EXPIRATION": str(HEART_BEAT_EXPIRATION_S)}
WORKER_ENV = {"FASTCHAT_WORKER_HEART_BEAT_INTERVAL": str(WORKER_HEART_BEAT_S)}


@dataclass
class Engine:
    controller_url: str
    worker_urls: list[str]
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{log_tail(p)}" for p in sorted(self.log_dir.glob("*-*.log")))

    def stop(self, name: str) -> None:
        stop_process_group(self.processes[name])


def _alias(i: int) -> str:
    return f"{MODEL}-{i}"


ALL_NAMES = sorted([MODEL, _alias(0), _alias(1)])


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Engine]:
    model_path = tiny_model_path()
    log_dir = tmp_path_factory.mktemp("fastchat")
    controller_port, *worker_ports = free_port(), free_port(), free_port()
    eng = Engine(controller_url=_url(controller_port), worker_urls=[_url(p) for p in worker_ports], log_dir=log_dir)
    try:
        started = time.monotonic()
        eng.processes["controller"] = start_controller(controller_port, log_dir, env=CONTROLLER_ENV)
        async with FastChatController(eng.controller_url) as client:
            await wait_until_async(client.alive, 30, what="controller up")
            controller_up = time.monotonic() - started
            started = time.monotonic()
            for i, port in enumerate(worker_ports):
                eng.processes[f"worker{i}"] = start_model_worker(
                    eng.controller_url, port, model_path, f"{MODEL},{_alias(i)}", log_dir, env=WORKER_ENV
                )

            async def all_registered() -> bool:
                return await client.list_models() == ALL_NAMES

            await wait_until_async(all_registered, 90, interval=0.2, what="both workers registered")
            print(f"\n[fastchat] controller up in {controller_up:.1f} s; "
                  f"2 model_worker replicas (CPU) registered in {time.monotonic() - started:.1f} s")
    except BaseException:
        print(eng.logs())
        for proc in eng.processes.values():
            stop_process_group(proc)
        raise
    yield eng
    for proc in eng.processes.values():
        stop_process_group(proc)


@pytest.fixture
async def controller(engine: Engine) -> AsyncIterator[FastChatController]:
    async with FastChatController(engine.controller_url) as client:
        yield client


@pytest.fixture
def openai_api(engine: Engine) -> Iterator[str]:
    port = free_port()
    proc = start_openai_api_server(engine.controller_url, port, engine.log_dir)
    try:
        yield _url(port)
    finally:
        stop_process_group(proc)


async def test_controller_lists_the_model_and_resolves_its_workers(
    engine: Engine, controller: FastChatController
) -> None:
    w0, w1 = engine.worker_urls
    assert await controller.alive()
    assert await controller.list_models() == ALL_NAMES
    assert await controller.get_worker_address(MODEL) in engine.worker_urls
    assert await controller.get_worker_address(_alias(1)) == w1
    assert await controller.get_worker_address("no-such-model") == ""

    for i, url in enumerate(engine.worker_urls):
        status = await controller.worker_status(url)
        assert status is not None
        assert status.model_names == (MODEL, _alias(i))
        assert status.queue_length == 0
        assert status.speed == 1

    expected = {MODEL: sorted([w0, w1]), _alias(0): [w0], _alias(1): [w1]}
    assert await controller.workers(engine.worker_urls, discover=False) == expected
    # Discovery alone finds each alias's only worker, and one replica of the shared name at least.
    discovered = await controller.workers()
    assert discovered[_alias(0)] == [w0] and discovered[_alias(1)] == [w1]
    assert set(discovered[MODEL]) <= {w0, w1}

    # The controller answers /worker_get_status too, aggregated over its workers.
    aggregated = await controller.worker_status(engine.controller_url)
    assert aggregated is not None
    assert aggregated.model_names == tuple(ALL_NAMES)
    assert aggregated.speed == len(engine.worker_urls)


async def test_tiny_model_answers_through_worker_and_openai_api_server(engine: Engine, openai_api: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        # Straight to a worker: null-separated JSON chunks, the last one holds the whole answer.
        params = {"model": MODEL, "prompt": "USER: Hello! ASSISTANT:", "temperature": 0.7,
                  "max_new_tokens": 16, "echo": False}
        response = await http.post(f"{engine.worker_urls[0]}/worker_generate_stream", json=params)
        assert response.status_code == 200
        chunks = [json.loads(c) for c in response.content.split(b"\0") if c]
        assert chunks and all(c["error_code"] == 0 for c in chunks)
        print(f"\n[fastchat] worker_generate_stream: {chunks[-1]['text']!r} ({chunks[-1]['usage']})")

        async def ready() -> bool:
            try:
                return (await http.get(f"{openai_api}/v1/models")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until_async(ready, 30, interval=0.2, what="openai_api_server up")
        started = time.monotonic()
        response = await http.post(f"{openai_api}/v1/chat/completions", json={
            "model": MODEL, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 16})
        assert response.status_code == 200, response.text
        body = response.json()
        answer = body["choices"][0]["message"]["content"]
        assert isinstance(answer, str)
        assert body["usage"]["completion_tokens"] >= 1
        print(f"[fastchat] /v1/chat/completions in {time.monotonic() - started:.2f} s: {answer!r} ({body['usage']})")


async def test_dead_worker_is_unreachable_but_stays_registered_until_expired(
    engine: Engine, controller: FastChatController
) -> None:
    """Kills both workers (keep this test after the others that use `engine`)."""
    dead, alive = engine.worker_urls
    engine.stop("worker0")  # SIGKILL to the worker's process group: no goodbye to the controller
    killed = time.monotonic()

    assert await controller.worker_status(dead) is None
    assert await controller.worker_status(alive) is not None
    assert await controller.workers(engine.worker_urls) == {MODEL: [alive], _alias(1): [alive]}
    # The controller still lists the dead worker, and dispatches to it, until its heart beat expires.
    assert await controller.list_models() == ALL_NAMES
    assert await controller.get_worker_address(_alias(0)) == dead

    async def dead_dropped() -> bool:
        return _alias(0) not in await controller.list_models()

    await wait_until_async(dead_dropped, 4 * HEART_BEAT_EXPIRATION_S, interval=0.1, what="dead worker expired")
    print(f"\n[fastchat] dead worker still registered {time.monotonic() - killed:.1f} s after SIGKILL "
          f"(heart beat every {WORKER_HEART_BEAT_S} s, expiration {HEART_BEAT_EXPIRATION_S} s; expected "
          f"{HEART_BEAT_EXPIRATION_S - WORKER_HEART_BEAT_S}-{2 * HEART_BEAT_EXPIRATION_S} s; "
          f"FastChat defaults 45 s / 90 s -> 45-180 s)")
    assert await controller.list_models() == [MODEL, _alias(1)]
    assert await controller.get_worker_address(MODEL) == alive

    # /refresh_all_workers drops a dead worker at once.
    engine.stop("worker1")
    assert await controller.list_models() == [MODEL, _alias(1)]
    started = time.monotonic()
    await controller.refresh_all_workers()
    print(f"[fastchat] refresh_all_workers dropped the other dead worker in {time.monotonic() - started:.2f} s")
    assert await controller.list_models() == []
    assert await controller.get_worker_address(MODEL) == ""
    assert await controller.workers(engine.worker_urls) == {}


async def test_controller_down_raises_unavailable(tmp_path: Path) -> None:
    port = free_port()
    proc = start_controller(port, tmp_path)
    try:
        async with FastChatController(_url(port)) as client:
            await wait_until_async(client.alive, 30, what="controller up")
            assert await client.list_models() == []
            stop_process_group(proc)

            assert not await client.alive()
            with pytest.raises(FastChatUnavailable, match=f"127.0.0.1:{port}"):
                await client.list_models()
            with pytest.raises(FastChatUnavailable):
                await client.get_worker_address(MODEL)
            with pytest.raises(FastChatUnavailable):
                await client.workers()
            with pytest.raises(FastChatUnavailable):
                await client.refresh_all_workers()
            assert await client.worker_status(_url(port)) is None
    finally:
        stop_process_group(proc)


async def test_unresponsive_controller_times_out_as_unavailable() -> None:
    """A listening socket that never answers: the short timeout turns into FastChatUnavailable."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        url = _url(server.getsockname()[1])
        async with FastChatController(url, timeout=0.5) as client:
            started = time.monotonic()
            with pytest.raises(FastChatUnavailable, match="timed out"):
                await client.list_models()
            assert time.monotonic() - started < 3
            assert not await client.alive()
