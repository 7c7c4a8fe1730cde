"""Tenants: the unit of isolation. Every tenant-scoped row carries a tenant id."""

from __future__ import annotations

import builtins
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from aigc_admin.domain.errors import CommonErrorCode, DomainError, Duplicate, Invalid, NotFound

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Tenant:
    id: int
    name: str
    code: str
    public_tenant_id: str
    remark: str
    created_at: datetime
    deleting: bool = False  # deleteTenant was asked: members are out, a job removes what the tenant owns


@dataclass(frozen=True)
class Member:
    account_id: int
    username: str
    role: str


class TenantRepository(Protocol):
    async def get(self, tenant_id: int) -> Tenant | None: ...
    async def get_by_code(self, code: str) -> Tenant | None: ...
    async def create(self, *, name: str, code: str, public_tenant_id: str, remark: str) -> Tenant: ...
    async def update(self, tenant_id: int, **changes: object) -> Tenant: ...
    async def delete(self, tenant_id: int) -> None: ...
    async def start_deleting(self, tenant_id: int) -> None:
        """Mark the tenant as being deleted and remove its memberships (in one transaction)."""
        ...
    async def list(self, *, offset: int, limit: int, search: str | None,
                   only_ids: builtins.list[int] | None) -> tuple[builtins.list[Tenant], int]: ...
    async def members(self, tenant_id: int) -> builtins.list[Member]: ...


class JobEnqueuer(Protocol):
    def enqueue(self, func_path: str, *, job_id: str, **kwargs: Any) -> str: ...


DELETE_JOB = "aigc_admin.workers.tasks.tenants:delete"


class TenantService:
    def __init__(self, *, tenants: TenantRepository, jobs: JobEnqueuer | None = None) -> None:
        self.tenants = tenants
        self.jobs = jobs

    async def get(self, tenant_id: int) -> Tenant:
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound("tenant", tenant_id)
        return tenant

    async def list(self, *, offset: int, limit: int, search: str | None = None,
                   only_ids: builtins.list[int] | None = None) -> tuple[builtins.list[Tenant], int]:
        return await self.tenants.list(offset=offset, limit=limit, search=search, only_ids=only_ids)

    async def create(self, *, name: str, code: str, remark: str = "") -> Tenant:
        name, code = name.strip(), code.strip()
        if not name or len(name) > 64:
            raise Invalid("name", "name must have 1 to 64 characters")
        if not CODE_RE.match(code):
            raise Invalid("code", "code must be 1-64 lowercase letters, digits, '-' or '_'")
        if await self.tenants.get_by_code(code) is not None:
            raise Duplicate("code", f"tenant code {code!r} is taken")
        return await self.tenants.create(name=name, code=code, public_tenant_id=uuid.uuid4().hex, remark=remark)

    async def update(self, tenant_id: int, *, name: str | None = None, remark: str | None = None) -> Tenant:
        await self.get(tenant_id)
        changes = {k: v for k, v in {"name": name, "remark": remark}.items() if v is not None}
        if name is not None and (not name.strip() or len(name) > 64):
            raise Invalid("name", "name must have 1 to 64 characters")
        return await self.tenants.update(tenant_id, **changes) if changes else await self.get(tenant_id)

    async def delete(self, tenant_id: int) -> Tenant:
        """Start deleting a tenant: its members lose access at once, and a job (``tenant.delete:<id>``) stops its
        deployments and training jobs, revokes its keys, deletes its files, datasets and rows (tenants.deletion).
        Asking again enqueues the job again (it continues where it stopped)."""
        await self.get(tenant_id)
        await self.tenants.start_deleting(tenant_id)
        if self.jobs is None:
            raise Invalid("id", "no job queue to delete the tenant with")
        try:
            self.jobs.enqueue(DELETE_JOB, job_id=f"tenant.delete:{tenant_id}", tenant_id=tenant_id)
        except Exception:
            raise DomainError(CommonErrorCode.INVALID, "the job queue (Redis) is unavailable: the tenant is marked "
                              "for deletion; delete it again to retry", None) from None
        return await self.get(tenant_id)
