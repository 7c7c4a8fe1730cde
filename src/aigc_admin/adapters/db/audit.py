"""The audit log (sys_audit)."""

from __future__ import annotations

import builtins
import json
from datetime import datetime
from typing import Any

from aigc_admin.adapters.db import models as m
from aigc_admin.adapters.db.paging import page
from aigc_admin.domain.audit.service import AuditEntry, AuditFilter


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
        rows, total = await page(qs, offset=offset, limit=limit, order=("-id",))
        return [_audit(r) for r in rows], total

    async def delete_older_than(self, cutoff: datetime) -> int:
        return int(await m.SysAudit.filter(created_at__lt=cutoff).delete())
