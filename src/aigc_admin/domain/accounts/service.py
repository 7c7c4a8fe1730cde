"""Accounts use cases: login (local and directory), account management, memberships."""

from __future__ import annotations

import builtins
import logging
import secrets
from dataclasses import dataclass

from aigc_admin.domain.accounts.entities import Account, AccountSource
from aigc_admin.domain.accounts.errors import AccountErrorCode
from aigc_admin.domain.accounts.ports import (
    AccountRepository,
    Directory,
    DirectoryUnavailable,
    DirectoryUser,
    LoginAttempts,
    PasswordHasher,
    TokenIssuer,
)
from aigc_admin.domain.errors import DomainError, NotFound
from aigc_admin.domain.roles import TenantRole

log = logging.getLogger(__name__)
MIN_PASSWORD_LENGTH = 8
ADMIN_GROUP_VALUE = "admin"


@dataclass(frozen=True)
class LoginResult:
    token: str
    account: Account


def map_groups(groups: tuple[str, ...], mapping: dict[str, str]) -> tuple[bool, dict[str, TenantRole]]:
    """Translate directory groups into (is platform admin, {tenant code: role}).

    ``mapping`` keys are group names or DNs (compared case-insensitively); values are 'admin' or
    'TENANT_CODE:ROLE'. When two groups grant roles in one tenant the higher role wins.
    """
    wanted = {g.lower() for g in groups}
    is_admin = False
    roles: dict[str, TenantRole] = {}
    for group, value in mapping.items():
        if group.lower() not in wanted:
            continue
        if value == ADMIN_GROUP_VALUE:
            is_admin = True
            continue
        code, _, role_name = value.partition(":")
        try:
            role = TenantRole(role_name)
        except ValueError:
            log.warning("ldap.group.mapping: group %r maps to unknown role %r; ignored", group, role_name)
            continue
        if code not in roles or role.at_least(roles[code]):
            roles[code] = role
    return is_admin, roles


def check_password_strength(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(AccountErrorCode.WEAK_PASSWORD,
                          f"password must have at least {MIN_PASSWORD_LENGTH} characters", field)


class AccountService:
    def __init__(
        self,
        *,
        accounts: AccountRepository,
        hasher: PasswordHasher,
        attempts: LoginAttempts,
        tokens: TokenIssuer,
        directory: Directory | None = None,
        group_mapping: dict[str, str] | None = None,
    ) -> None:
        self.accounts = accounts
        self.hasher = hasher
        self.attempts = attempts
        self.tokens = tokens
        self.directory = directory
        self.group_mapping = group_mapping or {}

    # --- login -------------------------------------------------------------------------------
    async def login(self, username: str, password: str) -> LoginResult:
        username = username.strip()
        if not username or not password:
            raise DomainError(AccountErrorCode.INVALID_CREDENTIALS, "username and password are required", "username")
        locked = await self.attempts.locked_for(username)
        if locked:
            raise DomainError(AccountErrorCode.ACCOUNT_LOCKED,
                              f"too many failed logins; try again in {max(1, locked // 60)} minute(s)", "username")
        account = await self.accounts.get_by_username(username)
        if account is not None and account.source == AccountSource.LOCAL:
            ok = self.hasher.verify(await self.accounts.password_hash(account.id), password)
        elif self.directory is not None:
            account, ok = await self._directory_login(username, password, account)
        else:
            ok = False
        if not ok or account is None:
            await self.attempts.record_failure(username)
            raise DomainError(AccountErrorCode.INVALID_CREDENTIALS, "wrong username or password", "password")
        if not account.enabled:
            raise DomainError(AccountErrorCode.ACCOUNT_DISABLED, "this account is disabled", "username")
        await self.attempts.reset(username)
        from datetime import UTC, datetime

        account = await self.accounts.update(account.id, last_login_at=datetime.now(UTC))
        return LoginResult(token=self.tokens.issue(account.id, account.username), account=account)

    async def _directory_login(
        self, username: str, password: str, existing: Account | None
    ) -> tuple[Account | None, bool]:
        assert self.directory is not None
        try:
            user = await self.directory.authenticate(username, password)
        except DirectoryUnavailable as e:
            log.error("LDAP unavailable during login: %s", e)
            raise DomainError(AccountErrorCode.DIRECTORY_UNAVAILABLE,
                              "the directory (LDAP) is unavailable; try again later", None) from None
        if user is None:
            return existing, False
        if existing is None and user.username != username:
            # The directory spells the name differently ('ALICE' -> 'alice'): find the account by that.
            existing = await self.accounts.get_by_username(user.username)
            if existing is not None and existing.source != AccountSource.LDAP:
                return existing, False  # a local account of that name wins; LDAP never takes it over
        return await self._sync_directory_account(user, existing), True

    async def _sync_directory_account(self, user: DirectoryUser, existing: Account | None) -> Account:
        is_admin, roles = map_groups(user.groups, self.group_mapping)
        if existing is None:
            account = await self.accounts.create(
                username=user.username, email=user.email, nickname=user.display_name or user.username,
                password_hash="", source=AccountSource.LDAP, is_platform_admin=is_admin)
        else:
            account = await self.accounts.update(existing.id, email=user.email or existing.email,
                                                 is_platform_admin=is_admin)
        # Tenants named by the mapping are managed by LDAP: roles follow the groups, and a membership
        # whose group was left is removed. Memberships in other tenants are left to administrators.
        managed = {v.partition(":")[0] for v in self.group_mapping.values() if ":" in v}
        tenant_ids = await self.accounts.tenant_ids_by_code(sorted(managed))
        for code in managed:
            if code not in tenant_ids:
                log.warning("ldap.group.mapping names tenant code %r, which does not exist", code)
            elif code in roles:
                await self.accounts.set_membership(tenant_ids[code], account.id, roles[code])
            else:
                await self.accounts.remove_membership(tenant_ids[code], account.id)
        return account

    # --- management (platform admin) ---------------------------------------------------------
    async def create_local(self, *, username: str, password: str, email: str = "", nickname: str = "",
                           is_platform_admin: bool = False) -> Account:
        username = username.strip()
        if not username or len(username) > 128:
            raise DomainError(AccountErrorCode.INVALID, "username must have 1 to 128 characters", "username")
        check_password_strength(password)
        if await self.accounts.get_by_username(username) is not None:
            raise DomainError(AccountErrorCode.DUPLICATE, f"account {username!r} already exists", "username")
        return await self.accounts.create(
            username=username, email=email, nickname=nickname or username,
            password_hash=self.hasher.hash(password), source=AccountSource.LOCAL,
            is_platform_admin=is_platform_admin)

    async def get(self, account_id: int) -> Account:
        account = await self.accounts.get(account_id)
        if account is None:
            raise NotFound("account", account_id)
        return account

    async def list(self, *, offset: int, limit: int, search: str | None = None) -> tuple[builtins.list[Account], int]:
        return await self.accounts.list(offset=offset, limit=limit, search=search)

    async def memberships(self, account_id: int) -> dict[int, TenantRole]:
        return await self.accounts.memberships(account_id)

    async def update(self, account_id: int, *, email: str | None = None, nickname: str | None = None,
                     enabled: bool | None = None, is_platform_admin: bool | None = None,
                     password: str | None = None, actor: int | None = None) -> Account:
        """``actor``: the account making the change (None: an operator at the shell, `aigc-admin account`)."""
        account = await self.get(account_id)
        if enabled is False or is_platform_admin is False:
            what = "disable" if enabled is False else "demote"
            await self._keep_an_admin(account, actor, what)
        changes: dict[str, object] = {k: v for k, v in {
            "email": email, "nickname": nickname, "enabled": enabled, "is_platform_admin": is_platform_admin,
        }.items() if v is not None}
        if password is not None:
            if account.source != AccountSource.LOCAL:
                raise DomainError(AccountErrorCode.INVALID, "the password of an LDAP account is kept in LDAP",
                                  "password")
            check_password_strength(password)
            changes["password_hash"] = self.hasher.hash(password)
        return await self.accounts.update(account_id, **changes) if changes else account

    async def delete(self, account_id: int, *, actor: int | None = None) -> None:
        account = await self.get(account_id)
        await self._keep_an_admin(account, actor, "delete")
        await self.accounts.delete(account_id)

    async def _keep_an_admin(self, account: Account, actor: int | None, what: str) -> None:
        """No one locks themselves out, and the platform always keeps an enabled administrator (an operator with
        shell access can still repair accounts with `aigc-admin account`)."""
        if actor is not None and account.id == actor:
            raise DomainError(AccountErrorCode.INVALID, f"you cannot {what} your own account", "id")
        if account.is_platform_admin and account.enabled and await self.accounts.enabled_admins() <= 1:
            raise DomainError(AccountErrorCode.LAST_ADMIN, f"cannot {what} the last enabled platform administrator",
                              "id")

    async def set_membership(self, tenant_id: int, account_id: int, role: TenantRole) -> None:
        await self.get(account_id)
        await self.accounts.set_membership(tenant_id, account_id, role)

    async def remove_membership(self, tenant_id: int, account_id: int) -> None:
        if not await self.accounts.remove_membership(tenant_id, account_id):
            raise NotFound("membership of account", account_id, "accountId")

    async def ensure_admin(self, username: str, password: str | None) -> str | None:
        """Create the platform administrator on first start.

        Returns the generated password when one was generated (to be shown once), else None.
        """
        if await self.accounts.get_by_username(username) is not None:
            return None
        generated = None
        if not password:
            password = generated = secrets.token_urlsafe(18)
        await self.accounts.create(username=username, email="", nickname=username,
                                   password_hash=self.hasher.hash(password), source=AccountSource.LOCAL,
                                   is_platform_admin=True)
        return generated


class AccountRecovery:
    """What an operator with shell access may do when no administrator can sign in (``aigc-admin account``)."""

    def __init__(self, *, accounts: AccountRepository, hasher: PasswordHasher) -> None:
        self.accounts = accounts
        self.hasher = hasher

    async def _local(self, username: str) -> Account:
        account = await self.accounts.get_by_username(username)
        if account is None:
            raise NotFound("account", repr(username), "username")
        return account

    async def reset_password(self, username: str, password: str | None = None) -> tuple[Account, str]:
        """A new password for a local account (generated when none is given); returns it with the account."""
        account = await self._local(username)
        if account.source != AccountSource.LOCAL:
            raise DomainError(AccountErrorCode.INVALID, "the password of an LDAP account is kept in LDAP",
                              "username")
        password = password or secrets.token_urlsafe(18)
        check_password_strength(password)
        return await self.accounts.update(account.id, password_hash=self.hasher.hash(password)), password

    async def enable(self, username: str, *, platform_admin: bool = False) -> Account:
        """Enable an account (and make it a platform administrator when asked)."""
        account = await self._local(username)
        changes: dict[str, object] = {"enabled": True}
        if platform_admin:
            changes["is_platform_admin"] = True
        return await self.accounts.update(account.id, **changes)
