"""What the accounts area needs from the outside world."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Protocol

from aigc_admin.domain.accounts.entities import Account, AccountSource
from aigc_admin.domain.roles import TenantRole


@dataclass(frozen=True)
class DirectoryUser:
    """A user as an external directory (LDAP) describes them after a successful bind."""

    dn: str
    username: str
    email: str = ""
    display_name: str = ""
    # Group names (cn) and DNs the user belongs to; mapped to tenant roles by settings.
    groups: tuple[str, ...] = field(default_factory=tuple)


class DirectoryUnavailable(Exception):
    """The directory could not be reached or the service bind failed (not the user's fault)."""


class Directory(Protocol):
    async def authenticate(self, username: str, password: str) -> DirectoryUser | None:
        """The user when the password is right; None for an unknown user or a wrong password."""
        ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...
    def verify(self, hashed: str, password: str) -> bool: ...


class LoginAttempts(Protocol):
    """Failed-login bookkeeping shared by all API processes (Redis)."""

    async def locked_for(self, username: str) -> int:
        """Seconds the account stays locked; 0 when it is not locked."""
        ...

    async def record_failure(self, username: str) -> int:
        """Count this failure; returns the failures so far (locks at the threshold)."""
        ...

    async def reset(self, username: str) -> None: ...


class TokenIssuer(Protocol):
    def issue(self, account_id: int, username: str) -> str: ...


class AccountRepository(Protocol):
    async def get(self, account_id: int) -> Account | None: ...
    async def get_by_username(self, username: str) -> Account | None: ...
    async def password_hash(self, account_id: int) -> str: ...
    async def create(self, *, username: str, email: str, nickname: str, password_hash: str,
                     source: AccountSource, is_platform_admin: bool) -> Account: ...
    async def update(self, account_id: int, **changes: object) -> Account: ...
    async def delete(self, account_id: int) -> None: ...
    async def list(self, *, offset: int, limit: int, search: str | None) -> tuple[builtins.list[Account], int]: ...
    async def memberships(self, account_id: int) -> dict[int, TenantRole]: ...
    async def set_membership(self, tenant_id: int, account_id: int, role: TenantRole) -> None: ...
    async def remove_membership(self, tenant_id: int, account_id: int) -> bool: ...
    async def tenant_ids_by_code(self, codes: builtins.list[str]) -> dict[str, int]: ...
    async def enabled_admins(self) -> int:
        """How many enabled platform administrators there are."""
        ...


class TokenDecoder(Protocol):
    def decode(self, token: str) -> TokenClaims:
        """The claims of a token this platform issued; raises on a bad or expired one."""
        ...


class TokenClaims(Protocol):
    @property
    def account_id(self) -> int: ...
