"""``GET /datasets/{id}/export?format=``: a dataset as streamed JSONL, for exports too large for GraphQL.

Authenticated like GraphQL: ``Authorization: Bearer <token>`` (or ``X-Token``) and ``X-Tenant-Id`` of a tenant
the caller is a member of. Another tenant's dataset answers 404, like a missing one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from aigc_admin.domain.datasets.formats import DatasetFormat
from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.roles import TenantRole
from aigc_admin.resolvers.context import Context, bearer_token

router = APIRouter()


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


@router.get("/datasets/{dataset_id}/export", include_in_schema=False)
async def export_dataset(dataset_id: int, request: Request, format: str | None = None) -> Response:
    context = Context(request.app.state.runtime.services)
    h = request.headers
    await context.authenticate(bearer_token(h.get("authorization"), h.get("x-token")), h.get("x-tenant-id"))
    if context.principal is None:
        return _error(401, "UNAUTHENTICATED", context.auth_error or "Sign in first: send 'Authorization: Bearer "
                                                                    "<token>' from the login mutation")
    tenant_id = context.tenant_id
    if tenant_id is None or not context.principal.may_act_in(tenant_id, TenantRole.MEMBER):
        return _error(403, "FORBIDDEN", context.tenant_error or "Send X-Tenant-Id of a tenant you are a member of")
    try:
        wanted = DatasetFormat(format) if format else None
    except ValueError:
        return _error(400, "INVALID", f"format must be one of {', '.join(f.value for f in DatasetFormat)}")
    try:
        lines = await context.services.datasets.export(dataset_id, wanted, tenant_id=tenant_id)
        first = await anext(aiter(lines), None)  # a failure before the first line is still a clean error
    except DomainError as e:
        status = 404 if e.code.value == "NOT_FOUND" else 400
        return _error(status, str(e.code.value), e.message)

    async def body() -> AsyncIterator[bytes]:
        if first is not None:
            yield first.encode()
            async for line in lines:
                yield line.encode()

    dataset = await context.services.datasets.get(dataset_id, tenant_id=tenant_id)
    name = f"{dataset.name}.{(wanted or dataset.format).value}.jsonl"
    return StreamingResponse(body(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": _attachment(name)})


def _attachment(name: str) -> str:
    from urllib.parse import quote

    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
