"""Audit housekeeping."""

from __future__ import annotations

import logging
from typing import Any

from aigc_admin.workers.runner import JobContext

log = logging.getLogger(__name__)


async def retention(ctx: JobContext) -> dict[str, Any]:
    """Delete audit rows older than ``audit.retention.days``; 0 or less keeps everything."""
    days = ctx.settings.audit_retention_days
    if days <= 0:
        return {"deleted": 0, "cutoff": None}
    deleted, cutoff = await ctx.platform.audit.purge(older_than_days=days)
    log.info("audit retention: deleted %d rows older than %s", deleted, cutoff.isoformat())
    return {"deleted": deleted, "cutoff": cutoff.isoformat()}
