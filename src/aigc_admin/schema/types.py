"""GraphQL object types, inputs, enums and error types (shape only; resolvers live in resolvers/)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Generic, TypeVar

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from aigc_admin.domain import errors as domain_errors
from aigc_admin.domain.accounts import entities as acc
from aigc_admin.domain.accounts.errors import AccountErrorCode as _AccountErrorCode
from aigc_admin.domain.audit.service import AuditEntry
from aigc_admin.domain.channels import service as chn
from aigc_admin.domain.deployments import entities as dep
from aigc_admin.domain.deployments.service import DeploymentErrorCode as _DeploymentErrorCode
from aigc_admin.domain.dicts.service import DictEntry as _DictEntry
from aigc_admin.domain.dicts.service import DictType as _DictType
from aigc_admin.domain.models import service as mdl
from aigc_admin.domain.roles import TenantRole as _TenantRole
from aigc_admin.domain.tenants import service as ten

T = TypeVar("T")

CommonErrorCode = strawberry.enum(domain_errors.CommonErrorCode, description="Codes of expected mutation failures.")
AccountErrorCode = strawberry.enum(_AccountErrorCode, description="Codes of login and account failures.")
TenantRole = strawberry.enum(_TenantRole, description="A member's role in a tenant.")
DictType = strawberry.enum(_DictType, description="Type of a dictionary value.")
AccountSource = strawberry.enum(acc.AccountSource, description="Where an account's password is kept.")
ModelProvider = strawberry.enum(mdl.Provider, description="Who serves a model.")
ModelType = strawberry.enum(mdl.ModelType, description="What a model does.")
ModelErrorCode = strawberry.enum(mdl.ModelErrorCode, description="Codes of model registry failures.")
DeploymentStatus = strawberry.enum(dep.DeploymentStatus, description="Where a deployment is in its life.")
ChannelErrorCode = strawberry.enum(chn.ChannelErrorCode, description="Codes of channel failures.")
Engine = strawberry.enum(dep.Engine, description="The FastChat worker that serves a deployment.")
DeploymentErrorCode = strawberry.enum(_DeploymentErrorCode, description="Codes of deployment failures.")


@strawberry.type(description="An expected failure of a mutation, tied to an input field when there is one.")
class Error:
    field: str | None
    code: CommonErrorCode  # type: ignore[valid-type]
    message: str


@strawberry.type(description="An expected failure of a login or account mutation.")
class AccountError:
    field: str | None
    code: AccountErrorCode  # type: ignore[valid-type]
    message: str


@strawberry.type(description="One page of a list.")
class Page(Generic[T]):
    items: list[T]
    total_count: int
    offset: int
    limit: int


@strawberry.input(description="Paging of a list: at most 100 items per page.")
class Pagination:
    offset: int = 0
    limit: int = 20


@strawberry.type
class TenantMember:
    account_id: strawberry.ID
    username: str
    role: TenantRole  # type: ignore[valid-type]


@strawberry.type
class Tenant:
    id: strawberry.ID
    name: str
    code: str
    public_tenant_id: str
    remark: str
    created_at: datetime

    @strawberry.field(description="Accounts in this tenant and their roles.")
    async def members(self, info: Info) -> list[TenantMember]:
        rows = await info.context.loaders.members.load(int(self.id))
        return [TenantMember(account_id=strawberry.ID(str(m.account_id)), username=m.username,
                             role=_TenantRole(m.role)) for m in rows]

    @classmethod
    def from_domain(cls, t: ten.Tenant) -> Tenant:
        return cls(id=strawberry.ID(str(t.id)), name=t.name, code=t.code, public_tenant_id=t.public_tenant_id,
                   remark=t.remark, created_at=t.created_at)


@strawberry.type
class Membership:
    tenant_id: strawberry.ID
    role: TenantRole  # type: ignore[valid-type]

    @strawberry.field
    async def tenant(self, info: Info) -> Tenant | None:
        t = await info.context.loaders.tenant.load(int(self.tenant_id))
        return Tenant.from_domain(t) if t else None


@strawberry.type
class Account:
    id: strawberry.ID
    username: str
    email: str
    nickname: str
    source: AccountSource  # type: ignore[valid-type]
    is_platform_admin: bool
    enabled: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def from_domain(cls, a: acc.Account) -> Account:
        return cls(id=strawberry.ID(str(a.id)), username=a.username, email=a.email, nickname=a.nickname,
                   source=a.source, is_platform_admin=a.is_platform_admin, enabled=a.enabled,
                   created_at=a.created_at, last_login_at=a.last_login_at)


@strawberry.type(description="The signed-in account and its tenants.")
class Me:
    account: Account
    memberships: list[Membership]


@strawberry.type
class AuditLog:
    id: strawberry.ID
    trace_id: str
    operator: str
    tenant_id: strawberry.ID | None
    operation: str
    variables: JSON
    duration_ms: int
    success: bool
    error: str
    remote_addr: str
    created_at: datetime | None

    @classmethod
    def from_domain(cls, e: AuditEntry) -> AuditLog:
        return cls(id=strawberry.ID(str(e.id)), trace_id=e.trace_id, operator=e.operator,
                   tenant_id=strawberry.ID(str(e.tenant_id)) if e.tenant_id is not None else None,
                   operation=e.operation,
                   variables=e.variables,  # type: ignore[arg-type]
                   duration_ms=e.duration_ms, success=e.success, error=e.error, remote_addr=e.remote_addr,
                   created_at=e.created_at)

    @classmethod
    def from_event(cls, data: dict) -> AuditLog:
        return cls(id=strawberry.ID(str(data["id"])), trace_id=data["trace_id"], operator=data["operator"],
                   tenant_id=strawberry.ID(str(data["tenant_id"])) if data.get("tenant_id") is not None else None,
                   operation=data["operation"], variables=data.get("variables") or {},  # type: ignore[arg-type]
                   duration_ms=int(data["duration_ms"]), success=bool(data["success"]), error=data.get("error", ""),
                   remote_addr=data.get("remote_addr", ""),
                   created_at=datetime.fromisoformat(data["created_at"]) if data.get("created_at") else None)


@strawberry.type
class DictEntry:
    id: strawberry.ID
    parent_id: strawberry.ID
    code: str
    dict_value: str
    dict_label: str
    dict_type: DictType  # type: ignore[valid-type]
    sort: int
    remark: str
    children: list[DictEntry]

    @classmethod
    def from_domain(cls, d: _DictEntry) -> DictEntry:
        return cls(id=strawberry.ID(str(d.id)), parent_id=strawberry.ID(str(d.parent_id)), code=d.code,
                   dict_value=d.dict_value, dict_label=d.dict_label, dict_type=d.dict_type, sort=d.sort,
                   remark=d.remark, children=[cls.from_domain(c) for c in d.children])


@strawberry.type(description="A registered model. Credentials of external upstreams are never returned.")
class Model:
    id: strawberry.ID
    name: str
    provider: ModelProvider  # type: ignore[valid-type]
    model_type: ModelType  # type: ignore[valid-type]
    max_tokens: int
    parameters: float
    enabled: bool
    remark: str
    is_fine_tuned: bool
    base_url: str
    has_credentials: bool
    model_path: str
    last_operator: str
    created_at: datetime
    tenant_ids: list[strawberry.ID]

    @classmethod
    def from_domain(cls, r: mdl.ModelRecord) -> Model:
        return cls(id=strawberry.ID(str(r.id)), name=r.name, provider=r.provider, model_type=r.model_type,
                   max_tokens=r.max_tokens, parameters=r.parameters, enabled=r.enabled, remark=r.remark,
                   is_fine_tuned=r.is_fine_tuned, base_url=r.base_url, has_credentials=r.has_credentials,
                   model_path=r.model_path, last_operator=r.last_operator, created_at=r.created_at,
                   tenant_ids=[strawberry.ID(str(t)) for t in r.tenant_ids])


@strawberry.type(description="An expected failure of a model registry mutation.")
class ModelError:
    field: str | None
    code: ModelErrorCode  # type: ignore[valid-type]
    message: str


@strawberry.type(description="A model deployed as FastChat workers on the configured runtime.")
class Deployment:
    id: strawberry.ID
    model_id: strawberry.ID
    model_name: str
    tenant_id: strawberry.ID | None
    status: DeploymentStatus  # type: ignore[valid-type]
    reason: str
    engine: Engine  # type: ignore[valid-type]
    replicas: int
    gpus_per_replica: int
    label: str
    quantization: str
    runtime_backend: str
    worker_addresses: list[str]
    operator: str
    created_at: datetime | None
    started_at: datetime | None
    stopped_at: datetime | None

    @classmethod
    def from_domain(cls, d: dep.Deployment) -> Deployment:
        return cls(id=strawberry.ID(str(d.id)), model_id=strawberry.ID(str(d.model_id)), model_name=d.model_name,
                   tenant_id=strawberry.ID(str(d.tenant_id)) if d.tenant_id is not None else None, status=d.status,
                   reason=d.reason, engine=d.engine, replicas=d.replicas, gpus_per_replica=d.gpus_per_replica,
                   label=d.label, quantization=d.quantization, runtime_backend=d.runtime_backend,
                   worker_addresses=list(d.worker_addresses), operator=d.operator, created_at=d.created_at,
                   started_at=d.started_at, stopped_at=d.stopped_at)

    @classmethod
    def from_event(cls, data: dict) -> Deployment:
        def when(key: str) -> datetime | None:
            return datetime.fromisoformat(data[key]) if data.get(key) else None
        return cls(id=strawberry.ID(str(data["id"])), model_id=strawberry.ID(str(data["model_id"])),
                   model_name=data["model_name"],
                   tenant_id=strawberry.ID(str(data["tenant_id"])) if data.get("tenant_id") is not None else None,
                   status=dep.DeploymentStatus(data["status"]), reason=data.get("reason", ""),
                   engine=dep.Engine(data["engine"]), replicas=int(data["replicas"]),
                   gpus_per_replica=int(data["gpus_per_replica"]), label=data.get("label", ""),
                   quantization=data.get("quantization", ""), runtime_backend=data.get("runtime_backend", ""),
                   worker_addresses=list(data.get("worker_addresses", [])), operator=data.get("operator", ""),
                   created_at=when("created_at"), started_at=when("started_at"), stopped_at=when("stopped_at"))


@strawberry.type(description="Log lines of one replica; pass cursor back as since to continue.")
class LogLines:
    lines: list[str]
    cursor: int


@strawberry.type(description="One probe of a worker.")
class HealthProbe:
    worker_address: str
    healthy: bool
    speed: float
    queue_length: int
    detail: str
    checked_at: datetime


@strawberry.type(description="The FastChat controller and the workers of the request's tenant, as last probed.")
class FastChatHealth:
    controller_alive: bool
    checked_at: datetime
    workers: list[HealthProbe]


@strawberry.type(description="How an engine's workers are started (admin only). See docs/deployments.md.")
class InferenceTemplate:
    id: strawberry.ID
    name: str
    engine: str
    content: str
    enabled: bool
    remark: str


@strawberry.type
class InferenceTemplatePayload:
    template: InferenceTemplate | None = None
    errors: list[Error] = strawberry.field(default_factory=list)


@strawberry.input
class CreateInferenceTemplateInput:
    name: str
    engine: str = strawberry.field(description="model_worker or vllm_worker")
    content: str = strawberry.field(description="JSON: {image, command: [...], env: {...}} with ${variables}")
    enabled: bool = True
    remark: str = ""


@strawberry.input
class UpdateInferenceTemplateInput:
    id: strawberry.ID
    content: str | None = None
    enabled: bool | None = None
    remark: str | None = None


@strawberry.type(description="An API key given to an application: allowed models, quota, rate limits. The key "
                                    "itself is shown once, by createChannel and rotateChannelKey.")
class Channel:
    id: strawberry.ID
    name: str
    alias: str
    remark: str
    email: str
    key_prefix: str = strawberry.field(description="The key's first characters, to recognise it.")
    quota: int | None = strawberry.field(description="Tokens the channel may use; null: unlimited.")
    used_tokens: int
    expires_at: datetime | None
    rpm_limit: int | None
    tpm_limit: int | None
    enabled: bool
    model_ids: list[strawberry.ID]
    created_at: datetime | None
    last_operator: str

    @strawberry.field(description="The models this key may call.")
    async def models(self, info: Info) -> list[Model]:
        found = await info.context.loaders.model.load_many([int(i) for i in self.model_ids])
        return [Model.from_domain(m) for m in found if m is not None]

    @classmethod
    def from_domain(cls, c: chn.Channel) -> Channel:
        return cls(id=strawberry.ID(str(c.id)), name=c.name, alias=c.alias, remark=c.remark, email=c.email,
                   key_prefix=c.key_prefix, quota=c.quota, used_tokens=c.used_tokens, expires_at=c.expires_at,
                   rpm_limit=c.rpm_limit, tpm_limit=c.tpm_limit, enabled=c.enabled,
                   model_ids=[strawberry.ID(str(i)) for i in c.model_ids], created_at=c.created_at,
                   last_operator=c.last_operator)


@strawberry.type(description="Usage of one channel and model on one day (UTC).")
class ChannelUsage:
    channel_id: strawberry.ID
    model: str
    day: str
    requests: int
    prompt_tokens: int
    completion_tokens: int


@strawberry.type
class ChannelError:
    field: str | None
    code: ChannelErrorCode  # type: ignore[valid-type]
    message: str


@strawberry.type
class ChannelPayload:
    channel: Channel | None = None
    key: str | None = strawberry.field(default=None, description="Only on create and rotate: keep it, it is "
                                                                "not shown again.")
    errors: list[ChannelError] = strawberry.field(default_factory=list)


@strawberry.input
class ChannelInput:
    alias: str | None = None
    remark: str | None = None
    email: str | None = None
    quota: int | None = strawberry.field(default=None, description="Tokens; see unlimitedQuota.")
    unlimited_quota: bool | None = None
    expires_at: datetime | None = None
    never_expires: bool | None = None
    rpm_limit: int | None = strawberry.field(default=None, description="Requests per minute; see unlimitedRpm.")
    unlimited_rpm: bool | None = strawberry.field(default=None, description="true: no RPM limit.")
    tpm_limit: int | None = strawberry.field(default=None, description="Tokens per minute; see unlimitedTpm.")
    unlimited_tpm: bool | None = strawberry.field(default=None, description="true: no TPM limit.")
    enabled: bool | None = None
    model_ids: list[strawberry.ID] | None = None


@strawberry.input
class PlaygroundMessage:
    role: str
    content: str


@strawberry.input(description="A chat completion for the admin UI's playground, charged to a channel of the tenant.")
class PlaygroundInput:
    channel_id: strawberry.ID
    model: str
    messages: list[PlaygroundMessage]
    max_tokens: int | None = None
    temperature: float | None = None


@strawberry.type(description="A piece of the streamed answer; the last one has finishReason (or error).")
class PlaygroundChunk:
    content: str
    finish_reason: str | None = None
    error: str | None = None


@strawberry.input
class UpdateChannelInput(ChannelInput):
    id: strawberry.ID = strawberry.field(description="The channel.")


@strawberry.type(description="An expected failure of a deployment mutation.")
class DeploymentError:
    field: str | None
    code: DeploymentErrorCode  # type: ignore[valid-type]
    message: str


# --- inputs ---------------------------------------------------------------------------------
@strawberry.input
class DeployModelInput:
    model_id: strawberry.ID
    replicas: int = 1
    gpus_per_replica: int = 0
    label: str = strawberry.field(default="", description="Node label value (Kubernetes nodeSelector).")
    quantization: str = strawberry.field(default="", description="'' or '8bit'.")
    engine: Engine = dep.Engine.MODEL_WORKER  # type: ignore[valid-type]


@strawberry.input
class ScaleDeploymentInput:
    id: strawberry.ID
    replicas: int


@strawberry.input
class CreateModelInput:
    name: str
    provider: ModelProvider = mdl.Provider.LOCAL  # type: ignore[valid-type]
    model_type: ModelType = mdl.ModelType.CHAT  # type: ignore[valid-type]
    max_tokens: int = 2048
    parameters: float = 0
    enabled: bool = True
    remark: str = ""
    base_url: str = strawberry.field(default="", description="External upstream only.")
    credentials: str = strawberry.field(default="", description="External upstream API key; stored encrypted.")
    model_path: str = strawberry.field(default="", description="Local models: directory of the weights.")
    tenant_ids: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.input
class UpdateModelInput:
    id: strawberry.ID
    model_type: ModelType | None = None  # type: ignore[valid-type]
    max_tokens: int | None = None
    parameters: float | None = None
    enabled: bool | None = None
    remark: str | None = None
    base_url: str | None = None
    credentials: str | None = strawberry.field(default=None, description="\"\" clears them.")
    model_path: str | None = None
    tenant_ids: list[strawberry.ID] | None = None


@strawberry.input
class ModelFilter:
    search: str | None = None
    provider: ModelProvider | None = None  # type: ignore[valid-type]


@strawberry.input
class LoginInput:
    username: str
    password: str


@strawberry.input
class CreateTenantInput:
    name: str
    code: str
    remark: str = ""


@strawberry.input
class UpdateTenantInput:
    id: strawberry.ID
    name: str | None = None
    remark: str | None = None


@strawberry.input
class CreateAccountInput:
    username: str
    password: str
    email: str = ""
    nickname: str = ""
    is_platform_admin: bool = False


@strawberry.input
class UpdateAccountInput:
    id: strawberry.ID
    email: str | None = None
    nickname: str | None = None
    enabled: bool | None = None
    is_platform_admin: bool | None = None
    password: str | None = None


@strawberry.input
class SetMembershipInput:
    tenant_id: strawberry.ID
    account_id: strawberry.ID
    role: TenantRole  # type: ignore[valid-type]


@strawberry.input
class RemoveMembershipInput:
    tenant_id: strawberry.ID
    account_id: strawberry.ID


@strawberry.input
class AuditLogFilter:
    operator: str | None = None
    tenant_id: strawberry.ID | None = None
    operation: str | None = None
    trace_id: str | None = None
    success: bool | None = None
    min_duration_ms: int | None = None
    start: datetime | None = None
    end: datetime | None = None


@strawberry.input
class DictFilter:
    code: str | None = None
    label: str | None = None
    parent_id: strawberry.ID | None = None


@strawberry.input
class CreateDictInput:
    code: str
    dict_value: str
    dict_label: str
    parent_id: strawberry.ID = strawberry.ID("0")
    dict_type: DictType = _DictType.STRING  # type: ignore[valid-type]
    sort: int = 0
    remark: str = ""


@strawberry.input
class UpdateDictInput:
    id: strawberry.ID
    code: str | None = None
    dict_value: str | None = None
    dict_label: str | None = None
    dict_type: DictType | None = None  # type: ignore[valid-type]
    sort: int | None = None
    remark: str | None = None


# --- payloads -------------------------------------------------------------------------------
@strawberry.type
class LoginPayload:
    token: str | None = None
    account: Account | None = None
    errors: list[AccountError] = strawberry.field(default_factory=list)


@strawberry.type
class AccountPayload:
    account: Account | None = None
    errors: list[AccountError] = strawberry.field(default_factory=list)


@strawberry.type
class TenantPayload:
    tenant: Tenant | None = None
    errors: list[Error] = strawberry.field(default_factory=list)


@strawberry.type
class DictPayload:
    entry: DictEntry | None = None
    errors: list[Error] = strawberry.field(default_factory=list)


@strawberry.type
class ModelPayload:
    model: Model | None = None
    errors: list[ModelError] = strawberry.field(default_factory=list)


@strawberry.type
class DeploymentPayload:
    deployment: Deployment | None = None
    errors: list[DeploymentError] = strawberry.field(default_factory=list)


@strawberry.type(description="Result of a delete or another mutation with nothing to return.")
class OkPayload:
    ok: bool = False
    errors: list[Error] = strawberry.field(default_factory=list)


def to_json(value: object) -> str:
    return json.dumps(value, default=str)
