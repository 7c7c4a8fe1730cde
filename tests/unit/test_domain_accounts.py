"""Domain logic of accounts, audit masking and the dictionary tree, with in-memory fakes."""

from __future__ import annotations

import builtins
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from aigc_admin.domain.accounts.entities import Account, AccountSource
from aigc_admin.domain.accounts.errors import AccountErrorCode
from aigc_admin.domain.accounts.ports import DirectoryUnavailable, DirectoryUser
from aigc_admin.domain.accounts.service import AccountService, map_groups
from aigc_admin.domain.audit.service import MASK, mask_secrets
from aigc_admin.domain.dicts.service import DictEntry, DictType, build_tree
from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.roles import TenantRole

ADMINS_DN = "cn=llm-admins,ou=groups,dc=example,dc=org"


# --- map_groups -------------------------------------------------------------------------------
def test_map_groups_matches_names_case_insensitively() -> None:
    mapping = {"LLM-Admins": "admin", "team-a": "team-a:maintainer"}
    assert map_groups(("llm-admins", "TEAM-A"), mapping) == (True, {"team-a": TenantRole.MAINTAINER})


def test_map_groups_matches_dns() -> None:
    mapping = {ADMINS_DN.upper(): "admin", "cn=team-b,ou=groups,dc=example,dc=org": "team-b:member"}
    groups = (ADMINS_DN, "llm-admins", "cn=team-b,ou=groups,dc=example,dc=org", "team-b")
    assert map_groups(groups, mapping) == (True, {"team-b": TenantRole.MEMBER})


def test_map_groups_highest_role_wins_in_either_order() -> None:
    groups = ("readers", "writers")
    for mapping in ({"readers": "t:member", "writers": "t:maintainer"},
                    {"writers": "t:maintainer", "readers": "t:member"}):
        assert map_groups(groups, mapping) == (False, {"t": TenantRole.MAINTAINER})


def test_map_groups_ignores_unknown_roles_and_unmapped_groups(caplog: pytest.LogCaptureFixture) -> None:
    mapping = {"owners": "t:owner", "readers": "t:member", "other": "u:maintainer"}
    with caplog.at_level(logging.WARNING):
        assert map_groups(("owners", "readers", "not-mapped"), mapping) == (False, {"t": TenantRole.MEMBER})
    assert "owner" in caplog.text


def test_map_groups_without_groups_grants_nothing() -> None:
    assert map_groups((), {"llm-admins": "admin"}) == (False, {})
    assert map_groups(("llm-admins",), {}) == (False, {})


# --- mask_secrets -----------------------------------------------------------------------------
def test_mask_secrets_at_any_depth() -> None:
    value: dict[str, Any] = {
        "login": {"input": {"username": "alice", "password": "p1"}},
        "createChannel": {"input": {"name": "c", "apiKey": "sk-1", "upstream": {"api_key": "sk-2", "url": "u"}}},
        "batch": [{"token": "t1", "id": 1}, {"accessToken": "t2"}, "plain", ["x", {"clientSecret": "s"}]],
        "key": "k", "monkey": "m", "keyword": "w", "Authorization": "Bearer x", "credentials": {"a": "b"},
        "newPassword": "p2", "passphrase": "p3",
    }
    assert mask_secrets(value) == {
        "login": {"input": {"username": "alice", "password": MASK}},
        "createChannel": {"input": {"name": "c", "apiKey": MASK, "upstream": {"api_key": MASK, "url": "u"}}},
        "batch": [{"token": MASK, "id": 1}, {"accessToken": MASK}, "plain", ["x", {"clientSecret": MASK}]],
        "key": MASK, "monkey": "m", "keyword": "w", "Authorization": MASK, "credentials": MASK,
        "newPassword": MASK, "passphrase": MASK,
    }
    # The original is left alone.
    assert value["login"]["input"]["password"] == "p1"


def test_mask_secrets_keeps_absent_values_visible() -> None:
    assert mask_secrets({"password": None, "token": ""}) == {"password": None, "token": ""}
    assert mask_secrets([1, "a", None]) == [1, "a", None]
    assert mask_secrets("password") == "password"


# --- build_tree -------------------------------------------------------------------------------
def entry(id: int, parent_id: int, code: str = "model_type", sort: int = 0) -> DictEntry:
    return DictEntry(id=id, parent_id=parent_id, code=code, dict_value=str(id), dict_label=f"label-{id}",
                     dict_type=DictType.STRING, sort=sort, remark="")


Shape = list[tuple[int, "Shape"]]


def shape(entries: list[DictEntry]) -> Shape:
    return [(e.id, shape(e.children)) for e in entries]


def test_build_tree_nests_and_sorts_by_sort_then_id() -> None:
    entries = [entry(1, 0), entry(2, 1, sort=2), entry(3, 1, sort=1), entry(4, 1, sort=1), entry(5, 3, sort=9),
               entry(6, 3, sort=0), entry(7, 0, code="other"), entry(8, 7)]
    assert shape(build_tree(entries, ["model_type"])) == [(1, [(3, [(6, []), (5, [])]), (4, []), (2, [])])]


def test_build_tree_roots_follow_the_order_of_codes() -> None:
    entries = [entry(1, 0, code="a", sort=5), entry(2, 0, code="b"), entry(3, 0, code="a", sort=1),
               entry(4, 2, code="a")]  # a child with a wanted code is not a root
    assert shape(build_tree(entries, ["b", "a"])) == [(2, [(4, [])]), (3, []), (1, [])]
    assert build_tree(entries, ["missing"]) == []


def test_build_tree_can_run_twice_on_the_same_entries() -> None:
    entries = [entry(1, 0), entry(2, 1)]
    build_tree(entries, ["model_type"])
    assert shape(build_tree(entries, ["model_type"])) == [(1, [(2, [])])]


# --- AccountService.login with fakes ----------------------------------------------------------
class FakeAccounts:
    def __init__(self) -> None:
        self.rows: dict[int, Account] = {}
        self.hashes: dict[int, str] = {}
        self.members: dict[tuple[int, int], TenantRole] = {}
        self.tenants: dict[str, int] = {}

    async def get(self, account_id: int) -> Account | None:
        return self.rows.get(account_id)

    async def get_by_username(self, username: str) -> Account | None:
        return next((a for a in self.rows.values() if a.username == username), None)

    async def password_hash(self, account_id: int) -> str:
        return self.hashes[account_id]

    async def create(self, *, username: str, email: str, nickname: str, password_hash: str,
                     source: AccountSource, is_platform_admin: bool) -> Account:
        account = Account(id=len(self.rows) + 1, username=username, email=email, nickname=nickname, source=source,
                          is_platform_admin=is_platform_admin, enabled=True, created_at=datetime.now(UTC))
        self.rows[account.id] = account
        self.hashes[account.id] = password_hash
        return account

    async def delete(self, account_id: int) -> None:
        self.rows.pop(account_id)

    async def list(self, *, offset: int, limit: int, search: str | None) -> tuple[builtins.list[Account], int]:
        found = [a for a in self.rows.values() if not search or search in a.username]
        return found[offset:offset + limit], len(found)

    async def update(self, account_id: int, **changes: object) -> Account:
        if "password_hash" in changes:
            self.hashes[account_id] = str(changes.pop("password_hash"))
        self.rows[account_id] = replace(self.rows[account_id], **changes)  # type: ignore[arg-type]
        return self.rows[account_id]

    async def memberships(self, account_id: int) -> dict[int, TenantRole]:
        return {t: r for (t, a), r in self.members.items() if a == account_id}

    async def set_membership(self, tenant_id: int, account_id: int, role: TenantRole) -> None:
        self.members[(tenant_id, account_id)] = role

    async def remove_membership(self, tenant_id: int, account_id: int) -> bool:
        return self.members.pop((tenant_id, account_id), None) is not None

    async def tenant_ids_by_code(self, codes: builtins.list[str]) -> dict[str, int]:
        return {c: self.tenants[c] for c in codes if c in self.tenants}

    async def enabled_admins(self) -> int:
        return sum(1 for a in self.rows.values() if a.is_platform_admin and a.enabled)


class FakeHasher:
    def __init__(self) -> None:
        self.verified = 0

    def hash(self, password: str) -> str:
        return f"hashed:{password}"

    def verify(self, hashed: str, password: str) -> bool:
        self.verified += 1
        return hashed == f"hashed:{password}"


class FakeAttempts:
    """Locks at ``max_failures``, like the Redis adapter, and records what the service asked."""

    def __init__(self, max_failures: int = 5) -> None:
        self.max = max_failures
        self.failures: dict[str, int] = {}
        self.calls: list[str] = []

    async def locked_for(self, username: str) -> int:
        self.calls.append("locked_for")
        return 1800 if self.failures.get(username.lower(), 0) >= self.max else 0

    async def record_failure(self, username: str) -> int:
        self.calls.append("record_failure")
        self.failures[username.lower()] = self.failures.get(username.lower(), 0) + 1
        return self.failures[username.lower()]

    async def reset(self, username: str) -> None:
        self.calls.append("reset")
        self.failures.pop(username.lower(), None)


class FakeTokens:
    def issue(self, account_id: int, username: str) -> str:
        return f"token:{account_id}:{username}"


class FakeDirectory:
    def __init__(self, users: dict[str, tuple[str, DirectoryUser]] | None = None, *, down: bool = False) -> None:
        self.users = users or {}  # lower-cased login name -> (password, user)
        self.down = down
        self.calls = 0

    async def authenticate(self, username: str, password: str) -> DirectoryUser | None:
        self.calls += 1
        if self.down:
            raise DirectoryUnavailable("connection refused")
        found = self.users.get(username.lower())
        return found[1] if found and found[0] == password else None


def service(*, accounts: FakeAccounts | None = None, attempts: FakeAttempts | None = None,
            hasher: FakeHasher | None = None, directory: FakeDirectory | None = None,
            mapping: dict[str, str] | None = None) -> AccountService:
    return AccountService(accounts=accounts or FakeAccounts(), hasher=hasher or FakeHasher(),
                          attempts=attempts or FakeAttempts(), tokens=FakeTokens(), directory=directory,
                          group_mapping=mapping)


async def login_error(svc: AccountService, username: str, password: str) -> DomainError:
    with pytest.raises(DomainError) as caught:
        await svc.login(username, password)
    return caught.value


async def test_locked_account_is_refused_before_the_password_is_checked() -> None:
    accounts, attempts, hasher, directory = FakeAccounts(), FakeAttempts(), FakeHasher(), FakeDirectory()
    await accounts.create(username="alice", email="", nickname="", password_hash="hashed:right",
                          source=AccountSource.LOCAL, is_platform_admin=False)
    attempts.failures["alice"] = 5
    svc = service(accounts=accounts, attempts=attempts, hasher=hasher, directory=directory)

    error = await login_error(svc, "alice", "right")
    assert error.code == AccountErrorCode.ACCOUNT_LOCKED
    assert "30 minute" in error.message
    assert hasher.verified == 0 and directory.calls == 0
    # Refusing a locked account neither extends the lock nor clears it.
    assert attempts.calls == ["locked_for"]
    assert attempts.failures["alice"] == 5


async def test_five_failures_lock_then_a_success_resets() -> None:
    accounts, attempts = FakeAccounts(), FakeAttempts()
    await accounts.create(username="bob", email="", nickname="", password_hash="hashed:right",
                          source=AccountSource.LOCAL, is_platform_admin=False)
    svc = service(accounts=accounts, attempts=attempts)

    for _ in range(4):
        assert (await login_error(svc, "bob", "wrong")).code == AccountErrorCode.INVALID_CREDENTIALS
    result = await svc.login("bob", "right")
    assert result.token == "token:1:bob" and result.account.last_login_at is not None
    assert "bob" not in attempts.failures

    for _ in range(5):
        await login_error(svc, "bob", "wrong")
    assert (await login_error(svc, "bob", "right")).code == AccountErrorCode.ACCOUNT_LOCKED


async def test_unknown_user_and_wrong_password_read_the_same() -> None:
    accounts, attempts = FakeAccounts(), FakeAttempts()
    await accounts.create(username="bob", email="", nickname="", password_hash="hashed:right",
                          source=AccountSource.LOCAL, is_platform_admin=False)
    svc = service(accounts=accounts, attempts=attempts)
    wrong, unknown = await login_error(svc, "bob", "wrong"), await login_error(svc, "nobody", "wrong")
    assert (wrong.code, wrong.message, wrong.field) == (unknown.code, unknown.message, unknown.field)
    assert attempts.failures == {"bob": 1, "nobody": 1}


async def test_disabled_account_is_reported_only_with_the_right_password() -> None:
    accounts = FakeAccounts()
    account = await accounts.create(username="dave", email="", nickname="", password_hash="hashed:right",
                                    source=AccountSource.LOCAL, is_platform_admin=False)
    await accounts.update(account.id, enabled=False)
    svc = service(accounts=accounts)
    assert (await login_error(svc, "dave", "wrong")).code == AccountErrorCode.INVALID_CREDENTIALS
    assert (await login_error(svc, "dave", "right")).code == AccountErrorCode.ACCOUNT_DISABLED


async def test_directory_login_creates_and_maps_the_account() -> None:
    accounts = FakeAccounts()
    accounts.tenants = {"team-a": 10, "team-b": 20}
    alice = DirectoryUser(dn="uid=alice,ou=people", username="alice", email="alice@example.org",
                          display_name="Alice", groups=("llm-admins", "team-a"))
    svc = service(accounts=accounts, directory=FakeDirectory({"alice": ("secret", alice)}),
                  mapping={"llm-admins": "admin", "team-a": "team-a:maintainer", "team-b": "team-b:member"})

    result = await svc.login("alice", "secret")
    assert (result.account.source, result.account.is_platform_admin) == (AccountSource.LDAP, True)
    assert (result.account.email, result.account.nickname) == ("alice@example.org", "Alice")
    assert await accounts.memberships(result.account.id) == {10: TenantRole.MAINTAINER}
    assert accounts.hashes[result.account.id] == ""  # the password stays in the directory

    again = await svc.login("alice", "secret")
    assert again.account.id == result.account.id and len(accounts.rows) == 1


async def test_directory_spelling_of_the_name_finds_the_existing_account() -> None:
    accounts = FakeAccounts()
    alice = DirectoryUser(dn="uid=alice,ou=people", username="alice")
    svc = service(accounts=accounts, directory=FakeDirectory({"alice": ("secret", alice)}))
    first = await svc.login("alice", "secret")
    upper = await svc.login("ALICE", "secret")
    assert upper.account.id == first.account.id and len(accounts.rows) == 1


async def test_local_account_wins_over_the_directory() -> None:
    accounts, directory = FakeAccounts(), FakeDirectory()
    carol = DirectoryUser(dn="uid=carol,ou=people", username="carol", groups=("llm-admins",))
    directory.users = {"carol": ("directory-pass", carol)}
    local = await accounts.create(username="carol", email="", nickname="", password_hash="hashed:local-pass",
                                  source=AccountSource.LOCAL, is_platform_admin=False)
    svc = service(accounts=accounts, directory=directory, mapping={"llm-admins": "admin"})

    assert (await svc.login("carol", "local-pass")).account.source == AccountSource.LOCAL
    assert (await login_error(svc, "carol", "directory-pass")).code == AccountErrorCode.INVALID_CREDENTIALS
    # Typed in another case, the directory accepts the name, but the local account is not handed over.
    assert (await login_error(svc, "CAROL", "directory-pass")).code == AccountErrorCode.INVALID_CREDENTIALS
    assert accounts.rows[local.id].source == AccountSource.LOCAL
    assert accounts.rows[local.id].is_platform_admin is False
    assert len(accounts.rows) == 1


async def test_unavailable_directory_is_typed_and_does_not_count_as_a_failure() -> None:
    attempts = FakeAttempts()
    svc = service(attempts=attempts, directory=FakeDirectory(down=True))
    error = await login_error(svc, "alice", "secret")
    assert error.code == AccountErrorCode.DIRECTORY_UNAVAILABLE
    assert "connection refused" not in error.message  # adapter details stay in the log
    assert attempts.failures == {}


async def test_empty_credentials_are_refused_without_lookups() -> None:
    attempts, directory = FakeAttempts(), FakeDirectory()
    svc = service(attempts=attempts, directory=directory)
    for username, password in (("", "x"), ("  ", "x"), ("alice", "")):
        assert (await login_error(svc, username, password)).code == AccountErrorCode.INVALID_CREDENTIALS
    assert attempts.calls == [] and directory.calls == 0


# --- never lock the platform out -------------------------------------------------------------
async def test_the_last_enabled_administrator_is_kept_and_no_one_locks_themselves_out() -> None:
    accounts = FakeAccounts()
    svc = service(accounts=accounts)
    first = await accounts.create(username="root", email="", nickname="", password_hash="h",
                                  source=AccountSource.LOCAL, is_platform_admin=True)
    second = await accounts.create(username="ops", email="", nickname="", password_hash="h",
                                   source=AccountSource.LOCAL, is_platform_admin=True)
    for change in ({"enabled": False}, {"is_platform_admin": False}):
        with pytest.raises(DomainError) as own:
            await svc.update(first.id, actor=first.id, **change)  # type: ignore[arg-type]
        assert own.value.code == AccountErrorCode.INVALID and "your own account" in own.value.message
    with pytest.raises(DomainError):
        await svc.delete(first.id, actor=first.id)
    assert (await svc.update(second.id, enabled=False, actor=first.id)).enabled is False  # another one: fine
    # first is now the last enabled administrator: nobody (not even an operator's call, actor None) removes it
    for attempt in (svc.update(first.id, enabled=False), svc.update(first.id, is_platform_admin=False),
                    svc.delete(first.id)):
        with pytest.raises(DomainError) as last:
            await attempt
        assert last.value.code == AccountErrorCode.LAST_ADMIN
    assert (await svc.update(first.id, nickname="still here")).nickname == "still here"  # other changes are fine


async def test_an_operator_at_the_shell_resets_a_password_and_enables_an_account() -> None:
    from aigc_admin.domain.accounts.service import AccountRecovery

    accounts, hasher = FakeAccounts(), FakeHasher()
    locked = await accounts.create(username="root", email="", nickname="", password_hash="old",
                                   source=AccountSource.LOCAL, is_platform_admin=False)
    await accounts.update(locked.id, enabled=False)
    recovery = AccountRecovery(accounts=accounts, hasher=hasher)
    account, password = await recovery.reset_password("root")
    assert len(password) >= 16 and accounts.hashes[account.id] == f"hashed:{password}"
    enabled = await recovery.enable("root", platform_admin=True)
    assert enabled.enabled and enabled.is_platform_admin
    with pytest.raises(DomainError) as weak:
        await recovery.reset_password("root", "short")
    assert weak.value.code == AccountErrorCode.WEAK_PASSWORD
    with pytest.raises(DomainError) as missing:
        await recovery.reset_password("nobody")
    assert missing.value.code.value == "NOT_FOUND"
