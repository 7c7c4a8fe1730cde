"""The model registry (llm_models) and the tenants each model is granted to."""

from __future__ import annotations

import builtins

from tortoise.transactions import in_transaction

from aigc_admin.adapters.db import models as m
from aigc_admin.adapters.db.paging import page
from aigc_admin.domain.deployments.entities import ACTIVE_STATUSES
from aigc_admin.domain.models.service import ModelRecord, ModelType, Provider


def _model(row: m.LLMModel, tenant_ids: builtins.list[int]) -> ModelRecord:
    return ModelRecord(id=row.id, name=row.model_name, provider=Provider(row.provider_name),
                       model_type=ModelType(row.model_type), max_tokens=row.max_tokens,
                       parameters=float(row.parameters), enabled=row.enabled, remark=row.remark,
                       is_fine_tuned=row.is_fine_tuning, base_url=row.base_url,
                       has_credentials=bool(row.upstream_secret), model_path=row.model_path,
                       created_at=row.created_at, last_operator=row.last_operator, tenant_ids=tuple(sorted(tenant_ids)),
                       conversation_template=row.conversation_template, chat_template=row.chat_template)


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
                last_operator=record.last_operator, conversation_template=record.conversation_template,
                chat_template=record.chat_template)
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
        rows, total = await page(qs, offset=offset, limit=limit, order=("id",))
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
