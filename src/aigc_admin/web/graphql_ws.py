"""GraphQL over WebSocket (graphql-transport-ws) at /graphql as a plain ASGI app in front of FastAPI.

A WebSocket stays open for as long as its subscriptions do, and everything on the path from uvicorn
to strawberry's handler stays suspended with it. Through FastAPI's websocket route that path is the
middleware stack (error, telemetry and body-limit middleware, the exception middleware and its
handler closures), the router, the route's dependency solving and its AsyncExitStacks: ~11 KB per
open connection, a third of the ≤ 30 KB per subscription budget (docs/performance.md, fine-tuning
logs). This app is strawberry's own ASGI view with the router's settings, authentication
(``on_ws_connect``) and context getter; ``PlatformApp`` hands it the WebSocket scopes of /graphql.
HTTP GraphQL (queries, mutations, GraphiQL, uploads) stays on the FastAPI router.

Live streams are relayed here too: a subscription resolver that hands off its live part
(``resolvers.live.hand_off``) has it executed and serialised once per event per group of identical
subscriptions, and the same frame written to each subscriber's socket. See ``resolvers/live.py`` for
the resolver's side and the guarantees.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Any
from weakref import WeakValueDictionary

from graphql import ExecutionResult, GraphQLError, parse
from graphql.execution import Executor, execute_subscription_event
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.fastapi import GraphQLRouter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation

from aigc_admin.adapters import metrics as pm
from aigc_admin.resolvers.extensions import masked
from aigc_admin.resolvers.live import LiveItem, accepting_hand_off

log = logging.getLogger("aigc_admin.graphql")

MEMO_EVENTS = 8  # a group remembers the payload text of its last few shared events


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

    async def run_operation(self, operation: Operation[Any, Any]) -> None:
        pm.WS_SUBSCRIPTIONS.inc()
        try:
            await super().run_operation(operation)
        finally:
            pm.WS_SUBSCRIPTIONS.dec()

    async def _send_result_stream(self, operation: Operation[Any, Any], result_source: Any) -> None:
        stream = await self._stream_until_handed_off(operation, result_source)
        if stream is not None:
            await self._relay(operation, stream)

    async def _stream_until_handed_off(self, operation: Operation[Any, Any],
                                       result_source: Any) -> AsyncGenerator[LiveItem, None] | None:
        with accepting_hand_off() as slot:
            await super()._send_result_stream(operation, result_source)
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


PATH = "/graphql"


class GraphQLWebSocketApp(GraphQL):  # type: ignore[type-arg]
    graphql_transport_ws_handler_class = RelayingTransportWSHandler

    def __init__(self, router: GraphQLRouter[Any, Any],
                 context_getter: Callable[[HTTPConnection], Awaitable[Any]]) -> None:
        super().__init__(router.schema, graphql_ide=None, subscription_protocols=router.protocols,
                         connection_init_wait_timeout=router.connection_init_wait_timeout,
                         max_subscriptions_per_connection=router.max_subscriptions_per_connection)
        self.allowed_origins = router.allowed_origins
        self._router = router
        self._context_getter = context_getter

    async def get_context(self, request: Any, response: Any) -> Any:
        return await self._context_getter(request)

    async def on_ws_connect(self, context: Any) -> Any:
        return await self._router.on_ws_connect(context)
