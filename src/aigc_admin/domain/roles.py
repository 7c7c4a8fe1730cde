"""Who may do what: platform administrators, and per tenant maintainers and members."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class TenantRole(StrEnum):
    MAINTAINER = "maintainer"  # manages the tenant's resources (channels, deployments, members' work)
    MEMBER = "member"  # uses and reads the tenant's resources

    def at_least(self, other: TenantRole) -> bool:
        order = [TenantRole.MEMBER, TenantRole.MAINTAINER]
        return order.index(self) >= order.index(other)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    account_id: int
    username: str
    is_platform_admin: bool = False
    # tenant id -> role, loaded once per request
    memberships: dict[int, TenantRole] = field(default_factory=dict)

    def role_in(self, tenant_id: int) -> TenantRole | None:
        return self.memberships.get(tenant_id)

    def may_act_in(self, tenant_id: int, role: TenantRole = TenantRole.MEMBER) -> bool:
        """Platform admins may act in every tenant; others need a membership with at least ``role``."""
        if self.is_platform_admin:
            return True
        have = self.memberships.get(tenant_id)
        return have is not None and have.at_least(role)
