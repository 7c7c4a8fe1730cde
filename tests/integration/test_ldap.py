"""LdapDirectory against a real, throwaway slapd."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigc_admin.adapters.ldap import LdapDirectory, _split_host
from aigc_admin.domain.accounts.ports import DirectoryUnavailable
from tests.support.slapd import SlapdServer, free_port, start_slapd

pytestmark = pytest.mark.ldap


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    server = start_slapd(Path(tmp_path_factory.mktemp("slapd")))
    yield server
    server.stop()


def directory(server: SlapdServer, **overrides: object) -> LdapDirectory:
    kwargs: dict[str, object] = {
        "host": server.url,
        "port": server.port,
        "use_ssl": False,
        "base_dn": server.base_dn,
        "bind_user": server.reader_dn,
        "bind_pass": server.reader_password,
        "user_filter": "(uid=%s)",
        "group_filter": "(member=%s)",
        "user_attrs": ["mail", "cn", "displayName", "uid"],
        "timeout": 3.0,
    }
    kwargs.update(overrides)
    return LdapDirectory(**kwargs)  # type: ignore[arg-type]


async def test_good_password_returns_user_with_groups(slapd: SlapdServer) -> None:
    user = await directory(slapd).authenticate("alice", "alice-secret")
    assert user is not None
    assert user.dn == slapd.user_dn("alice")
    assert user.username == "alice"
    assert user.email == "alice@example.org"
    assert user.display_name == "Alice"
    assert {"llm-admins", "team-a"} <= set(user.groups)
    assert "team-b" not in user.groups
    assert f"cn=llm-admins,ou=groups,{slapd.base_dn}" in user.groups


async def test_bare_hostname_and_other_user(slapd: SlapdServer) -> None:
    user = await directory(slapd, host="127.0.0.1").authenticate("carol", "carol-secret")
    assert user is not None
    assert [g for g in user.groups if not g.startswith("cn=")] == ["team-b"]


async def test_wrong_password(slapd: SlapdServer) -> None:
    assert await directory(slapd).authenticate("alice", "bob-secret") is None


async def test_empty_password_is_refused(slapd: SlapdServer) -> None:
    assert await directory(slapd).authenticate("alice", "") is None


async def test_unknown_user(slapd: SlapdServer) -> None:
    assert await directory(slapd).authenticate("mallory", "alice-secret") is None


@pytest.mark.parametrize("username", ["*", "alice)(uid=*", "al*", "alice)(|(uid=*", "*)(uid=alice"])
async def test_filter_injection_finds_nobody(slapd: SlapdServer, username: str) -> None:
    assert await directory(slapd).authenticate(username, "alice-secret") is None


async def test_ambiguous_filter_matches_nobody(slapd: SlapdServer) -> None:
    # A filter that matches every person must not log anyone in.
    wide = directory(slapd, user_filter="(|(uid=%s)(objectClass=inetOrgPerson))")
    assert await wide.authenticate("alice", "alice-secret") is None


async def test_bad_service_password_is_unavailable(slapd: SlapdServer) -> None:
    secret = "wrong-Service-Pass-42"
    with pytest.raises(DirectoryUnavailable) as info:
        await directory(slapd, bind_pass=secret).authenticate("alice", "alice-secret")
    assert secret not in str(info.value)
    assert secret not in repr(info.value)


async def test_unreachable_server_is_unavailable_within_timeout(slapd: SlapdServer) -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable) as info:
        await directory(slapd, host="ldap://127.0.0.1", port=port, timeout=2.0).authenticate(
            "alice", "alice-secret"
        )
    assert time.monotonic() - started < 5.0
    assert slapd.reader_password not in str(info.value)


async def test_silent_server_times_out(slapd: SlapdServer) -> None:
    # Accepts TCP connections (kernel backlog) but never answers an LDAP request.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(DirectoryUnavailable):
            await directory(slapd, host=f"ldap://127.0.0.1:{port}", timeout=1.0).authenticate(
                "alice", "alice-secret"
            )
        assert time.monotonic() - started < 4.0


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("ldap://ldap.example.com", ("ldap.example.com", 389, False)),
        ("ldaps://ldap.example.com", ("ldap.example.com", 389, True)),
        ("ldap://ldap.example.com:1389/", ("ldap.example.com", 1389, False)),
        ("ldap.example.com", ("ldap.example.com", 389, False)),
    ],
)
def test_host_forms(host: str, expected: tuple[str, int, bool]) -> None:
    assert _split_host(host, 389, False) == expected


def test_from_settings_parses_attrs(slapd: SlapdServer) -> None:
    class S:
        ldap_host = slapd.url
        ldap_port = slapd.port
        ldap_use_ssl = False
        ldap_base_dn = slapd.base_dn
        ldap_bind_user = slapd.reader_dn
        ldap_bind_pass = slapd.reader_password
        ldap_user_filter = "(uid=%s)"
        ldap_group_filter = "(|(member=%s)(uniqueMember=%s))"
        ldap_user_attr = "mail, cn,displayName"

    d = LdapDirectory.from_settings(S())
    assert slapd.reader_password not in repr(d)
    assert d._user_attrs[:3] == ["mail", "cn", "displayName"]
    assert d._group_filter.count("%s") == 2


async def test_from_settings_authenticates(slapd: SlapdServer) -> None:
    class S:
        ldap_host = "127.0.0.1"
        ldap_port = slapd.port
        ldap_use_ssl = False
        ldap_base_dn = slapd.base_dn
        ldap_bind_user = slapd.reader_dn
        ldap_bind_pass = slapd.reader_password
        ldap_user_filter = "(uid=%s)"
        ldap_group_filter = "(|(member=%s)(uniqueMember=%s))"
        ldap_user_attr = "mail,cn,displayName,uid"

    user = await LdapDirectory.from_settings(S()).authenticate("bob", "bob-secret")
    assert user is not None and "team-a" in user.groups and "llm-admins" not in user.groups
