"""Memory retained by a long-lived subscription must not grow with the number of events delivered.

graphql-core 3.3.x shares the subscription executor's ``_relevant_sub_fields`` memo with every
per-event executor and fills it with entries no later event can hit (see
``aigc_admin.web.graphql_patches``). These tests drive a real strawberry schema through
``schema.subscribe`` and measure, while the subscription is still open:

* the number of entries in the subscription executor's memo, and
* the memory retained (tracemalloc, after ``gc.collect()``) across N events, for N=200 and N=2,000.

With the patch, both stay flat; without it (second test), both grow linearly, which shows the
first test can fail. If the unpatched test starts failing after a graphql-core upgrade, upstream
has fixed the leak: drop the patch.
"""

from __future__ import annotations

import gc
import logging
import tracemalloc
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import graphql
import pytest
import strawberry
from graphql.execution import Executor
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from aigc_admin.web import graphql_patches

SMALL, LARGE = 200, 2_000
# Retained growth allowed between SMALL and LARGE events (1,800 extra events) with the patch.
# Unpatched, the same difference is several MB (≥ 4 memo entries per event, ~1.4 KB per event).
MAX_EXTRA_RETAINED_BYTES = 64 * 1024


@strawberry.type
class Leaf:
    value: int


@strawberry.type
class Inner:
    name: str
    leaf: Leaf


@strawberry.type
class Tick:
    id: int
    inner: Inner
    items: list[Inner]


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[Tick, None]:
        i = 0
        while True:  # a long-lived subscription: only the client ends it
            i += 1
            yield Tick(
                id=i,
                inner=Inner(name="a", leaf=Leaf(value=i)),
                items=[Inner(name="b", leaf=Leaf(value=i)), Inner(name="c", leaf=Leaf(value=-i))],
            )


QUERY = "subscription { ticks { id inner { name leaf { value } } items { name leaf { value } } } }"


class RecordingExecutor(StrawberryGraphQLCoreExecutionContext):
    """Remembers the executors built for an operation (per-event executors are copies, not built)."""

    built: list[Executor] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        RecordingExecutor.built.append(self)


SCHEMA = strawberry.Schema(query=Query, subscription=Subscription, execution_context_class=RecordingExecutor)


def _unpatched() -> Any:
    current = Executor.build_per_event_executor
    return getattr(current, "__wrapped__", current)


@pytest.fixture
def restore_executor(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Whatever a test does to Executor.build_per_event_executor is undone afterwards."""
    monkeypatch.setattr(Executor, "build_per_event_executor", Executor.build_per_event_executor)
    yield monkeypatch


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


async def _run(n: int) -> tuple[int, int]:
    """Deliver 1 + n events on one open subscription; return (bytes retained by the n, memo entries)."""
    RecordingExecutor.built.clear()
    stream = await SCHEMA.subscribe(QUERY)
    try:
        first = await anext(stream)  # warm-up event: lazy caches of the first execution are not counted
        assert not first.errors, first.errors
        del first
        (executor,) = RecordingExecutor.built
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(n):
            result = await anext(stream)
            assert not result.errors, result.errors
            assert result.data is not None and result.data["ticks"]["items"][1]["leaf"]["value"] < 0
        del result
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
        return retained, len(executor._relevant_sub_fields)
    finally:
        await stream.aclose()  # unsubscribe


async def test_subscription_memory_flat_with_patch(restore_executor: pytest.MonkeyPatch, traced: None) -> None:
    assert graphql_patches.apply(), f"patch refused for graphql-core {graphql.version}"
    await _run(SMALL)  # warm-up subscription
    small, small_entries = await _run(SMALL)
    large, large_entries = await _run(LARGE)
    assert small_entries == large_entries == 0
    assert large - small < MAX_EXTRA_RETAINED_BYTES, (
        f"retained {small} B after {SMALL} events but {large} B after {LARGE} events"
    )


async def test_unpatched_graphql_core_grows_per_event(restore_executor: pytest.MonkeyPatch, traced: None) -> None:
    """Documents the upstream leak (and that the test above can fail). Failing here means upstream fixed it."""
    restore_executor.setattr(Executor, "build_per_event_executor", _unpatched())
    assert not graphql_patches.is_applied()
    await _run(SMALL)  # warm-up subscription
    small, small_entries = await _run(SMALL)
    large, large_entries = await _run(LARGE)
    # ticks, inner, inner.leaf, items, items.leaf: new memo keys for every event
    assert small_entries >= 4 * SMALL
    assert large_entries >= 4 * LARGE
    assert large - small > 10 * MAX_EXTRA_RETAINED_BYTES, (
        f"graphql-core {graphql.version} no longer leaks ({small} B vs {large} B retained): drop the patch"
    )


def test_apply_is_idempotent(restore_executor: pytest.MonkeyPatch) -> None:
    restore_executor.setattr(Executor, "build_per_event_executor", _unpatched())
    assert graphql_patches.apply()
    patched = Executor.build_per_event_executor
    assert graphql_patches.apply()
    assert Executor.build_per_event_executor is patched
    assert patched.__wrapped__ is _unpatched()  # type: ignore[attr-defined]
    assert not hasattr(patched.__wrapped__, "__wrapped__")  # wrapped once, not twice  # type: ignore[attr-defined]


def test_apply_refuses_unknown_graphql_core(
    restore_executor: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = _unpatched()
    restore_executor.setattr(Executor, "build_per_event_executor", original)
    restore_executor.setattr(graphql, "version", "3.4.0")
    with caplog.at_level(logging.WARNING, logger=graphql_patches.__name__):
        assert not graphql_patches.apply()
    assert Executor.build_per_event_executor is original
    assert not graphql_patches.is_applied()
    assert "3.4.0" in caplog.text
