"""The egress rules: which addresses tools may reach, the platform's opened networks, a tenant's allow-list."""

from __future__ import annotations

import ipaddress

import pytest

from aigc_admin.domain.egress import (
    EgressErrorCode,
    EgressPolicy,
    EgressRefused,
    blocked_reason,
    check_host_pattern,
    host_matches,
    parse_networks,
)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.255.254", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254",
    "fe80::1", "fd00:ec2::254", "fc00::1", "224.0.0.1", "ff02::1", "0.0.0.0", "::", "240.0.0.1",
    "255.255.255.255", "192.0.2.1", "198.18.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    "2002:7f00:1::", "2001:0:4136:e378:8000:63bf:80ff:fffe"])  # 6to4 and Teredo wrapping 127.0.0.1
def test_addresses_that_are_not_globally_routable_are_blocked(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None
    with pytest.raises(EgressRefused) as e:
        EgressPolicy().check_address("h", ipaddress.ip_address(address))
    assert e.value.code == EgressErrorCode.ADDRESS_NOT_ALLOWED


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None
    EgressPolicy().check_address("h", ipaddress.ip_address(address))


def test_opened_networks_open_exactly_what_they_name() -> None:
    policy = EgressPolicy(allowed_networks=parse_networks("127.0.0.1/32, 10.20.0.0/16"))
    for opened in ("127.0.0.1", "10.20.3.4", "::ffff:10.20.0.9"):
        policy.check_address("h", ipaddress.ip_address(opened))
    for closed in ("127.0.0.2", "10.21.0.1", "169.254.169.254", "::1"):
        with pytest.raises(EgressRefused):
            policy.check_address("h", ipaddress.ip_address(closed))
    with pytest.raises(ValueError, match="not a network"):
        parse_networks("10.0.0.0/8, nonsense")


def test_schemes_and_the_tenant_allow_list() -> None:
    with pytest.raises(EgressRefused) as e:
        EgressPolicy().check_target("file", "etc")
    assert e.value.code == EgressErrorCode.SCHEME_NOT_ALLOWED
    for scheme in ("gopher", "ftp", "dict", ""):
        with pytest.raises(EgressRefused):
            EgressPolicy().check_target(scheme, "example.com")
    EgressPolicy().check_target("HTTPS", "anything.example")  # no allow-list: any host (addresses still checked)
    listed = EgressPolicy(allowed_hosts=("api.example.com", "*.tools.example.org"))
    listed.check_target("https", "API.example.com")
    listed.check_target("https", "a.b.tools.example.org")
    for other in ("example.com", "api.example.com.evil.net", "tools.example.org", "xtools.example.org"):
        with pytest.raises(EgressRefused) as e:
            listed.check_target("https", other)
        assert e.value.code == EgressErrorCode.HOST_NOT_ALLOWED
    assert host_matches("x.example.com.", "*.example.com") and not host_matches("example.com", "*.example.com")
    assert check_host_pattern(" *.Example.COM ") == "*.example.com"
    for bad in ("", "*.", "exa mple.com", "http://x", "a..b", "*"):
        with pytest.raises(ValueError):
            check_host_pattern(bad)
