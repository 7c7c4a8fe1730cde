"""Who is calling, and in which tenant: the one place that turns a bearer token and an ``X-Tenant-Id`` into a
principal. GraphQL (HTTP and WebSocket) and the REST routes all authenticate through it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aigc_admin.domain.accounts.ports import AccountRepository, TokenDecoder
from aigc_admin.domain.roles import Principal

MAX_ID = 2**63  # ids are positive BIGINTs; a larger one breaks the audit row on MySQL


@dataclass(frozen=True, slots=True)
class Identity:
    principal: Principal | None = None
    auth_error: str | None = None  # a token was sent but is not good
    tenant_id: int | None = None  # the tenant named by X-Tenant-Id, when the caller may act in it
    tenant_error: str | None = None  # X-Tenant-Id was sent but is not good


class TenantLookup(Protocol):
    async def exists(self, tenant_id: int) -> bool: ...


class IdentityService:
    def __init__(self, *, tokens: TokenDecoder, accounts: AccountRepository, tenants: TenantLookup) -> None:
        self.tokens = tokens
        self.accounts = accounts
        self.tenants = tenants

    async def identify(self, token: str | None, tenant_header: str | None) -> Identity:
        """The caller of a request from its bearer token and X-Tenant-Id (each may be absent)."""
        principal, auth_error = None, None
        if token:
            try:
                account_id = self.tokens.decode(token).account_id
            except Exception:
                auth_error = "invalid or expired token"
            else:
                account = await self.accounts.get(account_id)
                if account is None or not account.enabled:
                    auth_error = "account not found or disabled"
                else:
                    principal = Principal(account.id, account.username, account.is_platform_admin,
                                          await self.accounts.memberships(account.id))
        if not tenant_header:
            return Identity(principal, auth_error)
        try:
            wanted = int(tenant_header)
        except ValueError:
            return Identity(principal, auth_error, tenant_error="X-Tenant-Id must be a tenant id (an integer)")
        if not 0 < wanted < MAX_ID:
            return Identity(principal, auth_error, tenant_error="X-Tenant-Id must be a tenant id (a positive integer)")
        if principal is None or not principal.may_act_in(wanted):
            return Identity(principal, auth_error, tenant_error=f"not a member of tenant {wanted}")
        # a membership implies the tenant (memberships go with it); a platform admin may name any id
        if wanted not in principal.memberships and not await self.tenants.exists(wanted):
            return Identity(principal, auth_error,
                            tenant_error=f"X-Tenant-Id {wanted} names no tenant (or one being deleted)")
        return Identity(principal, auth_error, tenant_id=wanted)

    async def contact(self, principal: Principal) -> str:
        """The caller's e-mail (its username when it has none), as kept with what it creates."""
        account = await self.accounts.get(principal.account_id)
        return (account.email if account is not None and account.email else principal.username)[:128]
