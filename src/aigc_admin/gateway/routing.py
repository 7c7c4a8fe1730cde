"""Where a model's traffic goes, kept in memory so that the hot path reads no database.

The table is rebuilt from the database every ``refresh_interval`` seconds (``gateway.routes.refresh``)
and soon after a worker is found unreachable. Local models route to the worker addresses of
their RUNNING/DEGRADED deployment; external models to their upstream base URL and credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    model: str
    model_type: str  # chat | completion | embedding
    local: bool
    workers: tuple[str, ...] = ()  # local: FastChat worker addresses
    base_url: str = ""  # external
    credentials: str = field(default="", repr=False)  # external: decrypted API key (never logged)
    enabled: bool = True
    chat_template: str = field(default="", repr=False)  # local: the model's own (JSON); "": the worker's template
    openai: bool = False  # local: the workers are OpenAI servers (the vllm engine), called like an upstream

    @property
    def serving(self) -> bool:
        return self.enabled and (bool(self.workers) if self.local else bool(self.base_url))


RouteLoader = Callable[[], Awaitable[dict[str, Route]]]


class RoutingTable:
    def __init__(self, loader: RouteLoader, *, refresh_interval: float = 5.0) -> None:
        self._loader = loader
        self._interval = refresh_interval
        self._routes: dict[str, Route] = {}
        self._cursor: dict[str, itertools.cycle[str]] = {}
        self._openai_workers: frozenset[str] = frozenset()
        self._wake = asyncio.Event()

    def get(self, model: str) -> Route | None:
        return self._routes.get(model)

    def all(self) -> list[Route]:
        return list(self._routes.values())

    def speaks_openai(self, worker: str) -> bool:
        """Whether the worker at this address is an OpenAI server (vllm engine), not a FastChat worker."""
        return worker in self._openai_workers

    def workers_in_order(self, route: Route) -> list[str]:
        """Every worker, starting with the next one in round-robin order (the rest are retry targets)."""
        if not route.workers:
            return []
        cycle = self._cursor.get(route.model)
        first = next(cycle) if cycle else route.workers[0]
        i = route.workers.index(first) if first in route.workers else 0
        return list(route.workers[i:] + route.workers[:i])

    async def refresh(self) -> None:
        routes = await self._loader()
        self._routes = routes
        self._cursor = {name: itertools.cycle(r.workers) for name, r in routes.items() if r.workers}
        self._openai_workers = frozenset(w for r in routes.values() if r.openai for w in r.workers)

    def poke(self) -> None:
        """Refresh soon (a deployment changed)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh()
            except Exception:
                log.exception("routing table refresh failed; keeping the previous table")
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waiters, timeout=self._interval, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await w


async def load_routes(models: Any, deployments: Any) -> dict[str, Route]:
    """Routes from the model registry and the serving deployments (domain services)."""
    from aigc_admin.domain.deployments.entities import DeploymentStatus, Engine
    from aigc_admin.domain.models.service import Provider

    records, _ = await models.list(tenant_id=None, offset=0, limit=100_000)
    serving, _ = await deployments.list(tenant_id=None, statuses=[DeploymentStatus.RUNNING,
                                                                  DeploymentStatus.DEGRADED], offset=0, limit=100_000)
    workers: dict[int, tuple[str, ...]] = {}
    openai: set[int] = set()
    for d in serving:
        workers[d.model_id] = workers.get(d.model_id, ()) + tuple(d.worker_addresses)
        if d.engine == Engine.VLLM:
            openai.add(d.model_id)
    # every external model's credentials in one query (not one per model per refresh)
    secrets = await models.credentials_of([r.id for r in records if r.provider != Provider.LOCAL and r.has_credentials])
    routes = {}
    for r in records:
        if r.provider == Provider.LOCAL:
            # a conversation template named on the model wins over the model's own chat template
            own = "" if r.conversation_template else r.chat_template
            routes[r.name] = Route(r.name, r.model_type.value, True, workers=workers.get(r.id, ()), enabled=r.enabled,
                                   chat_template=own, openai=r.id in openai)
        else:
            routes[r.name] = Route(r.name, r.model_type.value, False, base_url=r.base_url,
                                   credentials=secrets.get(r.id, ""), enabled=r.enabled)
    return routes
