"""The hub's per-subscriber buffer: order, wake-up, and a slow subscriber is ended, never silently skipped."""

from __future__ import annotations

import asyncio

import pytest

from aigc_admin.adapters import events
from aigc_admin.adapters.events import SubscriberOverflow, _Subscription


async def test_events_arrive_in_order_and_wake_a_waiting_reader() -> None:
    sub = _Subscription()
    got: list[int] = []

    async def read() -> None:
        async for event in sub:
            got.append(event["n"])
            if len(got) == 3:
                return

    reader = asyncio.create_task(read())
    await asyncio.sleep(0)  # the reader waits
    for n in range(3):
        sub.push({"n": n})
    await asyncio.wait_for(reader, 1)
    assert got == [0, 1, 2]


async def test_an_overflowing_subscriber_gets_what_was_buffered_then_an_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "SUBSCRIBER_BUFFER", 2)
    sub = _Subscription()
    for n in range(4):
        sub.push({"n": n})
    got = [(await anext(sub))["n"] for _ in range(2)]
    assert got == [0, 1]
    with pytest.raises(SubscriberOverflow):
        await anext(sub)
