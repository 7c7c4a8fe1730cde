"""One GPU pool for every consumer: what each holds is read when the pool is asked, and a new consumer counts
without any other consumer knowing about it."""

from __future__ import annotations

from aigc_admin.domain.capacity import GpuPool


async def test_the_pool_sums_what_every_registered_consumer_holds_now() -> None:
    held = {"deployments": 2, "training": 1}
    pool = GpuPool(4)
    for name in held:
        pool.register(name, lambda name=name: _async(held[name]))  # type: ignore[misc]
    assert await pool.in_use() == 3 and await pool.free() == 1
    held["training"] = 0  # read at every ask, not remembered
    assert await pool.free() == 2
    pool.register("evaluation", lambda: _async(3))  # a third consumer: one registration, nothing else changes
    assert pool.consumers == ["deployments", "training", "evaluation"]
    assert await pool.in_use() == 5 and await pool.free() == 0  # never negative, even when over-committed


async def _async(n: int) -> int:
    return n
