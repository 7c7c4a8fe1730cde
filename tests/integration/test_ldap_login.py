"""LDAP login through the GraphQL API, against a real throwaway slapd (app on SQLite).

Only one in-process app may be alive at a time (Tortoise's global context), so each test opens
its own app: most on one shared storage directory and Redis prefix (accounts, tenants and
failure counters carry over between them), the rest on a fresh one.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.support.api import ADMIN_PASSWORD, ApiHarness
from tests.support.redis_server import RedisServer
from tests.support.slapd import USERS, SlapdServer, free_port, start_slapd

pytestmark = pytest.mark.ldap

GROUP_MAPPING = {"llm-admins": "admin", "team-a": "team-a:maintainer", "team-b": "team-b:member"}
LOGIN = """
mutation($u: String!, $p: String!) {
  login(input: {username: $u, password: $p}) { token account { username } errors { field code message } }
}"""
ME = """{ me { account { username email source isPlatformAdmin }
              memberships { role tenant { code } } } }"""


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    server = start_slapd(Path(tmp_path_factory.mktemp("slapd")))
    yield server
    server.stop()


def ldap_flags(host: str, port: int, reader_dn: str) -> dict[str, object]:
    return {
        "ldap.host": host, "ldap.port": port, "ldap.base.dn": "dc=example,dc=org",
        "ldap.bind.user": reader_dn, "ldap.bind.pass": "reader-secret",
        "ldap.user.filter": "(uid=%s)", "ldap.group.filter": "(member=%s)",
        "ldap.group.mapping": json.dumps(GROUP_MAPPING),
    }


@contextlib.asynccontextmanager
async def ldap_app(storage: Path, redis_server: RedisServer, flags: dict[str, object]) -> AsyncIterator[ApiHarness]:
    async with ApiHarness.running(storage=storage, redis_url=redis_server.url, extra=flags) as harness:
        yield harness


@pytest.fixture(scope="module")
async def shared_storage(slapd: SlapdServer, redis_server: RedisServer,
                         tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A storage dir and flags shared by the tests below, with tenants team-a and team-b made by the admin."""
    storage = tmp_path_factory.mktemp("ldap-app")
    flags = {**ldap_flags(slapd.url, slapd.port, slapd.reader_dn), "redis.prefix": f"t{uuid.uuid4().hex[:8]}"}
    async with ldap_app(storage, redis_server, flags) as app:
        await app.create_tenant("team-a")
        await app.create_tenant("team-b")
    return storage, flags


@pytest.fixture
async def ldap_api(shared_storage: tuple[Path, dict[str, object]],
                   redis_server: RedisServer) -> AsyncIterator[ApiHarness]:
    storage, flags = shared_storage
    async with ldap_app(storage, redis_server, flags) as app:
        yield app


async def login(api: ApiHarness, username: str, password: str) -> dict[str, Any]:
    return dict((await api.ok(LOGIN, {"u": username, "p": password}))["login"])


async def me(api: ApiHarness, token: str) -> dict[str, Any]:
    data = (await api.ok(ME, token=token))["me"]
    return {"account": data["account"],
            "roles": {m["tenant"]["code"]: m["role"] for m in data["memberships"]}}


async def accounts_named(api: ApiHarness, username: str) -> list[dict[str, Any]]:
    data = await api.ok("query($s: String) { accounts(search: $s) { items { id username source } } }",
                        {"s": username}, token=api.admin_token)
    return [a for a in data["accounts"]["items"] if a["username"] == username]


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def test_alice_becomes_platform_admin_and_maintainer_of_team_a(ldap_api: ApiHarness) -> None:
    result = await login(ldap_api, "alice", USERS["alice"])
    assert result["errors"] == []
    assert await me(ldap_api, result["token"]) == {
        "account": {"username": "alice", "email": "alice@example.org", "source": "LDAP", "isPlatformAdmin": True},
        "roles": {"team-a": "MAINTAINER"},
    }


async def test_bob_is_maintainer_of_team_a_only(ldap_api: ApiHarness) -> None:
    result = await login(ldap_api, "bob", USERS["bob"])
    assert result["errors"] == []
    assert await me(ldap_api, result["token"]) == {
        "account": {"username": "bob", "email": "bob@example.org", "source": "LDAP", "isPlatformAdmin": False},
        "roles": {"team-a": "MAINTAINER"},
    }
    # Not a platform admin: admin-only fields are refused.
    body = await ldap_api.gql("{ accounts { totalCount } }", token=result["token"])
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_carol_is_member_of_team_b(ldap_api: ApiHarness) -> None:
    result = await login(ldap_api, "carol", USERS["carol"])
    assert result["errors"] == []
    assert await me(ldap_api, result["token"]) == {
        "account": {"username": "carol", "email": "carol@example.org", "source": "LDAP", "isPlatformAdmin": False},
        "roles": {"team-b": "MEMBER"},
    }


async def test_second_login_reuses_the_account(ldap_api: ApiHarness) -> None:
    first = await login(ldap_api, "alice", USERS["alice"])
    second = await login(ldap_api, "alice", USERS["alice"])
    assert first["errors"] == [] and second["errors"] == []
    found = await accounts_named(ldap_api, "alice")
    assert len(found) == 1
    assert found[0]["source"] == "LDAP"
    assert (await me(ldap_api, first["token"]))["roles"] == (await me(ldap_api, second["token"]))["roles"]


async def test_wrong_ldap_password_is_invalid_and_counts_toward_lockout(ldap_api: ApiHarness) -> None:
    redis = aioredis.Redis.from_url(ldap_api.settings.redis_hosts, decode_responses=True)
    key = f"{ldap_api.settings.redis_prefix}:login-failures:bob"
    try:
        await redis.delete(key)
        for attempt in range(ldap_api.settings.auth_lockout_attempts):
            result = await login(ldap_api, "bob", "not-bobs-password")
            assert result["token"] is None
            assert codes(result) == ["INVALID_CREDENTIALS"], attempt
        assert await redis.get(key) == str(ldap_api.settings.auth_lockout_attempts)
        assert codes(await login(ldap_api, "bob", USERS["bob"])) == ["ACCOUNT_LOCKED"]
    finally:
        await redis.delete(key)
        await redis.aclose()
    assert (await login(ldap_api, "bob", USERS["bob"]))["errors"] == []


@pytest.mark.parametrize("username", ["alice)(uid=*", "*", "alice*", "alice)(|(uid=*"])
async def test_filter_injection_matches_nobody(ldap_api: ApiHarness, username: str) -> None:
    result = await login(ldap_api, username, USERS["alice"])
    assert result["token"] is None
    assert codes(result) == ["INVALID_CREDENTIALS"]
    assert await accounts_named(ldap_api, username) == []


async def test_unknown_directory_user_is_invalid_and_creates_nothing(ldap_api: ApiHarness) -> None:
    result = await login(ldap_api, "mallory", "whatever-password")
    assert codes(result) == ["INVALID_CREDENTIALS"]
    assert await accounts_named(ldap_api, "mallory") == []


async def test_local_account_wins_over_ldap_user_of_the_same_name(
    slapd: SlapdServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    async with ldap_app(tmp_path, redis_server, ldap_flags(slapd.url, slapd.port, slapd.reader_dn)) as app:
        await app.create_tenant("team-b")
        local_password = "carol-local-password"
        await app.create_user("carol", password=local_password)

        local = await login(app, "carol", local_password)
        assert local["errors"] == []
        assert await me(app, local["token"]) == {
            "account": {"username": "carol", "email": "", "source": "LOCAL", "isPlatformAdmin": False},
            "roles": {},  # no directory sync for a local account
        }
        # The directory password is not accepted for the local account.
        assert codes(await login(app, "carol", USERS["carol"])) == ["INVALID_CREDENTIALS"]
        # Nor in another case, which the directory accepts: the local account is not taken over.
        assert codes(await login(app, "CAROL", USERS["carol"])) == ["INVALID_CREDENTIALS"]
        assert len(await accounts_named(app, "carol")) == 1


async def test_unreachable_directory_is_a_typed_error(
    slapd: SlapdServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    flags = ldap_flags("127.0.0.1", free_port(), slapd.reader_dn)  # nothing listens there
    async with ldap_app(tmp_path, redis_server, flags) as app:
        r = await app.post(LOGIN, {"u": "alice", "p": USERS["alice"]})
        assert r.status_code == 200
        body = r.json()
        assert "errors" not in body
        result = body["data"]["login"]
        assert result["token"] is None
        assert codes(result) == ["DIRECTORY_UNAVAILABLE"]
        # The service password is not leaked in the message.
        assert "reader-secret" not in r.text
        # Not the user's fault: it does not count toward the lockout.
        redis = aioredis.Redis.from_url(app.settings.redis_hosts)
        try:
            assert await redis.exists(f"{app.settings.redis_prefix}:login-failures:alice") == 0
        finally:
            await redis.aclose()
        # Local accounts still log in while the directory is down.
        assert (await login(app, "admin", ADMIN_PASSWORD))["errors"] == []


async def test_login_name_case_does_not_create_another_account(ldap_api: ApiHarness) -> None:
    assert (await login(ldap_api, "alice", USERS["alice"]))["errors"] == []
    result = await login(ldap_api, "ALICE", USERS["alice"])
    assert result["errors"] == []
    found = (await ldap_api.ok("{ accounts(search: \"alice\") { items { username } } }",
                               token=ldap_api.admin_token))["accounts"]["items"]
    assert [a["username"] for a in found] == ["alice"]
    assert (await me(ldap_api, result["token"]))["account"]["username"] == "alice"
