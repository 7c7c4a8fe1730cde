"""Tortoise implementations of the domain's repository ports: rows in, entities out."""

from __future__ import annotations

import builtins
import json
from datetime import date, datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from aigc_admin.adapters.db import models as m
from aigc_admin.domain.accounts.entities import Account, AccountSource
from aigc_admin.domain.audit.service import AuditEntry, AuditFilter
from aigc_admin.domain.channels.service import Channel, UsageRow
from aigc_admin.domain.deployments.entities import (
    ACTIVE_STATUSES,
    Deployment,
    DeploymentStatus,
    Engine,
    HealthRecord,
)
from aigc_admin.domain.deployments.templates import BUILTIN as BUILTIN_TEMPLATES
from aigc_admin.domain.deployments.templates import FINETUNE as TRAINING_TEMPLATE
from aigc_admin.domain.deployments.templates import InferenceTemplate
from aigc_admin.domain.dicts.service import DictEntry, DictType
from aigc_admin.domain.models.service import ModelRecord, ModelType, Provider
from aigc_admin.domain.roles import TenantRole
from aigc_admin.domain.tenants.service import Member, Tenant


def _account(row: m.Account) -> Account:
    return Account(id=row.id, username=row.username, email=row.email, nickname=row.nickname,
                   source=AccountSource(row.source), is_platform_admin=row.is_platform_admin,
                   enabled=row.enabled, created_at=row.created_at, last_login_at=row.last_login_at)


class AccountRepo:
    async def get(self, account_id: int) -> Account | None:
        row = await m.Account.get_or_none(id=account_id)
        return _account(row) if row else None

    async def get_many(self, ids: builtins.list[int]) -> dict[int, Account]:
        return {r.id: _account(r) for r in await m.Account.filter(id__in=ids)}

    async def get_by_username(self, username: str) -> Account | None:
        row = await m.Account.get_or_none(username=username)
        return _account(row) if row else None

    async def password_hash(self, account_id: int) -> str:
        row = await m.Account.get(id=account_id).only("id", "password_hash")
        return row.password_hash

    async def create(self, *, username: str, email: str, nickname: str, password_hash: str,
                     source: AccountSource, is_platform_admin: bool) -> Account:
        row = await m.Account.create(username=username, email=email, nickname=nickname,
                                     password_hash=password_hash, source=source.value,
                                     is_platform_admin=is_platform_admin)
        return _account(row)

    async def update(self, account_id: int, **changes: object) -> Account:
        await m.Account.filter(id=account_id).update(**changes)
        return _account(await m.Account.get(id=account_id))

    async def delete(self, account_id: int) -> None:
        await m.Account.filter(id=account_id).delete()

    async def list(self, *, offset: int, limit: int, search: str | None) -> tuple[builtins.list[Account], int]:
        qs = m.Account.all()
        if search:
            qs = qs.filter(Q(username__icontains=search) | Q(email__icontains=search) | Q(nickname__icontains=search))
        total = await qs.count()
        rows = await qs.order_by("id").offset(offset).limit(limit)
        return [_account(r) for r in rows], total

    async def memberships(self, account_id: int) -> dict[int, TenantRole]:
        rows = await m.TenantMembership.filter(account_id=account_id).values_list("tenant_id", "role")
        return {int(t): TenantRole(r) for t, r in rows}

    async def set_membership(self, tenant_id: int, account_id: int, role: TenantRole) -> None:
        await m.TenantMembership.update_or_create(
            defaults={"role": role.value}, tenant_id=tenant_id, account_id=account_id)

    async def remove_membership(self, tenant_id: int, account_id: int) -> bool:
        return bool(await m.TenantMembership.filter(tenant_id=tenant_id, account_id=account_id).delete())

    async def tenant_ids_by_code(self, codes: builtins.list[str]) -> dict[str, int]:
        if not codes:
            return {}
        return {c: int(i) for c, i in await m.Tenant.filter(code__in=codes).values_list("code", "id")}


def _tenant(row: m.Tenant) -> Tenant:
    return Tenant(id=row.id, name=row.name, code=row.code, public_tenant_id=row.public_tenant_id,
                  remark=row.remark, created_at=row.created_at)


class TenantRepo:
    async def get(self, tenant_id: int) -> Tenant | None:
        row = await m.Tenant.get_or_none(id=tenant_id)
        return _tenant(row) if row else None

    async def get_many(self, ids: builtins.list[int]) -> dict[int, Tenant]:
        return {r.id: _tenant(r) for r in await m.Tenant.filter(id__in=ids)}

    async def get_by_code(self, code: str) -> Tenant | None:
        row = await m.Tenant.get_or_none(code=code)
        return _tenant(row) if row else None

    async def create(self, *, name: str, code: str, public_tenant_id: str, remark: str) -> Tenant:
        return _tenant(await m.Tenant.create(name=name, code=code, public_tenant_id=public_tenant_id, remark=remark))

    async def update(self, tenant_id: int, **changes: object) -> Tenant:
        await m.Tenant.filter(id=tenant_id).update(**changes)
        return _tenant(await m.Tenant.get(id=tenant_id))

    async def delete(self, tenant_id: int) -> None:
        async with in_transaction():
            await m.TenantMembership.filter(tenant_id=tenant_id).delete()
            await m.Tenant.filter(id=tenant_id).delete()

    async def list(self, *, offset: int, limit: int, search: str | None,
                   only_ids: builtins.list[int] | None) -> tuple[builtins.list[Tenant], int]:
        qs = m.Tenant.all()
        if only_ids is not None:
            qs = qs.filter(id__in=only_ids)
        if search:
            qs = qs.filter(Q(name__icontains=search) | Q(code__icontains=search))
        total = await qs.count()
        return [_tenant(r) for r in await qs.order_by("id").offset(offset).limit(limit)], total

    async def members(self, tenant_id: int) -> builtins.list[Member]:
        return (await self.members_of([tenant_id])).get(tenant_id, [])

    async def members_of(self, tenant_ids: builtins.list[int]) -> dict[int, builtins.list[Member]]:
        """Members of several tenants in one query (the dataloader's batch)."""
        rows = await (m.TenantMembership.filter(tenant_id__in=tenant_ids).order_by("id")
                      .values_list("tenant_id", "account_id", "account__username", "role"))
        out: dict[int, builtins.list[Member]] = {}
        for tenant_id, account_id, username, role in rows:
            out.setdefault(int(tenant_id), []).append(Member(int(account_id), str(username), str(role)))
        return out


def _audit(row: m.SysAudit) -> AuditEntry:
    return AuditEntry(id=row.id, trace_id=row.trace_id, operator=row.operator, account_id=row.account_id,
                      tenant_id=row.tenant_id, operation=row.operation, variables=json.loads(row.variables or "{}"),
                      duration_ms=row.duration_ms, success=row.success, error=row.error,
                      remote_addr=row.remote_addr, created_at=row.created_at)


class AuditRepo:
    async def add(self, entry: AuditEntry) -> AuditEntry:
        row = await m.SysAudit.create(
            trace_id=entry.trace_id, operator=entry.operator, account_id=entry.account_id,
            tenant_id=entry.tenant_id, operation=entry.operation,
            variables=json.dumps(entry.variables, default=str, ensure_ascii=False),
            duration_ms=entry.duration_ms, success=entry.success, error=entry.error[:4000],
            remote_addr=entry.remote_addr)
        return _audit(row)

    async def list(self, flt: AuditFilter, *, offset: int, limit: int) -> tuple[builtins.list[AuditEntry], int]:
        qs = m.SysAudit.all()
        conditions: dict[str, Any] = {
            "operator": flt.operator, "tenant_id": flt.tenant_id, "operation": flt.operation,
            "trace_id": flt.trace_id, "success": flt.success, "duration_ms__gte": flt.min_duration_ms,
            "created_at__gte": flt.start, "created_at__lt": flt.end,
        }
        qs = qs.filter(**{k: v for k, v in conditions.items() if v is not None})
        if flt.visible_tenants is not None:
            qs = qs.filter(tenant_id__in=flt.visible_tenants)
        total = await qs.count()
        return [_audit(r) for r in await qs.order_by("-id").offset(offset).limit(limit)], total

    async def delete_older_than(self, cutoff: datetime) -> int:
        return int(await m.SysAudit.filter(created_at__lt=cutoff).delete())


def _dict(row: m.SysDict) -> DictEntry:
    return DictEntry(id=row.id, parent_id=row.parent_id, code=row.code, dict_value=row.dict_value,
                     dict_label=row.dict_label, dict_type=DictType(row.dict_type), sort=row.sort, remark=row.remark)


class DictRepo:
    async def get(self, entry_id: int) -> DictEntry | None:
        row = await m.SysDict.get_or_none(id=entry_id)
        return _dict(row) if row else None

    async def create(self, **values: object) -> DictEntry:
        return _dict(await m.SysDict.create(**values))  # type: ignore[arg-type]

    async def update(self, entry_id: int, **changes: object) -> DictEntry:
        await m.SysDict.filter(id=entry_id).update(**changes)
        return _dict(await m.SysDict.get(id=entry_id))

    async def delete(self, entry_ids: builtins.list[int]) -> None:
        await m.SysDict.filter(id__in=entry_ids).delete()

    async def list(self, *, code: str | None, label: str | None, parent_id: int | None,
                   offset: int, limit: int) -> tuple[builtins.list[DictEntry], int]:
        qs = m.SysDict.all()
        if code:
            qs = qs.filter(code__icontains=code)
        if label:
            qs = qs.filter(dict_label__icontains=label)
        if parent_id is not None:
            qs = qs.filter(parent_id=parent_id)
        total = await qs.count()
        return [_dict(r) for r in await qs.order_by("sort", "id").offset(offset).limit(limit)], total

    async def all_for_codes(self, codes: builtins.list[str]) -> builtins.list[DictEntry]:
        level = [_dict(r) for r in await m.SysDict.filter(parent_id=0, code__in=codes)]
        found = list(level)
        while level:
            level = [_dict(r) for r in await m.SysDict.filter(parent_id__in=[e.id for e in level])]
            found += level
        return found


class Lookups:
    """Batch reads for per-request dataloaders."""

    def __init__(self) -> None:
        self._accounts = AccountRepo()
        self._tenants = TenantRepo()

    async def accounts_by_id(self, ids: builtins.list[int]) -> dict[int, Account]:
        return await self._accounts.get_many(ids)

    async def tenants_by_id(self, ids: builtins.list[int]) -> dict[int, Tenant]:
        return await self._tenants.get_many(ids)

    async def members_by_tenant(self, ids: builtins.list[int]) -> dict[int, builtins.list[Member]]:
        return await self._tenants.members_of(ids)

    async def models_by_id(self, ids: builtins.list[int]) -> dict[int, ModelRecord]:
        return await ModelRepo().get_many(ids)


def _model(row: m.LLMModel, tenant_ids: builtins.list[int]) -> ModelRecord:
    return ModelRecord(id=row.id, name=row.model_name, provider=Provider(row.provider_name),
                       model_type=ModelType(row.model_type), max_tokens=row.max_tokens,
                       parameters=float(row.parameters), enabled=row.enabled, remark=row.remark,
                       is_fine_tuned=row.is_fine_tuning, base_url=row.base_url,
                       has_credentials=bool(row.upstream_secret), model_path=row.model_path,
                       created_at=row.created_at, last_operator=row.last_operator, tenant_ids=tuple(sorted(tenant_ids)))


class ModelRepo:
    async def _tenant_ids(self, model_ids: builtins.list[int]) -> dict[int, builtins.list[int]]:
        """Tenants of several models in one query."""
        out: dict[int, builtins.list[int]] = {}
        if model_ids:
            pairs = await m.Tenant.filter(models__id__in=model_ids).values_list("models__id", "id")
            for model_id, tenant_id in pairs:
                out.setdefault(int(model_id), []).append(int(tenant_id))
        return out

    async def _one(self, row: m.LLMModel | None) -> ModelRecord | None:
        if row is None:
            return None
        return _model(row, (await self._tenant_ids([row.id])).get(row.id, []))

    async def get(self, model_id: int) -> ModelRecord | None:
        return await self._one(await m.LLMModel.get_or_none(id=model_id))

    async def get_many(self, ids: builtins.list[int]) -> dict[int, ModelRecord]:
        rows = await m.LLMModel.filter(id__in=ids) if ids else []
        tenants = await self._tenant_ids([r.id for r in rows])
        return {r.id: _model(r, tenants.get(r.id, [])) for r in rows}

    async def get_by_name(self, name: str) -> ModelRecord | None:
        return await self._one(await m.LLMModel.get_or_none(model_name=name))

    async def create(self, record: ModelRecord, credentials_cipher: str) -> ModelRecord:
        async with in_transaction():
            row = await m.LLMModel.create(
                model_name=record.name, provider_name=record.provider.value, model_type=record.model_type.value,
                max_tokens=record.max_tokens, parameters=record.parameters, enabled=record.enabled,
                remark=record.remark, is_fine_tuning=record.is_fine_tuned, is_private=record.provider == "local",
                base_url=record.base_url, upstream_secret=credentials_cipher, model_path=record.model_path,
                last_operator=record.last_operator)
            if record.tenant_ids:
                await row.tenants.add(*await m.Tenant.filter(id__in=record.tenant_ids))
        return await self.get(row.id)  # type: ignore[return-value]

    async def update(self, model_id: int, changes: dict[str, object],
                     tenant_ids: builtins.list[int] | None) -> ModelRecord:
        async with in_transaction():
            if changes:
                await m.LLMModel.filter(id=model_id).update(**changes)
            if tenant_ids is not None:
                row = await m.LLMModel.get(id=model_id)
                await row.tenants.clear()
                if tenant_ids:
                    await row.tenants.add(*await m.Tenant.filter(id__in=tenant_ids))
        return await self.get(model_id)  # type: ignore[return-value]

    async def delete(self, model_id: int) -> None:
        await m.LLMModel.filter(id=model_id).delete()

    async def list(self, *, tenant_id: int | None, search: str | None, provider: Provider | None,
                   offset: int, limit: int) -> tuple[builtins.list[ModelRecord], int]:
        qs = m.LLMModel.all()
        if tenant_id is not None:
            qs = qs.filter(tenants__id=tenant_id)
        if search:
            qs = qs.filter(model_name__icontains=search)
        if provider is not None:
            qs = qs.filter(provider_name=provider.value)
        total = await qs.count()
        rows = await qs.order_by("id").offset(offset).limit(limit)
        tenants = await self._tenant_ids([r.id for r in rows])
        return [_model(r, tenants.get(r.id, [])) for r in rows], total

    async def existing_tenants(self, ids: builtins.list[int]) -> set[int]:
        found = await m.Tenant.filter(id__in=ids).values_list("id", flat=True)
        return {int(str(i)) for i in found}

    async def credentials(self, model_id: int) -> str:
        row = await m.LLMModel.get(id=model_id).only("id", "upstream_secret")
        return row.upstream_secret

    async def credentials_of(self, model_ids: builtins.list[int]) -> dict[int, str]:
        rows = await m.LLMModel.filter(id__in=model_ids).values_list("id", "upstream_secret")
        return {int(str(i)): str(secret) for i, secret in rows if secret}

    async def active_deployments(self, model_id: int) -> int:
        return await m.ModelDeploy.filter(model_id=model_id, status__in=[s.value for s in ACTIVE_STATUSES]).count()


def _deployment(row: m.ModelDeploy, model_name: str) -> Deployment:
    return Deployment(
        id=row.id, model_id=row.model_id, model_name=model_name, tenant_id=row.tenant_id,  # type: ignore[attr-defined]
        status=DeploymentStatus(row.status), reason=row.reason, engine=Engine(row.engine), replicas=row.replicas,
        gpus_per_replica=row.gpus_per_replica, label=row.label, quantization=row.quantization,
        runtime_backend=row.runtime_backend, model_path=row.model_path,
        worker_addresses=tuple(json.loads(row.worker_addresses or "[]")), runtime_handle=row.runtime_handle,
        operator=row.operator, created_at=row.created_at, started_at=row.started_at, stopped_at=row.stopped_at,
        updated_at=row.updated_at)


class DeploymentRepo:
    async def _with_names(self, rows: builtins.list[m.ModelDeploy]) -> builtins.list[Deployment]:
        ids = {r.model_id for r in rows}
        names = dict(await m.LLMModel.filter(id__in=ids).values_list("id", "model_name")) if ids else {}
        return [_deployment(r, str(names.get(r.model_id, ""))) for r in rows]

    async def get(self, deployment_id: int) -> Deployment | None:
        row = await m.ModelDeploy.get_or_none(id=deployment_id)
        return (await self._with_names([row]))[0] if row else None

    async def create(self, **values: Any) -> Deployment:
        row = await m.ModelDeploy.create(**values)
        return (await self._with_names([row]))[0]

    async def update(self, deployment_id: int, **changes: Any) -> Deployment:
        await m.ModelDeploy.filter(id=deployment_id).update(**changes)
        return await self.get(deployment_id)  # type: ignore[return-value]

    async def active_for_model(self, model_id: int) -> Deployment | None:
        row = await m.ModelDeploy.filter(model_id=model_id, status__in=[s.value for s in ACTIVE_STATUSES]).first()
        return (await self._with_names([row]))[0] if row else None

    async def gpus_in_use(self) -> int:
        rows = await m.ModelDeploy.filter(status__in=[s.value for s in ACTIVE_STATUSES]).values_list(
            "replicas", "gpus_per_replica")
        return sum(int(r) * int(g) for r, g in rows)

    async def list(self, *, tenant_id: int | None, statuses: builtins.list[DeploymentStatus] | None,
                   offset: int, limit: int) -> tuple[builtins.list[Deployment], int]:
        qs = m.ModelDeploy.all()
        if tenant_id is not None:
            qs = qs.filter(tenant_id=tenant_id)
        if statuses:
            qs = qs.filter(status__in=[s.value for s in statuses])
        total = await qs.count()
        return await self._with_names(await qs.order_by("-id").offset(offset).limit(limit)), total

    async def record_health(self, deployment_id: int | None, worker_address: str, healthy: bool,
                            speed: float, queue_length: int, detail: str) -> None:
        await m.ModelHealth.create(deploy_id=deployment_id, worker_address=worker_address, healthy=healthy,
                                   speed=speed, queue_length=queue_length, detail=detail)

    async def prune_health(self, before: datetime) -> int:
        return int(await m.ModelHealth.filter(checked_at__lt=before).delete())

    async def health(self, deployment_id: int | None, limit: int) -> builtins.list[HealthRecord]:
        rows = await m.ModelHealth.filter(deploy_id=deployment_id).order_by("-id").limit(limit)
        return [HealthRecord(r.worker_address, r.healthy, r.speed, r.queue_length, r.detail, r.checked_at)
                for r in rows]


def _template(row: m.FineTuningTemplate) -> InferenceTemplate:
    return InferenceTemplate(id=row.id, name=row.name, engine=row.base_model, content=row.content,
                             enabled=row.enabled, remark=row.remark)


RUNTIME_TEMPLATE_TYPES = ["inference", "train"]


class TemplateRepo:
    """Runtime templates: inference ('inference') and training ('train') rows of fine_tuning_template."""

    async def list_inference(self) -> builtins.list[InferenceTemplate]:
        rows = await m.FineTuningTemplate.filter(template_type__in=RUNTIME_TEMPLATE_TYPES).order_by("id")
        return [_template(r) for r in rows]

    async def get_inference(self, template_id: int) -> InferenceTemplate | None:
        row = await m.FineTuningTemplate.get_or_none(id=template_id, template_type__in=RUNTIME_TEMPLATE_TYPES)
        return _template(row) if row else None

    async def training_template(self) -> str:
        row = await m.FineTuningTemplate.filter(template_type="train", enabled=True).order_by("-id").first()
        return row.content if row is not None else json.dumps(TRAINING_TEMPLATE)

    async def name_taken(self, name: str) -> bool:
        return await m.FineTuningTemplate.filter(name=name).exists()

    async def save_inference(self, template_id: int | None, **values: Any) -> InferenceTemplate:
        if template_id is None:
            kind = "train" if values.get("base_model") == "finetune" else "inference"
            row = await m.FineTuningTemplate.create(template_type=kind, **values)
            return _template(row)
        await m.FineTuningTemplate.filter(id=template_id).update(**values)
        return _template(await m.FineTuningTemplate.get(id=template_id))

    async def delete_inference(self, template_id: int) -> None:
        await m.FineTuningTemplate.filter(id=template_id, template_type__in=RUNTIME_TEMPLATE_TYPES).delete()

    async def ensure_builtin(self) -> None:
        for name, (engine, content) in BUILTIN_TEMPLATES.items():
            await m.FineTuningTemplate.get_or_create(
                name=name, defaults={"base_model": engine, "content": json.dumps(content, indent=2),
                                     "template_type": "inference", "enabled": True,
                                     "remark": f"FastChat {engine} (built in)"})
        await m.FineTuningTemplate.get_or_create(
            name="aigc-finetune", defaults={
                "base_model": "finetune", "content": json.dumps(TRAINING_TEMPLATE, indent=2), "template_type": "train",
                "enabled": True, "remark": "aigc-admin's training program (built in)"})

    async def inference_template(self, engine: Engine) -> str:
        row = await m.FineTuningTemplate.filter(template_type="inference", base_model=engine.value,
                                                enabled=True).order_by("-id").first()
        if row is not None:
            return row.content
        for _name, (builtin_engine, content) in BUILTIN_TEMPLATES.items():
            if builtin_engine == engine.value:
                return json.dumps(content)
        raise ValueError(f"no inference template for engine {engine.value}")


def _channel(row: m.ChatChannel, model_ids: builtins.list[int]) -> Channel:
    return Channel(id=row.id, tenant_id=row.tenant_id, name=row.name, alias=row.alias, remark=row.remark,
                   email=row.email, key_prefix=row.api_key_prefix, quota=row.quota, used_tokens=row.used_tokens,
                   expires_at=row.expires_at, rpm_limit=row.rpm_limit, tpm_limit=row.tpm_limit, enabled=row.enabled,
                   model_ids=tuple(sorted(model_ids)), created_at=row.created_at, last_operator=row.last_operator)


class ChannelRepo:
    async def _model_ids(self, channel_ids: builtins.list[int]) -> dict[int, builtins.list[int]]:
        out: dict[int, builtins.list[int]] = {}
        if channel_ids:
            pairs = await m.LLMModel.filter(channels__id__in=channel_ids).values_list("channels__id", "id")
            for channel_id, model_id in pairs:
                out.setdefault(int(channel_id), []).append(int(model_id))
        return out

    async def _many(self, rows: builtins.list[m.ChatChannel]) -> builtins.list[Channel]:
        ids = await self._model_ids([r.id for r in rows])
        return [_channel(r, ids.get(r.id, [])) for r in rows]

    async def get(self, channel_id: int) -> Channel | None:
        row = await m.ChatChannel.get_or_none(id=channel_id)
        return (await self._many([row]))[0] if row else None

    async def find_by_key_hash(self, key_hash: str) -> Channel | None:
        row = await m.ChatChannel.get_or_none(api_key_hash=key_hash)
        return (await self._many([row]))[0] if row else None

    async def create(self, *, tenant_id: int, name: str, key_hash: str, key_prefix: str, operator: str,
                     values: dict[str, object], model_ids: builtins.list[int]) -> Channel:
        async with in_transaction():
            fields: dict[str, Any] = {"tenant_id": tenant_id, "name": name, "api_key_hash": key_hash,
                                      "api_key_prefix": key_prefix, "last_operator": operator, **values}
            row = await m.ChatChannel.create(**fields)
            if model_ids:
                await row.models.add(*await m.LLMModel.filter(id__in=model_ids))
        return await self.get(row.id)  # type: ignore[return-value]

    async def update(self, channel_id: int, values: dict[str, object],
                     model_ids: builtins.list[int] | None) -> Channel:
        async with in_transaction():
            if values:
                await m.ChatChannel.filter(id=channel_id).update(**values)
            if model_ids is not None:
                row = await m.ChatChannel.get(id=channel_id)
                await row.models.clear()
                if model_ids:
                    await row.models.add(*await m.LLMModel.filter(id__in=model_ids))
        return await self.get(channel_id)  # type: ignore[return-value]

    async def delete(self, channel_id: int) -> None:
        await m.ChatChannel.filter(id=channel_id).delete()

    async def list(self, *, tenant_id: int, offset: int, limit: int) -> tuple[builtins.list[Channel], int]:
        qs = m.ChatChannel.filter(tenant_id=tenant_id)
        total = await qs.count()
        return await self._many(await qs.order_by("id").offset(offset).limit(limit)), total

    async def key_hash(self, channel_id: int) -> str:
        row = await m.ChatChannel.get(id=channel_id).only("id", "api_key_hash")
        return row.api_key_hash

    async def used_tokens(self, channel_id: int) -> int:
        """Seeds the gateway's quota counter once per channel (Redis is authoritative afterwards)."""
        row = await m.ChatChannel.get_or_none(id=channel_id).only("id", "used_tokens")
        return row.used_tokens if row else 0

    async def models_of_tenant(self, tenant_id: int, model_ids: builtins.list[int]) -> set[int]:
        if not model_ids:
            return set()
        found = await m.LLMModel.filter(id__in=model_ids, tenants__id=tenant_id).values_list("id", flat=True)
        return {int(str(i)) for i in found}

    async def usage(self, *, tenant_id: int, channel_id: int | None, model: str | None, start: date | None,
                    end: date | None) -> builtins.list[UsageRow]:
        qs = m.ChannelUsage.filter(channel__tenant_id=tenant_id)
        if channel_id is not None:
            qs = qs.filter(channel_id=channel_id)
        if model:
            qs = qs.filter(model_name=model)
        if start:
            qs = qs.filter(day__gte=start)
        if end:
            qs = qs.filter(day__lte=end)
        rows = await qs.order_by("day", "channel_id", "model_name")
        return [UsageRow(r.channel_id, r.model_name, r.day, r.requests, r.prompt_tokens,  # type: ignore[attr-defined]
                         r.completion_tokens) for r in rows]
