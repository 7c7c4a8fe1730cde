"""Login, tokens, lockout and password storage, through the GraphQL API (SQLite and MariaDB)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from aigc_admin.adapters.db.models import Account, SysAudit
from aigc_admin.adapters.security import JwtTokens
from tests.support.api import USER_PASSWORD, ApiHarness, unique

LOGIN = """
mutation($u: String!, $p: String!) {
  login(input: {username: $u, password: $p}) {
    token
    account { username source }
    errors { field code message }
  }
}"""
ME = "{ me { account { id username } } }"
DISABLE = """
mutation($i: UpdateAccountInput!) {
  updateAccount(input: $i) { account { enabled } errors { code message } }
}"""
LOCKOUT_MINUTES = 30  # the default of auth.lockout.minutes
LOCKOUT_ATTEMPTS = 5  # the default of auth.lockout.attempts


@pytest.fixture(scope="module")
async def redis_client(api: ApiHarness) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(api.settings.redis_hosts, decode_responses=True)
    yield client
    await client.aclose()


def failures_key(api: ApiHarness, username: str) -> str:
    return f"{api.settings.redis_prefix}:login-failures:{username.lower()}"


async def login(api: ApiHarness, username: str, password: str) -> dict[str, Any]:
    data = await api.ok(LOGIN, {"u": username, "p": password})
    return dict(data["login"])


def error_codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


def top_level_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


# --- login and tokens -------------------------------------------------------------------------
async def test_local_login_token_works_with_bearer_and_x_token(api: ApiHarness) -> None:
    name = unique("u")
    account_id, _ = await api.create_user(name)
    result = await login(api, name, USER_PASSWORD)
    assert result["errors"] == []
    assert result["account"] == {"username": name, "source": "LOCAL"}
    token = result["token"]
    assert token

    by_bearer = await api.ok(ME, token=token)
    assert by_bearer["me"]["account"] == {"id": account_id, "username": name}
    by_x_token = await api.ok(ME, headers={"X-Token": token})
    assert by_x_token["me"]["account"] == {"id": account_id, "username": name}


async def test_me_without_a_token_is_unauthenticated(api: ApiHarness) -> None:
    body = await api.gql(ME)
    assert body["data"] is None
    assert top_level_codes(body) == ["UNAUTHENTICATED"]


async def test_wrong_password_and_unknown_user_fail_alike(api: ApiHarness) -> None:
    name = unique("u")
    await api.create_user(name)
    wrong = await login(api, name, "not-the-password")
    unknown = await login(api, unique("nobody"), "not-the-password")
    for result in (wrong, unknown):
        assert result["token"] is None
        assert result["account"] is None
        assert error_codes(result) == ["INVALID_CREDENTIALS"]
    # No user enumeration: an unknown user and a wrong password read the same.
    assert wrong["errors"] == unknown["errors"]


async def test_empty_password_is_refused(api: ApiHarness) -> None:
    result = await login(api, "admin", "")
    assert result["token"] is None
    assert error_codes(result) == ["INVALID_CREDENTIALS"]


async def test_expired_token_is_unauthenticated(api: ApiHarness) -> None:
    account_id, _ = await api.create_user(unique("u"))
    expired = JwtTokens(api.settings.jwt_secret(), issuer=api.settings.server_name, ttl_seconds=-10)
    body = await api.gql(ME, token=expired.issue(int(account_id), "whoever"))
    assert body["data"] is None
    assert top_level_codes(body) == ["UNAUTHENTICATED"]

    # The same claims with a live lifetime are accepted: the expiry is what was refused.
    fresh = JwtTokens(api.settings.jwt_secret(), issuer=api.settings.server_name, ttl_seconds=60)
    data = await api.ok(ME, token=fresh.issue(int(account_id), "whoever"))
    assert data["me"]["account"]["id"] == account_id


async def test_token_signed_with_another_secret_is_unauthenticated(api: ApiHarness) -> None:
    account_id, _ = await api.create_user(unique("u"))
    forged = JwtTokens("some-other-secret-" + "x" * 32, issuer=api.settings.server_name, ttl_seconds=3600)
    body = await api.gql(ME, token=forged.issue(int(account_id), "whoever"))
    assert body["data"] is None
    assert top_level_codes(body) == ["UNAUTHENTICATED"]


async def test_token_of_another_issuer_and_garbage_are_unauthenticated(api: ApiHarness) -> None:
    account_id, _ = await api.create_user(unique("u"))
    other_issuer = JwtTokens(api.settings.jwt_secret(), issuer="someone-else", ttl_seconds=3600)
    for token in (other_issuer.issue(int(account_id), "whoever"), "not-a-jwt"):
        body = await api.gql(ME, token=token)
        assert top_level_codes(body) == ["UNAUTHENTICATED"]


# --- lockout ----------------------------------------------------------------------------------
async def test_five_failures_lock_the_account_even_for_the_right_password(
    api: ApiHarness, redis_client: aioredis.Redis
) -> None:
    name, bystander = unique("locked"), unique("bystander")
    await api.create_user(name)
    await api.create_user(bystander)
    # Changing the case of the login name must not dodge the counter.
    for attempt in range(LOCKOUT_ATTEMPTS):
        result = await login(api, name.upper() if attempt % 2 else name, "wrong-password")
        assert error_codes(result) == ["INVALID_CREDENTIALS"], attempt

    locked = await login(api, name, USER_PASSWORD)
    assert locked["token"] is None
    assert error_codes(locked) == ["ACCOUNT_LOCKED"]

    # Only this username is locked.
    other = await login(api, bystander, USER_PASSWORD)
    assert other["errors"] == [] and other["token"]

    # The lock lasts auth.lockout.minutes (30) from the last failure.
    ttl = await redis_client.ttl(failures_key(api, name))
    assert LOCKOUT_MINUTES * 60 - 60 < ttl <= LOCKOUT_MINUTES * 60

    # When the window has passed (the key expired), the right password works again.
    await redis_client.delete(failures_key(api, name))
    unlocked = await login(api, name, USER_PASSWORD)
    assert unlocked["errors"] == [] and unlocked["token"]


async def test_successful_login_resets_the_failure_counter(api: ApiHarness, redis_client: aioredis.Redis) -> None:
    name = unique("u")
    await api.create_user(name)
    for _ in range(LOCKOUT_ATTEMPTS - 1):
        await login(api, name, "wrong-password")
    assert await redis_client.get(failures_key(api, name)) == str(LOCKOUT_ATTEMPTS - 1)

    assert (await login(api, name, USER_PASSWORD))["errors"] == []
    assert await redis_client.exists(failures_key(api, name)) == 0

    # Four more failures stay below the threshold because the counter started again.
    for _ in range(LOCKOUT_ATTEMPTS - 1):
        await login(api, name, "wrong-password")
    assert (await login(api, name, USER_PASSWORD))["errors"] == []


# --- disabled accounts ------------------------------------------------------------------------
async def test_disabled_account_cannot_log_in_and_its_token_stops_working(api: ApiHarness) -> None:
    name = unique("u")
    account_id, token = await api.create_user(name)
    assert (await api.ok(ME, token=token))["me"]["account"]["username"] == name

    data = await api.ok(DISABLE, {"i": {"id": account_id, "enabled": False}}, token=api.admin_token)
    assert data["updateAccount"] == {"account": {"enabled": False}, "errors": []}

    refused = await login(api, name, USER_PASSWORD)
    assert refused["token"] is None
    assert error_codes(refused) == ["ACCOUNT_DISABLED"]
    body = await api.gql(ME, token=token)
    assert body["data"] is None
    assert top_level_codes(body) == ["UNAUTHENTICATED"]

    # Enabled again: the old token and a new login work.
    await api.ok(DISABLE, {"i": {"id": account_id, "enabled": True}}, token=api.admin_token)
    assert (await api.ok(ME, token=token))["me"]["account"]["username"] == name
    assert (await login(api, name, USER_PASSWORD))["errors"] == []


# --- secrets at rest --------------------------------------------------------------------------
async def test_passwords_are_stored_as_argon2_hashes(api: ApiHarness) -> None:
    name, password = unique("u"), "plain-" + unique("pw")
    await api.create_user(name, password=password)
    row = await Account.get(username=name)
    assert row.password_hash.startswith("$argon2")
    for field_name in row._meta.fields_map:
        assert password not in str(getattr(row, field_name)), field_name

    # Changing the password stores a new hash, never the text.
    new_password = "changed-" + unique("pw")
    data = await api.ok(DISABLE, {"i": {"id": str(row.id), "password": new_password}}, token=api.admin_token)
    assert data["updateAccount"]["errors"] == []
    changed = await Account.get(username=name)
    assert changed.password_hash.startswith("$argon2") and changed.password_hash != row.password_hash
    assert new_password not in changed.password_hash
    assert (await login(api, name, new_password))["errors"] == []
    assert error_codes(await login(api, name, password)) == ["INVALID_CREDENTIALS"]


async def test_audit_row_of_login_masks_the_password(api: ApiHarness) -> None:
    name, password = unique("u"), "plain-" + unique("pw")
    await api.create_user(name, password=password)  # logs in once
    await login(api, name, "wrong-" + password)

    data = await api.ok(
        """query($f: AuditLogFilter) { auditLogs(filter: $f) { totalCount items { operator operation success
           variables error } } }""",
        {"f": {"operator": name, "operation": "login"}}, token=api.admin_token)
    rows = data["auditLogs"]["items"]
    assert data["auditLogs"]["totalCount"] == 2
    assert [r["success"] for r in rows] == [False, True]  # newest first
    assert rows[1]["error"] == ""
    assert "INVALID_CREDENTIALS" in rows[0]["error"]
    for r in rows:
        assert r["operator"] == name
        assert r["variables"] == {"login": {"input": {"username": name, "password": "***"}}}

    # And nowhere in the stored table.
    stored = await SysAudit.filter(operator=name).values_list("variables", "error")
    assert stored
    assert all(password not in json.dumps(v) + e for v, e in stored)
