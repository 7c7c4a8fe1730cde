"""The FastChat engine for integration tests: its venv, the tiny model, and real processes.

FastChat runs in its own venv (scripts/prepare-engine.sh builds it and the tiny model). Every
process starts in its own session (= process group), offline, with its log in a file; stop it with
:func:`stop_process_group`, which kills the whole group (uvicorn and whatever it spawned).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PREPARE = "scripts/prepare-engine.sh"
CONV_TEMPLATE = "vicuna_v1.1"  # the default one-shot template exceeds the tiny model's 512 positions


class EngineMissing(RuntimeError):
    pass


def _cache_dir() -> Path:
    return Path(os.environ.get("AIGC_CACHE_DIR") or Path.home() / ".cache" / "aigc-admin")


def engine_venv() -> Path:
    return Path(os.environ.get("AIGC_ENGINE_VENV") or _cache_dir() / "engine-venv")


def engine_python() -> Path:
    """The engine venv's python (AIGC_ENGINE_VENV, default ~/.cache/aigc-admin/engine-venv)."""
    python = engine_venv() / "bin" / "python"
    if not python.exists():
        raise EngineMissing(f"FastChat engine venv not found at {engine_venv()}: run `bash {PREPARE}` first")
    return python


def tiny_model_path() -> Path:
    """The tiny model (AIGC_TINY_MODEL, default ~/.cache/aigc-admin/models/tiny-llama)."""
    path = Path(os.environ.get("AIGC_TINY_MODEL") or _cache_dir() / "models" / "tiny-llama")
    if not (path / "config.json").exists():
        raise EngineMissing(f"tiny model not found at {path}: run `bash {PREPARE}` first")
    return path


def engine_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIGC_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        PYTHONUNBUFFERED="1",
        TOKENIZERS_PARALLELISM="false",
    )
    env.update(extra or {})
    return env


def start_engine_process(
    module: str, args: list[str], log_file: Path, *, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``engine-python -m MODULE ARGS`` in its own process group, stdout+stderr to ``log_file``.

    The working directory is the log file's folder: FastChat writes its own ``*.log`` files there.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [str(engine_python()), "-m", module, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_file.parent,
            env=engine_env(env),
            start_new_session=True,
        )


def start_controller(
    port: int, log_dir: Path, *, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``fastchat.serve.controller`` on 127.0.0.1:PORT (address http://127.0.0.1:PORT)."""
    return start_engine_process(
        "fastchat.serve.controller",
        ["--host", "127.0.0.1", "--port", str(port)],
        log_dir / f"controller-{port}.log",
        env=env,
    )


def start_model_worker(
    controller_url: str,
    port: int,
    model_path: Path,
    model_name: str,
    log_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``fastchat.serve.model_worker`` on CPU, registered as http://127.0.0.1:PORT.

    ``model_name``: one name, or several comma-separated (FastChat's ``--model-names``: aliases).
    """
    return start_engine_process(
        "fastchat.serve.model_worker",
        [
            "--host", "127.0.0.1",
            "--port", str(port),
            "--worker-address", f"http://127.0.0.1:{port}",
            "--controller-address", controller_url,
            "--model-path", str(model_path),
            "--model-names", model_name,
            "--device", "cpu",
            "--conv-template", CONV_TEMPLATE,
        ],
        log_dir / f"model_worker-{port}.log",
        env=env,
    )


def start_openai_api_server(
    controller_url: str, port: int, log_dir: Path, *, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``fastchat.serve.openai_api_server`` on 127.0.0.1:PORT (OpenAI API under /v1)."""
    return start_engine_process(
        "fastchat.serve.openai_api_server",
        ["--host", "127.0.0.1", "--port", str(port), "--controller-address", controller_url],
        log_dir / f"openai_api_server-{port}.log",
        env=env,
    )


def stop_process_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL, timeout: float = 10) -> None:
    """Send ``sig`` to the process's whole group (its own session) and reap it. Idempotent."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def wait_until(predicate: Callable[[], T], timeout: float, *, interval: float = 0.1, what: str = "condition") -> T:
    """Call ``predicate`` until it returns something truthy (returned) or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], Awaitable[T]], timeout: float, *, interval: float = 0.1, what: str = "condition"
) -> T:
    """:func:`wait_until` for the event loop, with an async ``predicate``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if loop.time() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(interval)


def log_tail(process_log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(process_log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {process_log})"


PREPARE_VLLM = "scripts/prepare-vllm.sh"


def vllm_python() -> Path:
    """The vLLM venv's python (AIGC_VLLM_VENV, default ~/.cache/aigc-admin/vllm-venv)."""
    venv = Path(os.environ.get("AIGC_VLLM_VENV") or _cache_dir() / "vllm-venv")
    if not (venv / "bin" / "python").exists():
        raise EngineMissing(f"vLLM venv not found at {venv}: run `bash {PREPARE_VLLM}` first")
    return venv / "bin" / "python"


def tiny_vllm_model_path() -> Path:
    """The tiny model vLLM's CPU build serves (AIGC_TINY_VLLM_MODEL, default .../models/tiny-llama-vllm)."""
    path = Path(os.environ.get("AIGC_TINY_VLLM_MODEL") or _cache_dir() / "models" / "tiny-llama-vllm")
    if not (path / "config.json").exists():
        raise EngineMissing(f"tiny vLLM model not found at {path}: run `bash {PREPARE_VLLM}` first")
    return path
