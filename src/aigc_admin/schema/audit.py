"""The audit log."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from aigc_admin.domain.audit.service import AuditEntry


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
