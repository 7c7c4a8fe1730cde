from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.channels import ChannelSubscriptions
from aigc_admin.resolvers.common import ctx
from aigc_admin.resolvers.deployments import DeploymentSubscriptions
from aigc_admin.resolvers.finetunes import FineTuneSubscriptions
from aigc_admin.schema import types as t

AUDIT_TOPIC = "audit"


@strawberry.type
class Subscription(DeploymentSubscriptions, ChannelSubscriptions, FineTuneSubscriptions):
    @strawberry.subscription(permission_classes=perm.PLATFORM_ADMIN,
                             description="Every audit log row as it is written (platform admins).")
    async def audit_log_added(self, info: Info) -> AsyncGenerator[t.AuditLog, None]:
        async with ctx(info).services.events.subscribe(AUDIT_TOPIC) as events:
            async for event in events:
                yield t.AuditLog.from_event(event)
