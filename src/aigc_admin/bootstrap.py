"""The composition root: every adapter and service of the platform, built once from settings into one object.

The API process, the RQ job runner, the scheduler, ``up`` and ``aigc-admin job`` all get their services
from a ``Platform`` (``open_platform``); nothing else constructs adapters. Each part is built on first use
(a job that deploys never builds the gateway, and a worker never reads the JWT or encryption secrets it
does not need) and closed by ``aclose``.

To add an area: build its service here as one more cached property (and register it with the GPU pool if
it holds GPUs); see docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from functools import cached_property
from typing import Any

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError

import aigc_admin
from aigc_admin.adapters import metrics as pm
from aigc_admin.adapters.db import close_db, init_db, migrate
from aigc_admin.adapters.db.accounts import AccountRepo
from aigc_admin.adapters.db.assistants import AssistantRepo
from aigc_admin.adapters.db.audit import AuditRepo
from aigc_admin.adapters.db.channels import ChannelRepo, UsageStore
from aigc_admin.adapters.db.datasets import DatasetRepo
from aigc_admin.adapters.db.deployments import DeploymentRepo
from aigc_admin.adapters.db.dicts import DictRepo
from aigc_admin.adapters.db.evaluations import EvaluationLookup, EvaluationRepo
from aigc_admin.adapters.db.files import FileRepo
from aigc_admin.adapters.db.finetunes import FineTuneLookup, FineTuneRepo, GatedFineTunes, ModelFinisher
from aigc_admin.adapters.db.lookups import Lookups
from aigc_admin.adapters.db.model_registry import ModelRepo
from aigc_admin.adapters.db.templates import TemplateRepo
from aigc_admin.adapters.db.tenants import TenantRepo
from aigc_admin.adapters.events import (
    AuditEventPublisher,
    DeploymentEventPublisher,
    EvaluationProgressPublisher,
    EventHub,
    EventPublisher,
    FineTuneLogPublisher,
)
from aigc_admin.adapters.fastchat.controller import FastChatController
from aigc_admin.adapters.fastchat.managed import ManagedFastChat
from aigc_admin.adapters.fastchat.worker_client import WorkerClient
from aigc_admin.adapters.ldap import LdapDirectory
from aigc_admin.adapters.model_files import ModelFiles
from aigc_admin.adapters.queue import JobQueue
from aigc_admin.adapters.redis_conn import RedisEndpoint
from aigc_admin.adapters.security import Argon2Hasher, FernetBox, JwtTokens, RedisLoginAttempts
from aigc_admin.adapters.storage import FileLines, LocalFileStorage
from aigc_admin.adapters.tokenizer import token_counter
from aigc_admin.adapters.tool_transport import NetworkToolTransport
from aigc_admin.adapters.tracing import head_ratio
from aigc_admin.adapters.vllm import VllmClient
from aigc_admin.domain.accounts.identity import IdentityService
from aigc_admin.domain.accounts.service import AccountRecovery, AccountService
from aigc_admin.domain.assistants.runner import AssistantRunner
from aigc_admin.domain.assistants.service import AssistantService
from aigc_admin.domain.audit.service import AuditService
from aigc_admin.domain.capacity import GpuPool
from aigc_admin.domain.channels.service import ChannelInput, ChannelService
from aigc_admin.domain.dashboard import DashboardService
from aigc_admin.domain.datasets.service import DatasetService
from aigc_admin.domain.deployments.service import DeploymentRunner, DeploymentService, DeployRequest, EngineConfig
from aigc_admin.domain.deployments.templates import TemplateService
from aigc_admin.domain.dicts.service import DictService
from aigc_admin.domain.egress import EgressPolicy, parse_networks
from aigc_admin.domain.evaluations.deploy_for_run import RunDeployments
from aigc_admin.domain.evaluations.gate import GateService
from aigc_admin.domain.evaluations.runner import EvaluationRunner
from aigc_admin.domain.evaluations.service import EvaluationService
from aigc_admin.domain.files.service import FileLimits, FileService
from aigc_admin.domain.finetunes.service import FineTuneJob, FineTuneRunner, FineTuneService, TrainingConfig
from aigc_admin.domain.models.service import ModelService
from aigc_admin.domain.runtime import Runtime, VolumeMount
from aigc_admin.domain.tenants.deletion import TenantDeletion
from aigc_admin.domain.tenants.service import TenantService
from aigc_admin.gateway.admission import Admission
from aigc_admin.gateway.assistants import PublishedAssistants
from aigc_admin.gateway.channel_keys import ChannelKeys, KeyCacheEvictor
from aigc_admin.gateway.keys import KeyCache, invalidation_channel, publish_invalidation
from aigc_admin.gateway.limits import Limiter
from aigc_admin.gateway.model_calls import GatewayModelCalls
from aigc_admin.gateway.router import Gateway
from aigc_admin.gateway.routing import RoutingTable, load_routes
from aigc_admin.gateway.upstream import UpstreamClient
from aigc_admin.gateway.usage import UsageRecorder
from aigc_admin.gateway.usage_journal import UsageJournal
from aigc_admin.loops.health_monitor import HealthMonitor
from aigc_admin.loops.locked import ControlLoop
from aigc_admin.settings import Settings

log = logging.getLogger("aigc_admin")
TRAINING_PROGRAM = f"{aigc_admin.__path__[0]}/engine/finetune.py"


def runtime_for(settings: Settings) -> Runtime:
    """The configured runtime backend, its calls traced when tracing is on."""
    runtime = _backend(settings)
    if settings.tracer_enable:
        from aigc_admin.adapters.tracing import TracedRuntime

        return TracedRuntime(runtime)
    return runtime


def _backend(settings: Settings) -> Runtime:
    """The configured runtime backend (imported only when chosen: docker and kubernetes are heavy)."""
    if settings.runtime_backend == "docker":
        from aigc_admin.adapters.runtime.docker import DockerRuntime

        return DockerRuntime.from_settings(settings)
    if settings.runtime_backend == "kubernetes":
        from aigc_admin.adapters.runtime.kubernetes import KubernetesRuntime

        return KubernetesRuntime.from_settings(settings)
    return local_runtime(settings)


def local_runtime(settings: Settings) -> Runtime:
    from aigc_admin.adapters.runtime.local import LocalRuntime

    return LocalRuntime.from_settings(settings)


def engine_config(settings: Settings) -> EngineConfig:
    local = settings.runtime_backend == "local"
    return EngineConfig(python=settings.engine_python_path if local else "python3",
                        vllm_python=settings.engine_vllm_python_path if local else "python3",
                        vllm_image=settings.engine_vllm_image, image=settings.engine_image,
                        controller_address=settings.service_fschat_controller_host,
                        device=settings.engine_device, start_timeout=float(settings.engine_start_timeout),
                        volumes=tuple(VolumeMount(mount_path=c, host_path=h, read_only=ro)
                                      for h, c, ro in settings.engine_mounts),
                        model_claim=settings.runtime_k8s_volume_name if settings.runtime_backend == "kubernetes"
                        else "", tolerations=tuple(json.loads(settings.runtime_k8s_tolerations or "[]")))


def file_limits(settings: Settings) -> FileLimits:
    return FileLimits(max_bytes=settings.files_max_bytes, max_line_bytes=settings.files_max_line_bytes,
                      max_errors=settings.files_max_errors)


class Platform:
    """Every adapter and service, each built on first use. Open it with ``open_platform``."""

    def __init__(self, settings: Settings, endpoint: RedisEndpoint | None = None) -> None:
        self.settings = settings
        self._given_endpoint = endpoint  # up shares one embedded Redis; jobs are given theirs
        self._tasks: list[asyncio.Task[Any]] = []  # background work that ends when _stop is set
        self._listener: asyncio.Task[Any] | None = None
        self._stop = asyncio.Event()

    # --- shared adapters -------------------------------------------------------------------------------
    @cached_property
    def endpoint(self) -> RedisEndpoint:
        """Where Redis is (an embedded server is started here unless one was given)."""
        return self._given_endpoint or RedisEndpoint.open(self.settings)

    @cached_property
    def redis(self) -> aioredis.Redis:
        return self.endpoint.async_client()

    @cached_property
    def publisher(self) -> EventPublisher:
        return EventPublisher(self.redis, prefix=self.settings.redis_prefix)

    @cached_property
    def events(self) -> EventHub:
        """Subscriptions: one Redis subscription per topic in this process, fanned out locally."""
        return EventHub(self.redis, prefix=self.settings.redis_prefix)

    @cached_property
    def runtime(self) -> Runtime:
        return runtime_for(self.settings)

    @cached_property
    def jobs(self) -> JobQueue:
        return JobQueue(self.endpoint)

    @cached_property
    def controller(self) -> FastChatController:
        return FastChatController(self.settings.service_fschat_controller_host)

    @cached_property
    def gpus(self) -> GpuPool:
        """runtime.gpu.num, shared by every GPU consumer: each registers what it holds here."""
        pool = GpuPool(self.settings.runtime_gpu_num)
        pool.register("deployments", DeploymentRepo().gpus_in_use)
        pool.register("training", FineTuneRepo().gpus_in_use)
        return pool

    @cached_property
    def tokens(self) -> JwtTokens:
        s = self.settings
        return JwtTokens(s.jwt_secret(), issuer=s.server_name, ttl_seconds=s.auth_token_ttl_hours * 3600)

    @cached_property
    def lookups(self) -> Lookups:
        return Lookups()

    # --- services --------------------------------------------------------------------------------------
    @cached_property
    def accounts(self) -> AccountService:
        s = self.settings
        return AccountService(
            accounts=AccountRepo(), hasher=Argon2Hasher(), tokens=self.tokens,
            attempts=RedisLoginAttempts(self.redis, prefix=s.redis_prefix, max_failures=s.auth_lockout_attempts,
                                        lock_seconds=s.auth_lockout_minutes * 60),
            directory=LdapDirectory.from_settings(s) if s.ldap_host else None, group_mapping=s.group_mapping)

    @cached_property
    def account_recovery(self) -> AccountRecovery:
        """Account repairs for an operator at the shell (the database only: no Redis, no secrets)."""
        return AccountRecovery(accounts=AccountRepo(), hasher=Argon2Hasher())

    @cached_property
    def identity(self) -> IdentityService:
        return IdentityService(tokens=self.tokens, accounts=AccountRepo(), tenants=TenantRepo())

    @cached_property
    def tenants(self) -> TenantService:
        return TenantService(tenants=TenantRepo(), jobs=self.jobs)

    @cached_property
    def tenant_deletion(self) -> TenantDeletion:
        return TenantDeletion(tenants=TenantRepo(), deployments=self.deployment_runner, channels=self.channels,
                              training=self.training_runner, models=self.models, datasets=self.datasets,
                              files=self.files, evaluations=self.evaluations)

    @cached_property
    def audit(self) -> AuditService:
        return AuditService(repo=AuditRepo(), publisher=AuditEventPublisher(self.publisher))

    @cached_property
    def dicts(self) -> DictService:
        return DictService(repo=DictRepo())

    @cached_property
    def models(self) -> ModelService:
        return ModelService(repo=ModelRepo(), secrets=FernetBox(self.settings.encryption_key()), files=ModelFiles())

    @cached_property
    def templates(self) -> TemplateService:
        return TemplateService(repo=TemplateRepo())

    @cached_property
    def deployments(self) -> DeploymentService:
        return DeploymentService(repo=DeploymentRepo(), models=self.models, jobs=self.jobs,
                                 events=DeploymentEventPublisher(self.publisher), runtime=self.runtime,
                                 gpus=self.gpus)

    @cached_property
    def dashboard(self) -> DashboardService:
        return DashboardService(deployments=self.deployments, models=self.models, gpus=self.gpus,
                                request_counts=lambda: pm.GATEWAY.requests)

    @cached_property
    def channels(self) -> ChannelService:
        s = self.settings
        return ChannelService(repo=ChannelRepo(), keys=ChannelKeys(s.encryption_key()),
                              cache=KeyCacheEvictor(self.redis, s.redis_prefix))

    @cached_property
    def files(self) -> FileService:
        s = self.settings
        return FileService(repo=FileRepo(), storage=LocalFileStorage(s.storage_dir), limits=file_limits(s),
                           counter=token_counter(s.files_tokenizer_path))

    @cached_property
    def datasets(self) -> DatasetService:
        return DatasetService(repo=DatasetRepo(), files=FileLines(self.settings.storage_dir))

    @cached_property
    def finetunes(self) -> FineTuneService:
        s = self.settings
        return FineTuneService(repo=FineTuneRepo(), lookup=FineTuneLookup(s.storage_dir), gpus=self.gpus,
                               storage_dir=str(s.storage_dir), events=FineTuneLogPublisher(self.publisher),
                               gates=self.gates)

    @cached_property
    def evaluations(self) -> EvaluationService:
        return EvaluationService(repo=EvaluationRepo(), lookup=EvaluationLookup(FileLines(self.settings.storage_dir)),
                                 jobs=self.jobs, events=EvaluationProgressPublisher(self.publisher))

    @cached_property
    def gates(self) -> GateService:
        """Fine-tuning gates: checked when a job is created, their evaluations recorded when training succeeds."""
        return GateService(evaluations=self.evaluations, lookup=self.evaluations.lookup, jobs=self.jobs)

    @cached_property
    def tool_transport(self) -> NetworkToolTransport:
        """Every outbound call of a tool, through the egress guard (egress.allow.networks, the tenant's hosts)."""
        policy = EgressPolicy(allowed_networks=parse_networks(self.settings.egress_allow_networks))
        return NetworkToolTransport(policy, AssistantRepo().egress_hosts)

    @cached_property
    def assistants(self) -> AssistantService:
        return AssistantService(repo=AssistantRepo(), secrets=FernetBox(self.settings.encryption_key()),
                                transport=self.tool_transport)

    @cached_property
    def assistant_runner(self) -> AssistantRunner:
        """Runs assistants (the playground, published ones through /v1 and /mcp) through the model-call path."""
        return AssistantRunner(service=self.assistants, calls=self.model_calls, transport=self.tool_transport,
                               audit=self.audit)

    # --- the workers' side of deployments and fine-tuning ---------------------------------------------------
    @cached_property
    def deployment_runner(self) -> DeploymentRunner:
        return self.deployment_runner_on(self.runtime)

    def deployment_runner_on(self, runtime: Runtime) -> DeploymentRunner:
        """A deployment runner on ``runtime`` (the configured one: ``deployment_runner``)."""
        return DeploymentRunner(repo=DeploymentRepo(), runtime=runtime, controller=self.controller,
                                templates=TemplateRepo(), events=DeploymentEventPublisher(self.publisher),
                                engine=engine_config(self.settings), owner=self.settings.redis_prefix, jobs=self.jobs,
                                vllm=self.vllm)

    @cached_property
    def vllm(self) -> VllmClient:
        """The vllm engine's replicas: readiness, load (their /metrics), LoRA adapters."""
        return VllmClient(self._http)

    @cached_property
    def model_finisher(self) -> ModelFinisher:
        """A fine-tuned model registered, granted to its job's channel (gateways told at once), deployed."""
        async def deploy(job: FineTuneJob, model_id: int) -> None:
            await self.deployments.deploy(DeployRequest(model_id=model_id, gpus_per_replica=job.params.proc_per_node),
                                          tenant_id=job.tenant_id, operator=job.operator)

        async def invalidate(key_hash: str) -> None:
            await publish_invalidation(self.redis, invalidation_channel(self.settings.redis_prefix), key_hash)

        return ModelFinisher(deploy=deploy, invalidate_key=invalidate, files=ModelFiles())

    @cached_property
    def training_runner(self) -> FineTuneRunner:
        s = self.settings
        engine = engine_config(s)
        return FineTuneRunner(
            repo=FineTuneRepo(), runtime=self.runtime, events=FineTuneLogPublisher(self.publisher),
            finisher=self.model_finisher,
            config=TrainingConfig(python=engine.python, program=s.finetune_program or TRAINING_PROGRAM,
                                  max_running=s.finetune_max_running, image=s.finetune_image or s.engine_image,
                                  volumes=engine.volumes, storage_dir=str(s.storage_dir),
                                  program_in_image=bool(s.finetune_program)),
            owner=s.redis_prefix, tenant_code=FineTuneLookup(s.storage_dir).tenant_code, templates=TemplateRepo(),
            gpus=self.gpus, gates=self.gates)

    # --- the workers' side of evaluations ---------------------------------------------------------------
    @cached_property
    def evaluation_runner(self) -> EvaluationRunner:
        """Runs evaluations through the model-call path (``start_model_calls`` first in a job)."""
        deployer = RunDeployments(deployments=self.deployments, runner=self.deployment_runner,
                                  refresh_routes=self.gateway.routes.refresh,
                                  wait_timeout=float(self.settings.engine_start_timeout))
        return EvaluationRunner(repo=EvaluationRepo(), calls=self.model_calls, deployer=deployer,
                                events=EvaluationProgressPublisher(self.publisher))

    @cached_property
    def gate_runner(self) -> GateService:
        """A fine-tuning gate's evaluations run, then the decision: grant and deploy, or not."""
        return GateService(evaluations=self.evaluations, lookup=self.evaluations.lookup, jobs=self.jobs,
                           runner=self.evaluation_runner, gated=GatedFineTunes(FineTuneRepo(), self.model_finisher))

    @cached_property
    def managed_fastchat(self) -> ManagedFastChat | None:
        """The FastChat controller and API server the platform runs itself (fastchat.managed), if it does."""
        s = self.settings
        if not s.fastchat_managed:
            return None
        return ManagedFastChat(runtime=local_runtime(s), python=s.engine_python_path,
                               controller_url=s.service_fschat_controller_host, api_url=s.service_local_ai_host,
                               owner=s.redis_prefix)

    # --- the gateway and the model-call port ----------------------------------------------------------
    @cached_property
    def gateway(self) -> Gateway:
        s = self.settings
        channels = ChannelRepo()
        workers = WorkerClient(self._http)
        routes = RoutingTable(lambda: load_routes(self.models, self.deployments),
                              refresh_interval=s.gateway_routes_refresh)

        async def queue_length(worker: str) -> int | None:
            """A replica's queue: a FastChat worker's worker_get_status, a vLLM server's /metrics."""
            return await (self.vllm if routes.speaks_openai(worker) else workers).queue_length(worker)

        admission = Admission(queue_limit=s.gateway_admission_queue, wait=s.gateway_admission_wait,
                              max_waiting=s.gateway_admission_max_waiting, refresh=s.gateway_admission_refresh,
                              probe=queue_length, count=pm.GATEWAY.admission_outcome)
        return Gateway(
            pepper=s.encryption_key(), keys=KeyCache(channels.snapshot),
            # after Redis lost its data, quota counters wait until every process has written the usage it held
            limiter=Limiter(self.redis, prefix=s.redis_prefix, seeder=channels.used_tokens, leases=True,
                            seed_grace=3 * s.gateway_usage_flush + 1),
            # a mover that dies holding the lock delays the others' moves by at most three flush intervals
            usage=UsageRecorder(s.gateway_usage_flush, UsageStore(), journal=UsageJournal(
                self.redis, self.endpoint.url, prefix=s.redis_prefix, lock_seconds=max(2.0, 3 * s.gateway_usage_flush))
                if s.gateway_usage_journal else None),
            routes=routes,
            workers=workers, upstream=UpstreamClient(connect_timeout=3, timeout=600),
            admission=admission if admission.enabled else None, limits_fail_open=s.gateway_limits_fail_open,
            assistants=PublishedAssistants(lambda: self.assistant_runner), metrics=s.metrics_enable,
            channel_label=s.metrics_channel_label, trace_ratio=head_ratio(s))

    @cached_property
    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=httpx.Timeout(600, connect=3), limits=httpx.Limits(max_connections=1000))

    @cached_property
    def model_calls(self) -> GatewayModelCalls:
        """Chat requests from inside the platform, with the gateway's routing, limits and usage."""
        return GatewayModelCalls(self.gateway, self.channels)

    # --- lifecycle ---------------------------------------------------------------------------------------
    async def first_start(self) -> str | None:
        """First-start data: built-in templates, the default channel (server.aigc.channel.key), the platform
        administrator. Returns the administrator's generated password, if one was made."""
        s = self.settings
        await TemplateRepo().ensure_builtin()
        if s.server_aigc_channel_key:
            tenant = await self.tenants.tenants.get_by_code("default")
            if tenant is None:
                tenant = await self.tenants.create(name="Default", code="default")
            # the original's default channel, with the operator's key (there is no built-in one); no model yet
            if await self.channels.create_with_key(s.server_aigc_channel_key, ChannelInput(alias="default"),
                                                   tenant_id=tenant.id, name="default"):
                log.info("created the default channel (tenant 'default') with the configured key")
        return await self.accounts.ensure_admin(s.server_admin_user, s.server_admin_pass or None)

    def control_loops(self) -> list[ControlLoop]:
        """The API process's control loops: the health monitor and the training scheduler (0 s: off)."""
        s = self.settings
        loops = []
        if s.health_interval > 0:
            monitor = HealthMonitor(runner=self.deployment_runner, controller=self.controller, events=self.publisher,
                                    managed=self.managed_fastchat)
            loops.append(ControlLoop("health-monitor", max(0.5, s.health_interval), monitor.probe_once))
        if s.finetune_interval > 0:
            loops.append(ControlLoop("training-scheduler", max(0.2, s.finetune_interval), self.training_runner.tick))
        return loops

    async def start_model_calls(self) -> None:
        """What ``model_calls`` needs in a process that does not serve (a job) as in one that does: the gateway's
        usage writer, its routing table loaded, and its key cache told of every key change (a channel disabled
        or deleted during an evaluation is refused from its next call). ``serve`` calls it."""
        gw = self.gateway
        gw.usage.start()
        with contextlib.suppress(RedisError, OSError):  # Redis down: it is "new" when first seen again
            await gw.limiter.started()
        try:
            await gw.routes.refresh()
        except Exception as e:  # the database is down: the refresh loop loads the table once it is back
            log.warning("routing table not loaded at start (%s: %s); the refresh loop will", type(e).__name__, e)
        if self._listener is None:  # runs until cancelled by aclose
            self._listener = asyncio.create_task(
                gw.keys.run_invalidation_listener(self.redis, invalidation_channel(self.settings.redis_prefix)),
                name="key-invalidation")

    async def serve(self) -> None:
        """Start what the API process runs in the background: the gateway's caches, usage writer and routing
        table, and the control loops. ``aclose`` stops them."""
        gw, s = self.gateway, self.settings
        await self.start_model_calls()
        self._tasks.append(asyncio.create_task(gw.routes.run(self._stop), name="routes-refresh"))
        if gw.admission is not None:
            served = gw.routes
            self._tasks.append(asyncio.create_task(gw.admission.run(
                lambda: [w for r in served.all() if r.local for w in r.workers], self._stop), name="admission"))
        for loop in self.control_loops():
            self._tasks.append(asyncio.create_task(loop.run(self.redis, prefix=s.redis_prefix, stop=self._stop),
                                                   name=loop.name))

    async def aclose(self) -> None:
        self._stop.set()
        built = self.__dict__
        if "gateway" in built:
            await self.gateway.limiter.aclose()  # settlements still pending reach Redis
            await self.gateway.usage.aclose()  # no usage is lost at shutdown
            await self.gateway.upstream.aclose()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        for task in self._tasks:
            await task
        self._tasks.clear()
        if "_http" in built:
            await self._http.aclose()
        if "tool_transport" in built:
            await self.tool_transport.aclose()
        if "controller" in built:
            await self.controller.aclose()
        if "events" in built:
            await self.events.close()
        if "jobs" in built:
            self.jobs.close()
        close = getattr(built.get("runtime"), "close", None)
        if close is not None:
            close()
        if "redis" in built:
            await self.redis.aclose()
        if "endpoint" in built and self._given_endpoint is None:
            self.endpoint.close()


@contextlib.asynccontextmanager
async def open_platform(settings: Settings, *, endpoint: RedisEndpoint | None = None,
                        apply_migrations: bool = False, wait_for_db: bool = False) -> AsyncIterator[Platform]:
    """The database opened for this process and a ``Platform`` on it (Redis is opened on first use: an embedded
    server is started then, unless ``endpoint`` is given: ``up`` shares one); everything closed again on exit.
    ``wait_for_db``: a database that cannot be reached is tried again every 2 s instead of failing."""
    if apply_migrations:
        await migrate(settings)
    while True:
        try:
            await init_db(settings)
            break
        except Exception as e:
            if not wait_for_db:
                raise
            log.warning("the database cannot be reached (%s: %s); trying again in 2 s", type(e).__name__, e)
            with contextlib.suppress(Exception):
                await close_db()
            await asyncio.sleep(2)
    platform = Platform(settings, endpoint)
    try:
        yield platform
    finally:
        try:
            await platform.aclose()
        finally:
            await close_db()


PLATFORM_STOPPED = "platform restarted: the training was stopped when aigc-admin up stopped; retry the job"


def stop_owned_workloads(settings: Settings, endpoint: RedisEndpoint) -> None:
    """``up`` owns everything it started: running training jobs end FAILED (with a reason that says so), then every
    local workload stops (the FastChat processes, the model workers). Deployments keep their desired state: the
    next ``up`` starts their workers again. (``start`` leaves workloads running: they outlive API restarts.)"""
    async def stop_all() -> None:
        try:
            async with open_platform(settings, endpoint=endpoint) as platform:
                stopped = await platform.training_runner.interrupt_running(PLATFORM_STOPPED)
                if stopped:
                    log.info("%d running training job(s) stopped", stopped)
        except Exception:
            log.exception("could not record the training jobs stopped with the platform")
        await _stop_local_workloads(settings)

    asyncio.run(stop_all())


def stop_leftover_workloads(settings: Settings) -> None:
    """Before ``up`` starts: every local workload a previous ``up`` left behind (killed before its clean-up) is
    stopped; deployments bring their workers back as after any restart."""
    asyncio.run(_stop_local_workloads(settings, "left by an earlier run"))


async def _stop_local_workloads(settings: Settings, why: str = "") -> None:
    runtime: Any = local_runtime(settings)
    for handle in await runtime.list_owned():
        if why:
            log.info("stopping %s, %s", handle.name, why)
        await runtime.stop(handle)
