"""Tenant jobs: tenant.delete:<id>, the cascade that removes a tenant and everything it owns."""

from __future__ import annotations

import dataclasses
from typing import Any

from aigc_admin.workers.runner import JobContext


async def delete(ctx: JobContext, tenant_id: int) -> dict[str, Any]:
    removed = await ctx.platform.tenant_deletion.run(tenant_id)
    return {"tenant": tenant_id, "removed": dataclasses.asdict(removed) if removed else None}
