"""The FastChat controller and openai_api_server that the platform runs itself (``fastchat.managed``, on in
``aigc-admin up``), as local workloads: started when missing, started again when they died."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlparse

from aigc_admin.domain.runtime import OWNER_LABEL, Runtime, WorkloadHandle, WorkloadSpec, WorkloadState

log = logging.getLogger(__name__)
CONTROLLER_WORKLOAD = "fastchat-controller"
API_SERVER_WORKLOAD = "fastchat-api"
MANAGED_WORKLOADS = (CONTROLLER_WORKLOAD, API_SERVER_WORKLOAD)


def managed_specs(*, python: str, controller_url: str, api_url: str, owner: str) -> list[WorkloadSpec]:
    """The FastChat controller and openai_api_server, at the configured addresses."""
    controller = urlparse(controller_url)
    api = urlparse(api_url)
    labels = {OWNER_LABEL: owner}
    return [
        WorkloadSpec(name=CONTROLLER_WORKLOAD, labels=labels,
                     command=[python, "-m", "fastchat.serve.controller", "--host", controller.hostname or "127.0.0.1",
                              "--port", str(controller.port or 21001)]),
        WorkloadSpec(name=API_SERVER_WORKLOAD, labels=labels,
                     command=[python, "-m", "fastchat.serve.openai_api_server", "--host", api.hostname or "127.0.0.1",
                              "--port", str(api.port or 8000), "--controller-address", controller_url]),
    ]


class ManagedFastChat:
    def __init__(self, *, runtime: Runtime, python: str, controller_url: str, api_url: str, owner: str) -> None:
        self.runtime = runtime  # the local runtime
        self.python = python
        self.specs = managed_specs(python=python, controller_url=controller_url, api_url=api_url, owner=owner)

    async def ensure(self) -> None:
        """Start the managed controller and API server unless they run (idempotent); restart dead ones."""
        if not Path(self.python).exists():
            raise FileNotFoundError(f"engine.python {self.python} does not exist: run `make engine`")
        for spec in self.specs:
            handle = WorkloadHandle(self.runtime.type, spec.name)
            state = (await self.runtime.status(handle)).state
            if state != WorkloadState.RUNNING:
                if state != WorkloadState.MISSING:
                    await self.runtime.stop(handle)
                log.info("starting the managed FastChat %s", spec.name)
                await self.runtime.start(spec)
