"""``GET /evaluations/{id}/mismatches.jsonl?metric=&below=``: the samples an evaluation scored below a value (not a
perfect score, by default on its first metric), as streamed JSONL. Each line is the sample as a chat line
(``messages`` ending with the reference answer: the file is a ``fine-tune-eval`` file again) with the model's
``output``, its ``scores`` and the source ``line``. Samples that failed have no score and are not in it.

Authenticated like GraphQL (``Authorization: Bearer <token>`` or ``X-Token``, and ``X-Tenant-Id``); another
tenant's evaluation answers 404, like a missing one.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.evaluations.metrics import ALL_METRICS
from aigc_admin.domain.roles import TenantRole
from aigc_admin.resolvers.common import parse_id
from aigc_admin.web.rest import attachment, authorize, error

router = APIRouter()


@router.get("/evaluations/{evaluation_id}/mismatches.jsonl", include_in_schema=False)
async def export_mismatches(evaluation_id: str, request: Request, metric: str | None = None,
                            below: str = "1") -> Response:
    caller = await authorize(request, TenantRole.MEMBER)
    if isinstance(caller, JSONResponse):
        return caller
    try:
        pk = parse_id(evaluation_id)
    except DomainError as e:
        return error(400, "INVALID", e.message)
    if metric is not None and metric not in ALL_METRICS:
        return error(400, "INVALID", f"metric must be one of {', '.join(ALL_METRICS)}")
    try:
        threshold = float(below)
    except ValueError:
        threshold = math.nan
    if not math.isfinite(threshold):
        return error(400, "INVALID", "below must be a number (scores are between 0 and 1)")
    try:
        lines = await caller.platform.evaluations.mismatches(pk, tenant_id=caller.tenant_id, metric=metric,
                                                             below=threshold)
        first = await anext(aiter(lines), None)  # a failure before the first line is still a clean error
    except DomainError as e:
        return error(404 if e.code.value == "NOT_FOUND" else 400, str(e.code.value), e.message)

    async def body() -> AsyncIterator[bytes]:
        if first is not None:
            yield _line(first)
            async for item in lines:
                yield _line(item)

    return StreamingResponse(body(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": attachment(f"evaluation-{pk}-mismatches.jsonl")})


def _line(item: dict[str, object]) -> bytes:
    return (json.dumps(item, ensure_ascii=False) + "\n").encode()
