"""`aigc-admin up`: API in this process, an RQ worker and the scheduler as children, one embedded Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlparse

from aigc_admin.adapters.net import free_port, port_free
from aigc_admin.adapters.redis_conn import RedisEndpoint
from aigc_admin.bootstrap import stop_leftover_workloads, stop_owned_workloads
from aigc_admin.settings import Settings


def settings_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """This process's environment with exactly these settings (for child processes)."""
    env = {k: v for k, v in os.environ.items() if k != "AIGC_CONFIG_PATH"}
    return env | settings.to_env() | overrides


def run_all(settings: Settings) -> None:
    import uvicorn

    from aigc_admin.web.app import create_app

    # Everything on one machine: the platform also runs the FastChat controller and openai_api_server.
    settings = settings.model_copy(update={"fastchat_managed": True})
    stop_leftover_workloads(settings)  # of an `up` that did not stop cleanly: their ports and addresses are stale
    settings = _free_fastchat_ports(settings)
    # uvicorn re-raises the signal that stopped it; with SIGTERM's default action that would kill this
    # process before the clean-up below. Turn it into KeyboardInterrupt, like Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    endpoint = RedisEndpoint.open(settings)
    children: list[subprocess.Popen[bytes]] = []
    try:
        env = settings_env(settings, AIGC_REDIS_HOSTS=endpoint.url)
        cli = [sys.executable, "-m", "aigc_admin.cli"]
        children.append(subprocess.Popen([*cli, "worker"], env=env))
        children.append(subprocess.Popen([*cli, "cronjob", "start"], env=env))
        host, port = settings.listen
        print(f"\n  aigc-admin is starting: GraphiQL at {settings.public_url}/graphql\n"
              f"  FastChat controller at {settings.service_fschat_controller_host}, its OpenAI server at "
              f"{settings.service_local_ai_host}\n"
              f"  data in {settings.storage_dir}; Ctrl-C stops everything\n", flush=True)
        uvicorn.run(create_app(settings, endpoint=endpoint), host=host, port=port, log_config=None,
                    access_log=settings.server_access_log, ws_per_message_deflate=settings.server_ws_compression,
                    ws_max_size=settings.server_ws_max_message_bytes)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        stop_owned_workloads(settings, endpoint)
        endpoint.close()


def _free_fastchat_ports(settings: Settings) -> Settings:
    """Another instance on this machine may hold the FastChat processes' ports (21001 and 8000 by default): the
    managed ones take free ports then."""
    changes = {}
    for name in ("service_fschat_controller_host", "service_local_ai_host"):
        url = getattr(settings, name)
        parsed = urlparse(url)
        if parsed.hostname in ("127.0.0.1", "localhost") and parsed.port and not port_free(parsed.port):
            changes[name] = url.replace(f":{parsed.port}", f":{free_port()}", 1)
    return settings.model_copy(update=changes) if changes else settings


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
