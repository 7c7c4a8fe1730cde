"""Tool calls on the network (the ``ToolTransport`` port): HTTP function tools and MCP servers, every connection
through the egress guard with the tenant's policy (the platform's opened networks and the tenant's allow-list)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from aigc_admin.adapters.egress import guarded_client
from aigc_admin.adapters.mcp_tools import call_mcp_tool, list_mcp_tools
from aigc_admin.domain.assistants import http_tool
from aigc_admin.domain.assistants.entities import HttpSpec, McpServer, McpToolInfo, ToolOutcome
from aigc_admin.domain.egress import EgressPolicy, EgressRefused

HostsOf = Callable[[int], Awaitable[Sequence[str]]]
CLIENTS = 64  # guarded clients kept (one per distinct policy: building one loads the TLS trust store)
HOSTS_TTL = 5.0  # a tenant's allow-list is read again after this long (a change made in another process shows)


class NetworkToolTransport:
    def __init__(self, base: EgressPolicy, hosts_of: HostsOf) -> None:
        self.base = base
        self.hosts_of = hosts_of
        self._clients: OrderedDict[EgressPolicy, Any] = OrderedDict()
        self._policies: dict[int, tuple[float, EgressPolicy]] = {}

    async def policy(self, tenant_id: int) -> EgressPolicy:
        """The tenant's policy (its allow-list cached for ``HOSTS_TTL``: a query per tool call cost more than the
        call to a nearby tool)."""
        now = time.monotonic()
        cached = self._policies.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        policy = self.base.with_hosts(await self.hosts_of(tenant_id))
        if len(self._policies) > 10_000:
            self._policies.clear()
        self._policies[tenant_id] = (now + HOSTS_TTL, policy)
        return policy

    def forget_tenant(self, tenant_id: int) -> None:
        """The tenant's allow-list changed: read it again at the next call."""
        self._policies.pop(tenant_id, None)

    def _client(self, policy: EgressPolicy) -> httpx.AsyncClient:
        client = self._clients.get(policy)
        if client is None:
            client = self._clients[policy] = guarded_client(policy)
            if len(self._clients) > CLIENTS:  # the oldest one goes (its open requests finish on their own)
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(policy)
        return client  # type: ignore[no-any-return]

    async def call_http(self, spec: HttpSpec, arguments: dict[str, Any], *, tenant_id: int) -> ToolOutcome:
        started = time.perf_counter()

        def outcome(ok: bool, content: str, code: str = "") -> ToolOutcome:
            return ToolOutcome(ok, content, code, (time.perf_counter() - started) * 1000)

        try:
            req = http_tool.build_request(spec, arguments)
        except http_tool.ArgumentsInvalid as e:
            return outcome(False, f"invalid arguments: {e}", "INVALID_ARGUMENTS")
        # an extraction needs the whole JSON document (up to the largest cap); otherwise the cap is what is read
        limit = http_tool.MAX_RESPONSE_BYTES if spec.extract else spec.max_response_bytes
        try:
            client = self._client(await self.policy(tenant_id))
            request = client.build_request(req.method, req.url, params=list(req.params) or None, headers=req.headers,
                                           json=req.json_body if req.has_body else None,
                                           timeout=spec.timeout_seconds)
            response = await client.send(request, stream=True)
            try:
                body, complete = await _read_capped(response, limit)
            finally:
                await response.aclose()
        except EgressRefused as e:
            return outcome(False, e.message, str(e.code))
        except httpx.TimeoutException:
            return outcome(False, f"no answer within {spec.timeout_seconds:g} s", "TIMEOUT")
        except httpx.TooManyRedirects:
            return outcome(False, "too many redirects", "TOO_MANY_REDIRECTS")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as e:
            return outcome(False, f"the URL cannot be called: {e}", "INVALID_URL")
        except httpx.HTTPError as e:
            return outcome(False, f"the call failed: {type(e).__name__}", "UNAVAILABLE")
        if response.status_code >= 400:
            text = http_tool.truncate(body.decode(errors="replace"), 1000)
            return outcome(False, f"HTTP {response.status_code}: {text}", f"HTTP_{response.status_code}")
        if spec.extract and not complete:
            return outcome(False, f"the response is larger than {limit} bytes", "TOO_LARGE")
        try:
            text = http_tool.response_text(body, spec)
        except http_tool.ExtractFailed as e:
            return outcome(False, str(e), "EXTRACT_FAILED")
        if not complete and not text.endswith("[truncated]"):
            text += " … [truncated]"
        return outcome(True, text)

    async def list_mcp_tools(self, server: McpServer) -> list[McpToolInfo]:
        return await list_mcp_tools(server, await self.policy(server.tenant_id))

    async def call_mcp(self, server: McpServer, tool: str, arguments: dict[str, Any]) -> ToolOutcome:
        return await call_mcp_tool(server, await self.policy(server.tenant_id), tool, arguments)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            await client.aclose()


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether that was all of it."""
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(parts)[:limit], False
    return b"".join(parts), True
