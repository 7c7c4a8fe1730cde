"""Live subscription streams relayed by the WebSocket transport, executed once per event per document.

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
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from functools import partial
from typing import Any
from weakref import WeakValueDictionary

from graphql import ExecutionResult, GraphQLError, parse
from graphql.execution import Executor, execute_subscription_event
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation

from aigc_admin.resolvers.extensions import masked

log = logging.getLogger("aigc_admin.graphql")

MEMO_EVENTS = 8  # a group remembers the payload text of its last few shared events


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


class _Slot:
    __slots__ = ("stream",)

    def __init__(self) -> None:
        self.stream: AsyncGenerator[LiveItem, None] | None = None


_SLOT: contextvars.ContextVar[_Slot | None] = contextvars.ContextVar("aigc_live_slot", default=None)


def hand_off(stream: AsyncGenerator[LiveItem, None]) -> bool:
    """Give the rest of this subscription to the transport. True: the resolver must return now, without
    closing ``stream`` (the relay owns it). False: no relaying transport; iterate it yourself."""
    slot = _SLOT.get()
    if slot is None or slot.stream is not None:
        return False
    slot.stream = stream
    return True


class _Group:
    """Subscribers with the same document and variables: one executor, one payload text per shared event."""

    __slots__ = ("__weakref__", "_memo", "executions", "executor", "query", "variables")

    def __init__(self, executor: Executor, query: str, variables: dict[str, object] | None) -> None:
        self.executor, self.query, self.variables = executor, query, variables
        self._memo: dict[int, tuple[object, str]] = {}
        self.executions = 0

    async def payload(self, item: LiveItem, trace_id: str) -> str:
        shared = item.shared_by
        if shared is not None:
            hit = self._memo.get(id(shared))
            if hit is not None and hit[0] is shared:
                return hit[1]
        self.executions += 1
        outcome = execute_subscription_event(self.executor.build_per_event_executor(item.build()))
        result: ExecutionResult = await outcome if isinstance(outcome, Awaitable) else outcome
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:  # masked with this subscriber's trace id: not shared
            payload["errors"] = [masked(e, trace_id).formatted for e in result.errors]
            return json.dumps(payload, separators=(",", ":"))
        text = json.dumps(payload, separators=(",", ":"))
        if shared is not None:
            if len(self._memo) >= MEMO_EVENTS:
                del self._memo[next(iter(self._memo))]
            self._memo[id(shared)] = (shared, text)
        return text


_groups: WeakValueDictionary[tuple[int, str, str | None, str], _Group] = WeakValueDictionary()


def live_groups() -> int:
    """How many relay groups exist (for tests and diagnostics)."""
    return len(_groups)


class RelayingTransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    """strawberry's graphql-transport-ws handler, plus the relay of handed-off live streams."""

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        # the (cancelled) init-timeout task and the init payload are not needed for the connection's life
        self.connection_init_timeout_task = None
        if getattr(self.context, "connection_params", None) is not None:
            self.context.connection_params = None

    async def _send_result_stream(self, operation: Operation[Any, Any], result_source: Any) -> None:
        stream = await self._stream_until_handed_off(operation, result_source)
        if stream is not None:
            await self._relay(operation, stream)

    async def _stream_until_handed_off(self, operation: Operation[Any, Any],
                                       result_source: Any) -> AsyncGenerator[LiveItem, None] | None:
        slot = _Slot()
        token = _SLOT.set(slot)
        try:
            await super()._send_result_stream(operation, result_source)
        finally:
            _SLOT.reset(token)
        return slot.stream

    def _group(self, operation: Operation[Any, Any]) -> _Group:
        variables = json.dumps(operation.variables or {}, sort_keys=True, default=str)
        key = (id(self.schema), operation.query, operation.operation_name, variables)
        group = _groups.get(key)
        if group is None:
            schema: Any = self.schema
            executor = schema.execution_context_class.build(
                schema._schema, parse(operation.query), context_value=self.context,
                raw_variable_values=operation.variables, operation_name=operation.operation_name)
            if isinstance(executor, list):  # cannot happen: strawberry already ran this document
                raise GraphQLError(executor[0].message)
            group = _groups[key] = _Group(executor, operation.query, operation.variables)
        # the members of a group share one copy of the query text and variables
        operation.query, operation.variables = group.query, group.variables
        return group

    async def _relay(self, operation: Operation[Any, Any], stream: AsyncGenerator[LiveItem, None]) -> None:
        trace_id = str(getattr(self.context, "trace_id", ""))
        head = '{"id":' + json.dumps(operation.id) + ',"type":"next","payload":'
        try:
            group = self._group(operation)  # held by this frame: the group lives while a member does
            async with aclosing(stream):
                async for item in stream:
                    text = head + await group.payload(item, trace_id) + "}"
                    if operation.completed:
                        return
                    await self._send_text(text)
        except (WebSocketDisconnected, WebSocketDisconnect):
            raise
        except Exception as error:
            # what strawberry sends when a subscription's source stream raises: a next with the error
            graphql_error = error if isinstance(error, GraphQLError) else GraphQLError(str(error), original_error=error)
            await operation.send_operation_message({  # type: ignore[typeddict-item]
                "id": operation.id, "type": "next",
                "payload": {"data": None, "errors": [masked(graphql_error, trace_id).formatted]}})

    async def _send_text(self, text: str) -> None:
        ws = self.websocket
        if isinstance(ws, ASGIWebSocketAdapter):
            try:
                await ws.ws.send_text(text)
            except WebSocketDisconnect as exc:
                raise WebSocketDisconnected from exc
        else:  # another integration: through its own encoder
            await ws.send_json(json.loads(text))
