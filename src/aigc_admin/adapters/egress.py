"""The one way tools reach the network: an HTTP client whose transport applies ``domain/egress.py`` to every
request it sends, redirect hops included.

For each request the transport checks the scheme and the tenant's allow-list, resolves the host **once**, checks
every address it resolved to (a name with one public and one private record is refused), and connects to the
address it checked, keeping the name in the Host header and as the TLS server name, so a second resolution (DNS
rebinding) cannot send it elsewhere. The client follows redirects itself, so each hop comes back through the
transport and is checked again. Environment proxies are ignored (a proxy would connect on its own).

Works with httpx and with httpx2 (the ``mcp`` SDK's client library), which share the transport interface.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import httpx

from aigc_admin.domain.egress import MAX_REDIRECTS, EgressErrorCode, EgressPolicy, EgressRefused, IPAddress

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to (an IP literal: itself; the C resolver's forms like 2130706433 too)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise EgressRefused(EgressErrorCode.UNRESOLVABLE, f"{host} does not resolve: {e}") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise EgressRefused(EgressErrorCode.UNRESOLVABLE, f"{host} has no address")
    return addresses


class GuardedTransport:
    """An ``AsyncBaseTransport`` (httpx or httpx2) that checks, resolves and pins every request."""

    def __init__(self, policy: EgressPolicy, *, inner: Any, request_class: Any, resolver: Resolver = resolve) -> None:
        self.policy = policy
        self.inner = inner
        self.request_class = request_class
        self.resolver = resolver

    async def handle_async_request(self, request: Any) -> Any:
        url = request.url
        host = url.host
        self.policy.check_target(url.scheme, host)
        https = url.scheme.lower() == "https"
        addresses = await self.resolver(host, url.port or (443 if https else 80))
        for ip in addresses:
            self.policy.check_address(host, ip)
        extensions = dict(request.extensions)
        if https:
            extensions["sni_hostname"] = host  # the certificate is checked against the name, not the address
        pinned = self.request_class(request.method, url.copy_with(host=str(addresses[0])), headers=request.headers,
                                    stream=request.stream, extensions=extensions)
        return await self.inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> GuardedTransport:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)


def guarded_client(policy: EgressPolicy, *, timeout: float = 30.0, module: ModuleType = httpx,
                   resolver: Resolver = resolve, headers: dict[str, str] | None = None) -> Any:
    """An ``AsyncClient`` of ``module`` (httpx, or httpx2 for the mcp SDK) whose every request, redirect hops
    included, goes through the guard."""
    transport = GuardedTransport(policy, inner=module.AsyncHTTPTransport(trust_env=False),
                                 request_class=module.Request, resolver=resolver)
    return module.AsyncClient(transport=transport, follow_redirects=True, max_redirects=MAX_REDIRECTS,
                              timeout=timeout, trust_env=False, headers=headers)
