"""`aigc-admin up` as a user runs it, in a subprocess on free ports, with the engine venv."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from aigc_admin.adapters.net import free_port
from tests.support.engine import engine_python


class Up:
    """`aigc-admin up` in a subprocess (its own process group), on free ports, with the engine venv."""

    def __init__(self, storage: Path, *extra: str) -> None:
        self.storage = storage
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.password: str | None = None
        flags = ["-p", f"127.0.0.1:{self.port}", "--server.storage.path", str(storage),
                 "--engine.python", str(engine_python()), "--health.interval", "1", "--finetune.interval", "1",
                 "--gateway.routes.refresh", "0.5", "--engine.start.timeout", "120",
                 "--service.fschat.controller.host", f"http://127.0.0.1:{free_port()}",
                 "--service.local.ai.host", f"http://127.0.0.1:{free_port()}/v1", *extra]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_")}
        self.log = (storage / f"up-{self.port}.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "aigc_admin.cli", "up", *flags], stdout=self.log,
                                     stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)

    def output(self) -> str:
        return (self.storage / f"up-{self.port}.log").read_text(errors="replace")

    async def ready(self) -> None:
        for _ in range(300):
            try:
                async with httpx.AsyncClient() as c:
                    if (await c.get(f"{self.base}/readyz", timeout=2)).status_code == 200:
                        found = re.search(r"administrator 'admin' with password: (\S+)", self.output())
                        self.password = found.group(1) if found else self.password
                        return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
        raise AssertionError(f"`up` did not become ready:\n{self.output()[-3000:]}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            pytest.fail("`up` did not stop within 60 s of Ctrl-C")
        finally:
            self.log.close()

    async def gql(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None,
                  tenant: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if tenant:
            headers["X-Tenant-Id"] = tenant
        async with httpx.AsyncClient() as c:
            r = await c.post(f"{self.base}/graphql", json={"query": query, "variables": variables or {}},
                             headers=headers, timeout=30)
        body = r.json()
        assert not body.get("errors"), body
        return dict(body["data"])
