"""What the REST routes share: authentication through the identity service (``Authorization: Bearer <login
token>`` or ``X-Token``, plus ``X-Tenant-Id`` of a tenant the caller belongs to), JSON errors, the audit row."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from aigc_admin.bootstrap import Platform
from aigc_admin.domain.accounts.identity import Identity
from aigc_admin.domain.roles import Principal, TenantRole
from aigc_admin.resolvers.context import bearer_token


def error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    """``{"error": {"code", "message", ...}}`` with ``status``."""
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


class Caller:
    """An authenticated request: its platform, principal, tenant, trace id and address."""

    def __init__(self, request: Request, platform: Platform, principal: Principal, tenant_id: int) -> None:
        self.platform = platform
        self.principal = principal
        self.tenant_id = tenant_id
        self.trace_id: str = getattr(request.state, "trace_id", "")
        self.remote_addr = request.client.host if request.client else ""
        self.started = time.perf_counter()

    async def audit(self, operation: str, response: Response, variables: dict[str, Any]) -> None:
        """The audit row of this request, as the GraphQL mutation of the same operation writes it."""
        failed = response.status_code >= 400
        await self.platform.audit.record_call(
            principal=self.principal, operation=operation,
            variables={k: v for k, v in variables.items() if v is not None},
            duration_ms=int((time.perf_counter() - self.started) * 1000),
            error=bytes(response.body).decode(errors="replace") if failed else "", trace_id=self.trace_id,
            tenant_id=self.tenant_id, remote_addr=self.remote_addr)


async def authorize(request: Request, role: TenantRole, **error_extra: Any) -> Caller | JSONResponse:
    """The caller, allowed ``role`` in the tenant of X-Tenant-Id; or the 401/403 answer."""
    platform: Platform = request.app.state.platform
    h = request.headers
    who: Identity = await platform.identity.identify(bearer_token(h.get("authorization"), h.get("x-token")),
                                                     h.get("x-tenant-id"))
    if who.principal is None:
        return error(401, "UNAUTHENTICATED", who.auth_error
                     or "Sign in first: send 'Authorization: Bearer <token>' from the login mutation", **error_extra)
    if who.tenant_id is None:
        return error(403, "FORBIDDEN", who.tenant_error or "Send X-Tenant-Id of a tenant you are a member of",
                     **error_extra)
    if not who.principal.may_act_in(who.tenant_id, role):
        return error(403, "FORBIDDEN", f"this needs the {role.value} role in the tenant", **error_extra)
    return Caller(request, platform, who.principal, who.tenant_id)


def attachment(name: str) -> str:
    """A Content-Disposition for a download of any name: an ASCII fallback and the UTF-8 name (RFC 6266/5987)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name) or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
