"""GraphQL over WebSocket (graphql-transport-ws) at /graphql as a plain ASGI app in front of FastAPI.

A WebSocket stays open for as long as its subscriptions do, and everything on the path from uvicorn
to strawberry's handler stays suspended with it. Through FastAPI's websocket route that path is the
middleware stack (error, telemetry and body-limit middleware, the exception middleware and its
handler closures), the router, the route's dependency solving and its AsyncExitStacks: ~11 KB per
open connection, a third of the ≤ 30 KB per subscription budget (docs/performance.md, fine-tuning
logs). This app is strawberry's own ASGI view with the router's settings, authentication
(``on_ws_connect``) and context getter; ``PlatformApp`` hands it the WebSocket scopes of /graphql.
HTTP GraphQL (queries, mutations, GraphiQL, uploads) stays on the FastAPI router.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import HTTPConnection
from strawberry.asgi import GraphQL
from strawberry.fastapi import GraphQLRouter

from aigc_admin.resolvers.live import RelayingTransportWSHandler

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
