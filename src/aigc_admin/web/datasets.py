"""``GET /datasets/{id}/export?format=``: a dataset as streamed JSONL, for exports too large for GraphQL.

Authenticated like GraphQL: ``Authorization: Bearer <token>`` (or ``X-Token``) and ``X-Tenant-Id`` of a tenant
the caller is a member of. Another tenant's dataset answers 404, like a missing one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from aigc_admin.domain.chat_format import DatasetFormat
from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.roles import TenantRole
from aigc_admin.web.rest import attachment, authorize, error

router = APIRouter()


@router.get("/datasets/{dataset_id}/export", include_in_schema=False)
async def export_dataset(dataset_id: int, request: Request, format: str | None = None) -> Response:
    caller = await authorize(request, TenantRole.MEMBER)
    if isinstance(caller, JSONResponse):
        return caller
    datasets = caller.platform.datasets
    try:
        wanted = DatasetFormat(format) if format else None
    except ValueError:
        return error(400, "INVALID", f"format must be one of {', '.join(f.value for f in DatasetFormat)}")
    try:
        lines = await datasets.export(dataset_id, wanted, tenant_id=caller.tenant_id)
        first = await anext(aiter(lines), None)  # a failure before the first line is still a clean error
    except DomainError as e:
        status = 404 if e.code.value == "NOT_FOUND" else 400
        return error(status, str(e.code.value), e.message)

    async def body() -> AsyncIterator[bytes]:
        if first is not None:
            yield first.encode()
            async for line in lines:
                yield line.encode()

    dataset = await datasets.get(dataset_id, tenant_id=caller.tenant_id)
    name = f"{dataset.name}.{(wanted or dataset.format).value}.jsonl"
    return StreamingResponse(body(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": attachment(name)})
