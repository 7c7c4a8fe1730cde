"""Live subscription streams handed to the WebSocket transport (resolver side; the relay is in web/graphql_ws.py).

Why
---
Through strawberry, every subscription keeps its whole per-operation pipeline alive for as long as it
is open: strawberry's ``_stream`` generator with its extension hooks, graphql-core's executor and
mapped iterator, the parsed document, the validation rules' classes (~45 KB per subscription). And
every event is executed and serialised once per subscriber, although all subscribers of one job
with the same document receive the same bytes.

How
---
A subscription resolver does its per-subscriber work through strawberry as usual: authorization,
the replay of stored rows, anything whose result differs per subscriber. Then, for the live part,
it calls :func:`hand_off` with an async iterator of :class:`LiveItem` and returns. Strawberry's
pipeline ends normally (its frames are freed), and :class:`RelayingTransportWSHandler`, the
graphql-transport-ws handler of the API, relays the rest of the iterator on the same operation id:

* an item is executed with one executor per group, a group being the subscribers with the same
  (query, operation name, variables) — graphql-core's own ``build_per_event_executor`` /
  ``execute_subscription_event``, the functions its ``subscribe`` maps events with;
* an item marked as the same event for every subscriber (``shared_by``: the hub's payload object,
  which it hands to all local subscribers of a topic) is executed and serialised once per group,
  and the same payload text is written to each subscriber's socket;
* the stream's end sends ``complete``; an exception sends what strawberry would (a ``next`` with the
  masked error, then ``complete``); the client's ``complete`` or a disconnect cancels the relay,
  which closes the iterator (unsubscribing from the hub).

The frame for a subscriber is sent only after its previous one was written, in the order of its
iterator, so a resolver that replays then goes live keeps its no-gap, no-duplicate guarantee: the
hand-off happens when strawberry asks the resolver for its next value, after the last one was sent.

Only for payloads that depend on the event and the document alone: the group executes with the
context of the subscriber that created it, so a payload type whose fields check permissions or
read the context must not be handed off. Without this handler (``schema.subscribe`` in a test,
the legacy graphql-ws protocol) :func:`hand_off` returns False and the resolver yields the items
itself.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any


@dataclass(slots=True)
class LiveItem:
    """One value of a live stream: ``build()`` makes the subscription field's value; ``shared_by`` is the
    event object it was made from when every subscriber of the topic gets exactly this value (the
    relay then executes and serialises it once per group), None when it is this subscriber's own."""

    build: Callable[[], Any]
    shared_by: object | None = None


def item(value: Any) -> LiveItem:
    """A live item that is this subscriber's own (not shared)."""
    return LiveItem(partial(_same, value))


def _same(value: Any) -> Any:
    return value


class HandOffSlot:
    """Where a resolver leaves its live stream for the transport (one per subscription operation)."""

    __slots__ = ("stream",)

    def __init__(self) -> None:
        self.stream: AsyncGenerator[LiveItem, None] | None = None


_SLOT: contextvars.ContextVar[HandOffSlot | None] = contextvars.ContextVar("aigc_live_slot", default=None)


@contextmanager
def accepting_hand_off() -> Iterator[HandOffSlot]:
    """The transport's side: while inside, a resolver's ``hand_off`` leaves its stream in the slot."""
    slot = HandOffSlot()
    token = _SLOT.set(slot)
    try:
        yield slot
    finally:
        _SLOT.reset(token)


def hand_off(stream: AsyncGenerator[LiveItem, None]) -> bool:
    """Give the rest of this subscription to the transport. True: the resolver must return now, without
    closing ``stream`` (the relay owns it). False: no relaying transport; iterate it yourself."""
    slot = _SLOT.get()
    if slot is None or slot.stream is not None:
        return False
    slot.stream = stream
    return True
