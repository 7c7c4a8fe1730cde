"""Accounts, sign-in and the signed-in account."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from aigc_admin.domain.accounts import entities as acc
from aigc_admin.domain.accounts.errors import AccountErrorCode as _AccountErrorCode
from aigc_admin.schema.tenants import Tenant, TenantRole

AccountErrorCode = strawberry.enum(_AccountErrorCode, description="Codes of login and account failures.")
AccountSource = strawberry.enum(acc.AccountSource, description="Where an account's password is kept.")


@strawberry.type(description="An expected failure of a login or account mutation.")
class AccountError:
    field: str | None
    code: AccountErrorCode  # type: ignore[valid-type]
    message: str


@strawberry.type
class Membership:
    tenant_id: strawberry.ID
    role: TenantRole  # type: ignore[valid-type]

    @strawberry.field
    async def tenant(self, info: Info) -> Tenant | None:
        t = await info.context.loaders.tenant.load(int(self.tenant_id))
        return Tenant.from_domain(t) if t else None


@strawberry.type
class Account:
    id: strawberry.ID
    username: str
    email: str
    nickname: str
    source: AccountSource  # type: ignore[valid-type]
    is_platform_admin: bool
    enabled: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def from_domain(cls, a: acc.Account) -> Account:
        return cls(id=strawberry.ID(str(a.id)), username=a.username, email=a.email, nickname=a.nickname,
                   source=a.source, is_platform_admin=a.is_platform_admin, enabled=a.enabled,
                   created_at=a.created_at, last_login_at=a.last_login_at)


@strawberry.type(description="The signed-in account and its tenants.")
class Me:
    account: Account
    memberships: list[Membership]


@strawberry.input
class LoginInput:
    username: str
    password: str


@strawberry.input
class CreateAccountInput:
    username: str
    password: str
    email: str = ""
    nickname: str = ""
    is_platform_admin: bool = False


@strawberry.input
class UpdateAccountInput:
    id: strawberry.ID
    email: str | None = None
    nickname: str | None = None
    enabled: bool | None = None
    is_platform_admin: bool | None = None
    password: str | None = None


@strawberry.type
class LoginPayload:
    token: str | None = None
    account: Account | None = None
    errors: list[AccountError] = strawberry.field(default_factory=list)


@strawberry.type
class AccountPayload:
    account: Account | None = None
    errors: list[AccountError] = strawberry.field(default_factory=list)
