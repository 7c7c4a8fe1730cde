"""`aigc-admin up`: API in this process, an RQ worker and the scheduler as children, one embedded Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from aigc_admin.adapters.redis_conn import RedisEndpoint
from aigc_admin.settings import SPECS, Settings


def settings_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment that makes a child process load exactly these settings."""
    env = dict(os.environ)
    for name, spec in SPECS.items():
        value = getattr(settings, name)
        env[spec.envs[0]] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    env.pop("AIGC_CONFIG_PATH", None)
    env.update(overrides)
    return env


def run_all(settings: Settings) -> None:
    import uvicorn

    from aigc_admin.app import create_app

    endpoint = RedisEndpoint.open(settings)
    children: list[subprocess.Popen[bytes]] = []
    try:
        env = settings_env(settings, AIGC_REDIS_HOSTS=endpoint.url)
        cli = [sys.executable, "-m", "aigc_admin.cli"]
        children.append(subprocess.Popen([*cli, "worker"], env=env))
        children.append(subprocess.Popen([*cli, "cronjob", "start"], env=env))
        host, port = settings.listen
        print(f"\n  aigc-admin is starting: GraphiQL at {settings.public_url}/graphql\n"
              f"  data in {settings.storage_dir}; Ctrl-C stops everything\n", flush=True)
        uvicorn.run(create_app(settings, endpoint=endpoint), host=host, port=port, log_config=None)
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
        endpoint.close()
