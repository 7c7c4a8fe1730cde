"""The connection GC policy: freeze after a settled burst of connections, thaw and collect after turnover."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from aigc_admin.web.gc_policy import ConnectionHeap


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    yield
    gc.unfreeze()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_freezes_after_a_settled_burst_and_thaws_after_a_quarter_closed() -> None:
    clock = Clock()
    heap = ConnectionHeap(min_new=10, quiet=1.0, churn=0.25, clock=clock)
    for _ in range(9):
        heap.opened()
    clock.now += 5
    heap.tick()
    assert heap.freezes == 0 and gc.get_freeze_count() == 0  # too few new connections to bother
    heap.opened()
    heap.tick()
    assert heap.freezes == 0  # the burst has not settled: the last one just opened
    clock.now += 1.5
    heap.tick()
    assert heap.freezes == 1 and gc.get_freeze_count() > 0 and heap.frozen_open == 10
    for _ in range(2):
        heap.closed()
    heap.tick()
    assert heap.thaws == 0 and gc.get_freeze_count() > 0  # 2 of 10 closed: not yet a quarter
    heap.closed()
    heap.tick()
    assert heap.thaws == 1 and gc.get_freeze_count() == 0  # thawed and collected once
    # the 7 still open count as new: frozen again after the next quiet moment only if enough of them
    assert heap.new == 7 and heap.frozen_open == 0


def test_a_steady_trickle_of_connections_is_frozen_after_max_wait() -> None:
    clock = Clock()
    heap = ConnectionHeap(min_new=5, quiet=1.0, max_wait=10.0, clock=clock)
    for _ in range(30):  # one every 0.5 s: never a quiet second
        heap.opened()
        clock.now += 0.5
        heap.tick()
        if heap.freezes:
            break
    assert heap.freezes == 1 and 9.5 <= clock.now - 1000.0 <= 10.5


def test_cycles_of_closed_connections_are_reclaimed_after_the_thaw() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a reference cycle, as asyncio objects of a closed connection often are

    clock = Clock()
    heap = ConnectionHeap(min_new=1, quiet=0.0, churn=0.25, clock=clock)
    heap.opened()
    node = Node()
    clock.now += 1
    heap.tick()
    assert heap.freezes == 1
    import weakref

    ref = weakref.ref(node)
    del node
    gc.collect()
    assert ref() is not None  # frozen: the collector does not look at it
    heap.closed()
    heap.tick()
    assert ref() is None  # thawed and collected
