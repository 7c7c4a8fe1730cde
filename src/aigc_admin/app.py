"""Composition root: builds the FastAPI app, wires concrete adapters into domain services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType
from tortoise import connections

from aigc_admin.adapters.datasets import DatasetRepo, FileLines
from aigc_admin.adapters.db import close_db, init_db, migrate
from aigc_admin.adapters.db.repositories import (
    AccountRepo,
    AuditRepo,
    ChannelRepo,
    DeploymentRepo,
    DictRepo,
    Lookups,
    ModelRepo,
    TemplateRepo,
    TenantRepo,
)
from aigc_admin.adapters.events import (
    AuditEventPublisher,
    DeploymentEventPublisher,
    EventHub,
    EventPublisher,
    FineTuneLogPublisher,
)
from aigc_admin.adapters.fastchat_openai import WorkerClient
from aigc_admin.adapters.files import FileRepo, LocalFileStorage, file_limits, token_counter
from aigc_admin.adapters.finetunes import FineTuneLookup, FineTuneRepo
from aigc_admin.adapters.ldap import LdapDirectory
from aigc_admin.adapters.queue import JobQueue
from aigc_admin.adapters.redis_conn import RedisEndpoint
from aigc_admin.adapters.security import Argon2Hasher, FernetBox, JwtTokens, RedisLoginAttempts
from aigc_admin.datasets_http import router as datasets_router
from aigc_admin.domain.accounts.service import AccountService
from aigc_admin.domain.audit.service import AuditService
from aigc_admin.domain.channels.service import ChannelService
from aigc_admin.domain.datasets.service import DatasetService
from aigc_admin.domain.deployments.service import DeploymentService
from aigc_admin.domain.deployments.templates import TemplateService
from aigc_admin.domain.dicts.service import DictService
from aigc_admin.domain.files.service import FileService
from aigc_admin.domain.finetunes.service import FineTuneService
from aigc_admin.domain.models.service import ModelService
from aigc_admin.domain.tenants.service import TenantService
from aigc_admin.files_http import router as files_router
from aigc_admin.gateway.channel_keys import ChannelKeys, KeyCacheEvictor
from aigc_admin.gateway.keys import KeyCache, invalidation_channel, load_channel_snapshot
from aigc_admin.gateway.limits import Limiter
from aigc_admin.gateway.router import Gateway, GatewayApp
from aigc_admin.gateway.routing import RoutingTable, load_routes
from aigc_admin.gateway.upstream import UpstreamClient
from aigc_admin.gateway.usage import UsageRecorder
from aigc_admin.gc_policy import ConnectionHeap
from aigc_admin.graphql_ws import PATH as GRAPHQL_WS_PATH
from aigc_admin.graphql_ws import GraphQLWebSocketApp
from aigc_admin.http_middleware import TraceIdMiddleware
from aigc_admin.resolvers.context import Context, Services, bearer_token
from aigc_admin.resolvers.live import RelayingTransportWSHandler
from aigc_admin.schema import build_schema
from aigc_admin.settings import Settings
from aigc_admin.workers.monitor import run_monitor
from aigc_admin.workers.training import run_training_scheduler
from aigc_admin.workers.wiring import runtime_for

log = logging.getLogger("aigc_admin")


@dataclass
class Runtime:
    """Process-wide resources opened in the lifespan and closed after it."""

    endpoint: RedisEndpoint
    owns_endpoint: bool
    redis: Any
    hub: EventHub
    services: Services


def build_services(settings: Settings, redis_client: Any, hub: EventHub, endpoint: RedisEndpoint) -> Services:
    publisher = EventPublisher(redis_client, prefix=settings.redis_prefix)
    tokens = JwtTokens(settings.jwt_secret(), issuer=settings.server_name,
                       ttl_seconds=settings.auth_token_ttl_hours * 3600)
    accounts = AccountService(
        accounts=AccountRepo(), hasher=Argon2Hasher(), tokens=tokens,
        attempts=RedisLoginAttempts(redis_client, prefix=settings.redis_prefix,
                                    max_failures=settings.auth_lockout_attempts,
                                    lock_seconds=settings.auth_lockout_minutes * 60),
        directory=LdapDirectory.from_settings(settings) if settings.ldap_host else None,
        group_mapping=settings.group_mapping)
    models = ModelService(repo=ModelRepo(), secrets=FernetBox(settings.encryption_key()))
    channels = ChannelService(repo=ChannelRepo(), keys=ChannelKeys(settings.encryption_key()),
                              cache=KeyCacheEvictor(redis_client, settings.redis_prefix))
    deployments = DeploymentService(
        repo=DeploymentRepo(), models=models, jobs=JobQueue(endpoint),
        events=DeploymentEventPublisher(publisher), runtime=runtime_for(settings),
        gpu_capacity=settings.runtime_gpu_num, other_gpus=FineTuneRepo().gpus_in_use)
    return Services(
        settings=settings, accounts=accounts, tenants=TenantService(tenants=TenantRepo()),
        audit=AuditService(repo=AuditRepo(), publisher=AuditEventPublisher(publisher)),
        dicts=DictService(repo=DictRepo()),
        models=models, deployments=deployments, templates=TemplateService(repo=TemplateRepo()),
        channels=channels, datasets=DatasetService(repo=DatasetRepo(), files=FileLines(settings.storage_dir)),
        files=FileService(repo=FileRepo(), storage=LocalFileStorage(settings.storage_dir),
                          limits=file_limits(settings), counter=token_counter(settings)),
        finetunes=FineTuneService(repo=FineTuneRepo(), lookup=FineTuneLookup(settings.storage_dir),
                                  gpu_capacity=settings.runtime_gpu_num,
                                  storage_dir=str(settings.storage_dir), events=FineTuneLogPublisher(publisher)),
        tokens=tokens, lookups=Lookups(), events=hub)


async def bootstrap(settings: Settings, services: Services) -> str | None:
    """First-start data: built-in inference templates and the platform administrator.

    Returns the administrator's generated password, if one was made."""
    await TemplateRepo().ensure_builtin()
    if settings.server_aigc_channel_key:
        await ensure_default_channel(settings.server_aigc_channel_key, services)
    return await services.accounts.ensure_admin(settings.server_admin_user, settings.server_admin_pass or None)


async def start_gateway(settings: Settings, services: Services, redis_client: Any,
                        stop: asyncio.Event) -> tuple[Gateway, list[asyncio.Task[Any]], Any]:
    """The /v1 gateway's process-wide parts: key cache (+ invalidation listener), limiter, usage
    batching, routing table (+ refresher), HTTP clients. Returns them, their tasks and a closer."""
    import httpx

    keys = KeyCache(load_channel_snapshot)
    usage = UsageRecorder(settings.gateway_usage_flush)
    usage.start()
    routes = RoutingTable(lambda: load_routes(services.models, services.deployments),
                          refresh_interval=settings.gateway_routes_refresh)
    await routes.refresh()
    http = httpx.AsyncClient(timeout=httpx.Timeout(600, connect=3), limits=httpx.Limits(max_connections=1000))
    upstream = UpstreamClient(connect_timeout=3, timeout=600)
    limiter = Limiter(redis_client, prefix=settings.redis_prefix, seeder=ChannelRepo().used_tokens, leases=True)
    gateway = Gateway(pepper=settings.encryption_key(), keys=keys, limiter=limiter, usage=usage, routes=routes,
                      workers=WorkerClient(http), upstream=upstream)
    tasks = [asyncio.create_task(keys.run_invalidation_listener(redis_client, invalidation_channel(
        settings.redis_prefix)), name="key-invalidation"),
             asyncio.create_task(routes.run(stop), name="routes-refresh")]

    async def close() -> None:
        await limiter.aclose()  # settlements still pending reach Redis
        await usage.aclose()  # no usage is lost at shutdown
        await upstream.aclose()
        await http.aclose()

    return gateway, tasks, close


async def ensure_default_channel(key: str, services: Services) -> None:
    """The original's default channel, with the operator's key (there is no built-in one), in a tenant
    'default'. It allows no model until a maintainer grants some."""
    from aigc_admin.domain.channels.service import ChannelInput

    tenant = await services.tenants.tenants.get_by_code("default")
    if tenant is None:
        tenant = await services.tenants.create(name="Default", code="default")
    if await services.channels.create_with_key(key, ChannelInput(alias="default"), tenant_id=tenant.id,
                                               name="default"):
        log.info("created the default channel (tenant 'default') with the configured key")


class PlatformApp(FastAPI):
    """FastAPI for the platform, with the /v1 gateway in front of it as a plain ASGI app (the framework's
    routing and middleware would cost more than the gateway's own work per request)."""

    gateway_app: Any = None
    graphql_ws_app: Any = None  # graphql-transport-ws at /graphql, likewise (see graphql_ws.py)
    ws_heap: ConnectionHeap | None = None  # counts open WebSockets for the GC policy (gc_policy.py)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/") and self.gateway_app is not None:
            await self.gateway_app(scope, receive, send)
            return
        if scope["type"] == "websocket" and scope["path"] == GRAPHQL_WS_PATH and self.graphql_ws_app is not None:
            scope["app"] = self
            heap = self.ws_heap
            if heap is not None:
                heap.opened()
            try:
                await self.graphql_ws_app(scope, receive, send)
            finally:
                if heap is not None:
                    heap.closed()
            return
        await super().__call__(scope, receive, send)


class PlatformGraphQLRouter(GraphQLRouter):
    graphql_transport_ws_handler_class = RelayingTransportWSHandler  # live streams relayed, executed once per event

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


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def create_app(settings: Settings, *, endpoint: RedisEndpoint | None = None) -> FastAPI:
    """The API process. ``endpoint`` lets a caller (``up``) share one embedded Redis with workers."""
    schema = build_schema(max_depth=settings.graphql_max_depth, max_tokens=settings.graphql_max_tokens,
                          max_aliases=settings.graphql_max_aliases)

    ws_heap = ConnectionHeap() if settings.server_gc_freeze else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ep = endpoint or RedisEndpoint.open(settings)
        await migrate(settings)
        await init_db(settings)
        redis_client = ep.async_client()
        hub = EventHub(redis_client, prefix=settings.redis_prefix)
        services = build_services(settings, redis_client, hub, ep)
        generated = await bootstrap(settings, services)
        if generated:
            # Shown once, on the console only (never in the log file): the operator must keep it.
            print(f"\n  Created platform administrator '{settings.server_admin_user}' "
                  f"with password: {generated}\n  (shown once; change it after signing in)\n", flush=True)
        app.state.runtime = Runtime(ep, endpoint is None, redis_client, hub, services)
        gateway_stop = asyncio.Event()
        app.state.gateway, gateway_tasks, gateway_close = await start_gateway(settings, services, redis_client,
                                                                              gateway_stop)
        services.extra["gateway"] = app.state.gateway  # the playground subscription uses it
        log.info("aigc-admin ready at %s/graphql", settings.public_url)
        stop_monitor = asyncio.Event()
        monitor = (asyncio.create_task(run_monitor(settings, redis_client, stop=stop_monitor), name="health-monitor")
                   if settings.health_interval > 0 else None)
        training = (asyncio.create_task(run_training_scheduler(settings, redis_client, services.deployments,
                                                               stop=stop_monitor), name="training-scheduler")
                    if settings.finetune_interval > 0 else None)
        gc_policy = (asyncio.create_task(ws_heap.run(stop_monitor), name="gc-policy")
                     if ws_heap is not None else None)
        try:
            yield
        finally:
            gateway_stop.set()
            await gateway_close()
            for task in gateway_tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            stop_monitor.set()
            for background in (monitor, training, gc_policy):
                if background is not None:
                    await background
            await hub.close()
            await redis_client.aclose()
            await close_db()
            if endpoint is None:
                ep.close()

    app = PlatformApp(title="aigc-admin", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    async def get_context(connection: HTTPConnection) -> Context:
        runtime: Runtime = connection.app.state.runtime
        context = Context(runtime.services)
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
    app.include_router(files_router)

    app.add_middleware(TraceIdMiddleware)

    app.gateway_app = GatewayApp(lambda: getattr(app.state, "gateway", None))
    if settings.cors_enable:
        origins = [o.strip() for o in settings.cors_allow_origins.split(",") if o.strip()]
        cors = {"allow_origins": origins,
                "allow_methods": [m.strip() for m in settings.cors_allow_methods.split(",")],
                "allow_headers": [h.strip() for h in settings.cors_allow_headers.split(",")],
                "expose_headers": [h.strip() for h in settings.cors_expose_headers.split(",")],
                "allow_credentials": settings.cors_allow_credentials and origins != ["*"]}
        app.add_middleware(CORSMiddleware, **cors)  # type: ignore[arg-type]
        app.gateway_app = CORSMiddleware(app.gateway_app, **cors)  # type: ignore[arg-type]

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        runtime: Runtime = request.app.state.runtime
        failing: dict[str, str] = {}
        try:
            await connections.get("default").execute_query("SELECT 1")
        except Exception as e:
            failing["database"] = type(e).__name__
        try:
            await runtime.redis.ping()
        except Exception as e:
            failing["redis"] = type(e).__name__
        if failing:
            return JSONResponse({"status": "unavailable", "failing": failing}, status_code=503)
        return JSONResponse({"status": "ready", "database": settings.db_drive,
                             "redis": "embedded" if runtime.endpoint.embedded else "external"})

    return app
