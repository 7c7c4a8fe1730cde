"""The API process's ASGI app: GraphQL over HTTP and WebSocket, the /v1 gateway, the REST routes for files and
datasets, /healthz and /readyz. Entry point only: the services come from the composition root (bootstrap)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.requests import HTTPConnection
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType
from tortoise import connections

from aigc_admin.adapters import metrics as pm
from aigc_admin.adapters import tracing
from aigc_admin.adapters.redis_conn import RedisEndpoint
from aigc_admin.bootstrap import Platform, open_platform
from aigc_admin.gateway.router import GatewayApp
from aigc_admin.resolvers.context import Context, bearer_token
from aigc_admin.resolvers.root import build_schema
from aigc_admin.settings import Settings
from aigc_admin.web import graphql_patches, ui
from aigc_admin.web.datasets import router as datasets_router
from aigc_admin.web.evaluations import router as evaluations_router
from aigc_admin.web.files import router as files_router
from aigc_admin.web.gc_policy import ConnectionHeap
from aigc_admin.web.graphql_ws import PATH as GRAPHQL_WS_PATH
from aigc_admin.web.graphql_ws import GraphQLWebSocketApp, RelayingTransportWSHandler
from aigc_admin.web.mcp import McpApp
from aigc_admin.web.metrics import router as metrics_router
from aigc_admin.web.middleware import BodyLimit, TraceIdMiddleware

log = logging.getLogger("aigc_admin")


class PlatformApp(FastAPI):
    """FastAPI for the platform, with the /v1 gateway in front of it as a plain ASGI app (the framework's
    routing and middleware would cost more than the gateway's own work per request)."""

    gateway_app: Any = None
    mcp_app: Any = None  # the MCP endpoint at /mcp, likewise (see mcp.py)
    graphql_ws_app: Any = None  # graphql-transport-ws at /graphql, likewise (see graphql_ws.py)
    ws_heap: ConnectionHeap | None = None  # counts open WebSockets for the GC policy (gc_policy.py)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/") and self.gateway_app is not None:
            await self.gateway_app(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"] in ("/mcp", "/mcp/") and self.mcp_app is not None:
            await self.mcp_app(scope, receive, send)
            return
        if scope["type"] == "websocket" and scope["path"] == GRAPHQL_WS_PATH and self.graphql_ws_app is not None:
            scope["app"] = self
            heap = self.ws_heap
            if heap is not None:
                heap.opened()
            pm.WS_CONNECTIONS.inc()
            try:
                await self.graphql_ws_app(scope, receive, send)
            finally:
                pm.WS_CONNECTIONS.dec()
                if heap is not None:
                    heap.closed()
            return
        await super().__call__(scope, receive, send)


class PlatformGraphQLRouter(GraphQLRouter):
    graphql_transport_ws_handler_class = RelayingTransportWSHandler  # live streams relayed, executed once per event

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """GraphiQL from the UI's build (offline, signed in as the UI's user); Strawberry's CDN page without it."""
        page = ui.graphiql_page()
        if page is None:
            return await super().render_graphql_ide(request)
        return HTMLResponse(page, headers=ui.NO_CACHE)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:  # type: ignore[override]
        """Authenticate a graphql-transport-ws connection from its connection_init payload."""
        params = context.connection_params or {}
        token = bearer_token(_str(params.get("Authorization") or params.get("authorization")),
                             _str(params.get("X-Token") or params.get("token")))
        tenant = _str(params.get("X-Tenant-Id") or params.get("tenantId"))
        if token or tenant:
            await context.authenticate(token, tenant)
            if context.auth_error or context.tenant_error:
                raise ConnectionRejectionError({"message": context.auth_error or context.tenant_error})
        return UNSET


def announce_admin_password(settings: Settings, generated: str | None) -> None:
    """Shown once, on the console only (never in the log file): the operator must keep it."""
    if generated:
        print(f"\n  Created platform administrator '{settings.server_admin_user}' "
              f"with password: {generated}\n  (shown once; change it after signing in)\n", flush=True)


def app_from_environment() -> FastAPI:
    """The app of one of `start`'s API processes: its settings are the parent's, passed as AIGC_* variables."""
    from aigc_admin.settings import load_settings

    return create_app(load_settings(), prepared=True)


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def platform_of(connection: HTTPConnection) -> Platform:
    return connection.app.state.platform  # type: ignore[no-any-return]


def create_app(settings: Settings, *, endpoint: RedisEndpoint | None = None, prepared: bool = False) -> FastAPI:
    """The API process. ``endpoint`` lets a caller (``up``) share one embedded Redis with workers. ``prepared``:
    one of `start`'s processes, whose parent applied the migrations and wrote the first-start data; it does
    neither, and waits for the database if it is down (a process replaced during an outage must not exit: its
    supervisor would stop every process)."""
    graphql_patches.apply()  # graphql-core 3.3 keeps a memo per subscription that grows with every event
    schema = build_schema(max_depth=settings.graphql_max_depth, max_tokens=settings.graphql_max_tokens,
                          max_aliases=settings.graphql_max_aliases, tracing=settings.tracer_enable)
    ws_heap = ConnectionHeap() if settings.server_gc_freeze else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tracing.setup(settings, "api")
        async with open_platform(settings, endpoint=endpoint, apply_migrations=not prepared,
                                 wait_for_db=prepared) as platform:
            if not prepared:
                announce_admin_password(settings, await platform.first_start())
            app.state.platform = platform
            await platform.serve()
            if settings.web_embed and ui.built():
                log.info("aigc-admin ready: the admin UI at %s/, GraphQL at %s/graphql", settings.public_url,
                         settings.public_url)
            else:
                log.info("aigc-admin ready at %s/graphql", settings.public_url)
            stop = asyncio.Event()
            gc_policy = asyncio.create_task(ws_heap.run(stop), name="gc-policy") if ws_heap is not None else None
            try:
                async with mcp_endpoint.running():  # the MCP SDK's task group: stopped before the platform closes
                    yield
            finally:
                stop.set()
                if gc_policy is not None:
                    await gc_policy

    app = PlatformApp(title="aigc-admin", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    async def get_context(connection: HTTPConnection) -> Context:
        context = Context(platform_of(connection))
        context.remote_addr = connection.client.host if connection.client else ""
        context.trace_id = getattr(connection.state, "trace_id", context.trace_id)
        h = connection.headers
        await context.authenticate(bearer_token(h.get("authorization"), h.get("x-token")), h.get("x-tenant-id"))
        return context

    router = PlatformGraphQLRouter(schema, context_getter=get_context,
                                   graphql_ide="graphiql" if settings.graphql_graphiql else None,
                                   subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
                                   multipart_uploads_enabled=True)  # auth is header-only: no CSRF
    app.include_router(router, prefix="/graphql")
    app.graphql_ws_app = GraphQLWebSocketApp(router, get_context)
    app.ws_heap = ws_heap
    app.include_router(datasets_router)
    app.include_router(evaluations_router)
    app.include_router(files_router)
    app.include_router(metrics_router)

    app.add_middleware(BodyLimit, max_bytes=settings.server_max_body_bytes, upload_bytes=settings.files_max_bytes)
    app.add_middleware(TraceIdMiddleware)  # outermost: the 413s carry a trace id too

    def gateway() -> Any:
        platform = getattr(app.state, "platform", None)
        return platform.gateway if platform is not None else None

    app.gateway_app = GatewayApp(gateway)
    app.mcp_app = mcp_endpoint = McpApp(gateway)
    if settings.cors_enable:
        origins = [o.strip() for o in settings.cors_allow_origins.split(",") if o.strip()]
        cors = {"allow_origins": origins,
                "allow_methods": [m.strip() for m in settings.cors_allow_methods.split(",")],
                "allow_headers": [h.strip() for h in settings.cors_allow_headers.split(",")],
                "expose_headers": [h.strip() for h in settings.cors_expose_headers.split(",")],
                "allow_credentials": settings.cors_allow_credentials and origins != ["*"]}
        app.add_middleware(CORSMiddleware, **cors)  # type: ignore[arg-type]
        app.gateway_app = CORSMiddleware(app.gateway_app, **cors)  # type: ignore[arg-type]
        app.mcp_app = CORSMiddleware(app.mcp_app, **cors)  # type: ignore[arg-type]

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        platform = platform_of(request)
        failing: dict[str, str] = {}
        try:
            await connections.get("default").execute_query("SELECT 1")
        except Exception as e:
            failing["database"] = type(e).__name__
        try:
            await platform.redis.ping()
        except Exception as e:
            failing["redis"] = type(e).__name__
        if failing:
            return JSONResponse({"status": "unavailable", "failing": failing}, status_code=503)
        return JSONResponse({"status": "ready", "database": settings.db_drive,
                             "redis": "embedded" if platform.endpoint.embedded else "external"})

    if settings.web_embed:
        ui.mount(app)  # last: the API's routes win over the app's paths
    return app
