"""The interval loop every control loop shares: one round per interval in one process of the cluster."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControlLoop:
    """``round()`` every ``interval`` seconds. Before each round the process takes a Redis lock that expires
    after 90 % of the interval, so with several API processes one of them runs each round."""

    name: str  # names the lock and the task
    interval: float
    round: Callable[[], Awaitable[Any]]

    async def run(self, redis: Any, *, prefix: str, stop: asyncio.Event) -> None:
        lock_key = f"{prefix}:{self.name}"
        while not stop.is_set():
            try:
                if await redis.set(lock_key, "1", nx=True, px=int(self.interval * 900)):
                    await self.round()
            except Exception:
                log.exception("%s: round failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
