"""Admission control's own rules (gateway/admission.py): shortest queue first, a bounded wait, fair turns across
channels, nothing leaked when a waiter gives up."""

from __future__ import annotations

import asyncio

import pytest

from aigc_admin.gateway.admission import Admission, AdmissionRefused

A, B = "http://a", "http://b"


async def test_the_shortest_queue_gets_the_request() -> None:
    adm = Admission(queue_limit=4, wait=1, max_waiting=10)
    adm.report(A, 3)  # another process keeps A busy
    assert await adm.acquire("m", (A, B), channel=1) == B
    assert await adm.acquire("m", (A, B), channel=1) == B
    assert adm.load(B) == 2 and adm.load(A) == 3
    assert adm.order((A, B)) == [B, A]
    adm.report(A, 3)  # our requests are counted live, the others' from the report: no double count
    adm.report(B, 2)
    assert adm.load(B) == 2


async def test_fair_turns_across_channels() -> None:
    adm = Admission(queue_limit=1, wait=5, max_waiting=100)
    first = await adm.acquire("m", (A,), channel=1)
    greedy = [asyncio.ensure_future(adm.acquire("m", (A,), channel=1)) for _ in range(10)]
    await asyncio.sleep(0)
    small = asyncio.ensure_future(adm.acquire("m", (A,), channel=2))
    await asyncio.sleep(0)
    assert adm.waiting("m") == 11
    adm.release("m", first)  # one slot: the greedy channel's oldest (its turn came first)
    await asyncio.sleep(0.01)
    assert greedy[0].done() and not small.done()
    adm.release("m", A)  # the next slot: the small channel's, not the greedy one's second
    await asyncio.sleep(0.01)
    assert small.done() and not greedy[1].done()
    for task in greedy[1:]:
        task.cancel()
    await asyncio.gather(*greedy[1:], return_exceptions=True)
    assert adm.waiting("m") == 0


async def test_the_wait_is_bounded_and_the_room_too() -> None:
    adm = Admission(queue_limit=1, wait=0.05, max_waiting=1)
    await adm.acquire("m", (A,), channel=1)
    waiting = asyncio.ensure_future(adm.acquire("m", (A,), channel=1))
    await asyncio.sleep(0)
    with pytest.raises(AdmissionRefused) as full:
        await adm.acquire("m", (A,), channel=2)
    assert full.value.reason == "full" and full.value.retry_after == 1
    with pytest.raises(AdmissionRefused) as late:
        await waiting
    assert late.value.reason == "timeout"
    assert adm.stats.shed == {"full": 1, "timeout": 1} and adm.inflight == {A: 1}


async def test_a_waiter_that_gives_up_leaks_nothing() -> None:
    adm = Admission(queue_limit=1, wait=5, max_waiting=10)
    await adm.acquire("m", (A,), channel=1)
    gone = asyncio.ensure_future(adm.acquire("m", (A,), channel=2))
    await asyncio.sleep(0)
    gone.cancel()  # the client disconnected
    await asyncio.gather(gone, return_exceptions=True)
    adm.release("m", A)
    assert adm.inflight == {} and adm.waiting("m") == 0


async def test_a_slot_freed_elsewhere_lets_a_waiter_in() -> None:
    lengths = {A: 1}

    async def probe(worker: str) -> int | None:
        return lengths.get(worker)

    adm = Admission(queue_limit=1, wait=5, max_waiting=10, probe=probe)
    await adm.poll_once([A])  # another process's request holds A
    waiter = asyncio.ensure_future(adm.acquire("m", (A,), channel=1))
    await asyncio.sleep(0)
    assert not waiter.done()
    lengths[A] = 0  # it finished
    await adm.poll_once([A])
    assert await asyncio.wait_for(waiter, 1) == A


async def test_off_is_round_robin_free() -> None:
    adm = Admission(queue_limit=0, wait=1, max_waiting=1)
    assert not adm.enabled
    assert [await adm.acquire("m", (A,), channel=1) for _ in range(5)] == [A] * 5  # never waits


async def test_outcomes_are_counted_for_prometheus() -> None:
    from aigc_admin.adapters.metrics import GatewayStats

    stats = GatewayStats()
    adm = Admission(queue_limit=1, wait=0.01, max_waiting=5, count=stats.admission_outcome)
    await adm.acquire("m", (A,), channel=1)
    with pytest.raises(AdmissionRefused):
        await adm.acquire("m", (A,), channel=1)
    family = next(f for f in stats.collect() if f.name == "aigc_gateway_admission")
    assert {s.labels["outcome"]: s.value for s in family.samples} == {"admitted": 1, "shed_timeout": 1}


async def test_our_request_ending_while_the_worker_reports_is_no_phantom() -> None:
    """The worker counted our request when it answered the poll, but the request ended before the answer arrived:
    it must not stay counted as another process's until the next poll (the replica would look full for that long)."""
    adm = Admission(queue_limit=1, wait=5, max_waiting=10)
    worker = await adm.acquire("m", (A,), channel=1)
    asked = adm.inflight[A]  # the poll goes out while our request runs
    adm.release("m", worker)  # it ends before the worker's answer (which still counts it) arrives
    adm.report(A, 1, own_when_asked=asked)
    assert adm.load(A) == 0
    assert await asyncio.wait_for(adm.acquire("m", (A,), channel=2), 0.1) == A  # admitted at once


async def test_a_channel_joining_beside_a_backlog_gets_the_next_slot() -> None:
    """The greedy channel has been served and still has a backlog; the small channel's request, arriving now, gets
    the next free slot (not after another of the greedy one's): it waits for one request at most."""
    adm = Admission(queue_limit=1, wait=5, max_waiting=100)
    first = await adm.acquire("m", (A,), channel=1)
    greedy = [asyncio.ensure_future(adm.acquire("m", (A,), channel=1)) for _ in range(5)]
    await asyncio.sleep(0)
    adm.release("m", first)
    await asyncio.sleep(0.01)
    assert greedy[0].done()  # served; its channel is backlogged and has had its turn
    small = asyncio.ensure_future(adm.acquire("m", (A,), channel=2))
    await asyncio.sleep(0)
    adm.release("m", A)
    await asyncio.sleep(0.01)
    assert small.done() and not greedy[1].done()
    for task in greedy[1:]:
        task.cancel()
    await asyncio.gather(*greedy[1:], return_exceptions=True)
