"""Audit log: every mutation, with who, where, what (secrets masked), how long, and the outcome."""

from __future__ import annotations

import builtins
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aigc_admin.domain.roles import Principal

log = logging.getLogger(__name__)

MASK = "***"
SECRET_KEY_RE = re.compile(r"pass(word)?|secret|token|api_?key|credential|authorization|^key$", re.IGNORECASE)


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` with the values of secret-looking keys replaced, at any depth."""
    if isinstance(value, dict):
        return {k: (MASK if SECRET_KEY_RE.search(str(k)) and v not in (None, "") else mask_secrets(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


@dataclass(frozen=True)
class AuditEntry:
    trace_id: str
    operator: str
    account_id: int | None
    tenant_id: int | None
    operation: str
    variables: dict[str, Any]
    duration_ms: int
    success: bool
    error: str = ""
    remote_addr: str = ""
    id: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class AuditFilter:
    operator: str | None = None
    tenant_id: int | None = None
    operation: str | None = None
    trace_id: str | None = None
    success: bool | None = None
    min_duration_ms: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    # None: every tenant (platform admins); a list: only these tenants' rows
    visible_tenants: builtins.list[int] | None = field(default=None)


class AuditRepository(Protocol):
    async def add(self, entry: AuditEntry) -> AuditEntry: ...
    async def list(self, flt: AuditFilter, *, offset: int, limit: int) -> tuple[builtins.list[AuditEntry], int]: ...
    async def delete_older_than(self, cutoff: datetime) -> int: ...


class AuditPublisher(Protocol):
    async def audit_added(self, entry: AuditEntry) -> None: ...


class AuditService:
    def __init__(self, *, repo: AuditRepository, publisher: AuditPublisher | None = None) -> None:
        self.repo = repo
        self.publisher = publisher

    async def record(self, entry: AuditEntry) -> AuditEntry:
        saved = await self.repo.add(
            AuditEntry(**{**entry.__dict__, "variables": mask_secrets(entry.variables)}))
        if self.publisher is not None:
            await self.publisher.audit_added(saved)
        return saved

    async def record_call(self, *, principal: Principal | None, operation: str, variables: dict[str, Any],
                          duration_ms: int, error: str, trace_id: str, tenant_id: int | None, remote_addr: str,
                          operator: str = "") -> None:
        """The audit row of one operation (a mutation, an upload): who, where, what, how long, the outcome.
        Never raises: the operation already happened, and losing its row is logged loudly instead."""
        entry = AuditEntry(
            trace_id=trace_id, operator=(principal.username if principal else operator) or "anonymous",
            account_id=principal.account_id if principal else None, tenant_id=tenant_id,
            operation=operation if len(operation) <= 128 else operation[:127] + "…",  # many root fields
            variables=variables, duration_ms=duration_ms, success=not error, error=error[:4000],
            remote_addr=remote_addr)
        try:
            await self.record(entry)
        except Exception:
            log.exception("could not write the audit row of %s (trace %s)", operation, trace_id)

    async def list(self, flt: AuditFilter, *, offset: int, limit: int) -> tuple[builtins.list[AuditEntry], int]:
        return await self.repo.list(flt, offset=offset, limit=limit)

    async def purge(self, *, older_than_days: int, now: datetime | None = None) -> tuple[int, datetime]:
        """Delete entries older than the retention period; returns (deleted, cutoff)."""
        from datetime import UTC, timedelta

        cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
        return await self.repo.delete_older_than(cutoff), cutoff
