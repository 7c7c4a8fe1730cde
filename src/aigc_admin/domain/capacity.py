"""GPU capacity: one pool of ``runtime.gpu.num`` GPUs shared by every GPU consumer.

Each consumer (deployments, training jobs, and whatever comes next) registers how many GPUs it holds now;
before taking more, a consumer asks the pool how many are in use across all of them. The composition
root registers the consumers, so a new one is one ``register`` call there, not an edit of the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

GpusHeld = Callable[[], Awaitable[int]]


class GpuPool:
    def __init__(self, total: int) -> None:
        self.total = total
        self._held: dict[str, GpusHeld] = {}

    def register(self, consumer: str, held: GpusHeld) -> None:
        """``held()`` answers how many GPUs ``consumer`` holds now (read when the pool is asked)."""
        self._held[consumer] = held

    @property
    def consumers(self) -> list[str]:
        return list(self._held)

    async def in_use(self) -> int:
        total = 0
        for held in self._held.values():
            total += await held()
        return total

    async def free(self) -> int:
        return max(0, self.total - await self.in_use())
