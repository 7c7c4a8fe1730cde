"""Where the platform's outbound calls for tools may go: the rules. ``adapters/egress.py`` applies them to every
connection a tool makes (HTTP tools, OpenAPI operations, MCP servers), after resolving the host once and before
connecting to the address it checked, on every redirect hop again.

- Only ``http`` and ``https``.
- No address that is not globally routable: loopback, private (RFC 1918, unique local fc00::/7), shared
  (100.64/10), link-local (169.254/16 with the cloud metadata address, fe80::/10), multicast, reserved,
  unspecified, documentation and benchmark ranges. IPv4 written any other way (2130706433, 0x7f000001,
  0177.0.0.1) resolves to the same address and is refused like it; an IPv6 address that embeds an IPv4 one
  (IPv4-mapped ::ffff:a.b.c.d, 6to4, Teredo) is judged by the IPv4 one too.
- ``egress.allow.networks`` (a platform setting, empty by default) names the private ranges that on-premises
  tools may reach: exactly those networks are opened, nothing else.
- A tenant's allow-list, when it has one, limits its tools to the hosts it names (``api.example.com``, or
  ``*.example.com`` for the subdomains of example.com).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from aigc_admin.domain.errors import DomainError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = ("http", "https")
MAX_REDIRECTS = 5


class EgressErrorCode(StrEnum):
    SCHEME_NOT_ALLOWED = "SCHEME_NOT_ALLOWED"
    HOST_NOT_ALLOWED = "HOST_NOT_ALLOWED"  # not on the tenant's allow-list
    ADDRESS_NOT_ALLOWED = "ADDRESS_NOT_ALLOWED"  # resolves to a loopback, private, link-local … address
    UNRESOLVABLE = "UNRESOLVABLE"


class EgressRefused(DomainError):
    """An outbound call the rules do not allow (the agent sees it as the tool's failure; the audit log records
    it)."""

    def __init__(self, code: EgressErrorCode, message: str) -> None:
        super().__init__(code, message, "url")


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be reached from a tool (None: it is globally routable)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            reason = blocked_reason(embedded)
            return f"{reason} (embedded in {ip})" if reason else None
    for test, reason in ((ip.is_unspecified, "unspecified"), (ip.is_loopback, "loopback"),
                         (ip.is_link_local, "link-local (cloud metadata lives here)"), (ip.is_multicast, "multicast"),
                         (ip.is_private, "private"), (ip.is_reserved, "reserved")):
        if test:
            return reason
    if not ip.is_global:
        return "not globally routable"
    return None


def host_matches(host: str, pattern: str) -> bool:
    host, pattern = host.lower().rstrip("."), pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """``egress.allow.networks``: comma-separated CIDRs ("" = none); a bad one raises ValueError naming it."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"egress.allow.networks: {part!r} is not a network (e.g. 10.20.0.0/16)") from None
    return tuple(out)


def check_host_pattern(pattern: str) -> str:
    """A tenant allow-list entry, normalised; ValueError when it is not a host name or ``*.domain``."""
    p = pattern.strip().lower().rstrip(".")
    bare = p[2:] if p.startswith("*.") else p
    labels = bare.split(".")
    if not bare or len(bare) > 253 or any(not label or len(label) > 63 or not all(
            c.isalnum() or c == "-" for c in label) for label in labels):
        raise ValueError(f"{pattern!r} is not a host name or *.domain")
    return p


@dataclass(frozen=True)
class EgressPolicy:
    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: tuple[str, ...] = ()  # the tenant's allow-list; empty: any host with a public address

    def with_hosts(self, hosts: Iterable[str]) -> EgressPolicy:
        return EgressPolicy(self.allowed_networks, tuple(hosts))

    def check_target(self, scheme: str, host: str) -> None:
        """Before resolving: the scheme, and the tenant's allow-list."""
        if scheme.lower() not in SCHEMES:
            raise EgressRefused(EgressErrorCode.SCHEME_NOT_ALLOWED, f"only http and https are allowed, not {scheme!r}")
        if self.allowed_hosts and not any(host_matches(host, p) for p in self.allowed_hosts):
            raise EgressRefused(EgressErrorCode.HOST_NOT_ALLOWED, f"{host} is not on the tenant's allow-list")

    def check_address(self, host: str, ip: IPAddress) -> None:
        """After resolving: the address the call would connect to."""
        reason = blocked_reason(ip)
        if reason is None:
            return
        candidates = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        if any(c in net for c in candidates for net in self.allowed_networks if net.version == c.version):
            return
        shown = host if host == str(ip) else f"{host} ({ip})"
        raise EgressRefused(EgressErrorCode.ADDRESS_NOT_ALLOWED, f"{shown} is {reason}: tools may not reach it "
                            "(an operator can open a private range with egress.allow.networks)")
