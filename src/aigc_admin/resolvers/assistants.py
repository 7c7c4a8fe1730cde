"""Assistant fields: tools (by hand, from OpenAPI), MCP servers, the egress allow-list, assistants (CRUD,
publish), their runs, and the live playground (``assistantRun``)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import strawberry
from strawberry.types import Info

from aigc_admin.domain.assistants.entities import HttpSpec, Limits
from aigc_admin.domain.assistants.runner import RunRequest
from aigc_admin.domain.assistants.service import AssistantInput, ToolInput
from aigc_admin.domain.errors import DomainError, Invalid
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, operator, page, page_args, parse_id, request_tenant, typed_errors
from aigc_admin.schema import assistants as a
from aigc_admin.schema.common import Page, Pagination


def _str_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise Invalid(field, f"{field} must be an object of strings")
    return dict(value)


def _spec(h: a.HttpToolInput | None) -> HttpSpec | None:
    if h is None:
        return None
    parameters: Any = h.parameters if h.parameters is not None else {"type": "object", "properties": {}}
    return HttpSpec(url=h.url.strip(), method=h.method.upper(), parameters=parameters,
                    headers=_str_map(h.headers, "headers"), secret_headers=_str_map(h.secret_headers, "secretHeaders"),
                    body=h.body, timeout_seconds=h.timeout_seconds, max_response_bytes=h.max_response_bytes,
                    extract=h.extract, user_agent=h.user_agent)


def _tool_input(i: a.ToolInput) -> ToolInput:
    return ToolInput(name=i.name, description=i.description, tool_type=i.tool_type, spec=_spec(i.http),
                     enabled=i.enabled, remark=i.remark)


def _assistant_input(i: a.AssistantInput) -> AssistantInput:
    if i.metadata is not None and not isinstance(i.metadata, dict):
        raise Invalid("metadata", "metadata must be an object")
    return AssistantInput(
        name=i.name, model_name=i.model_name, instructions=i.instructions, description=i.description,
        avatar=i.avatar, remark=i.remark, metadata=i.metadata or {},
        limits=Limits(i.max_steps, i.max_tokens, i.timeout_seconds), mode=i.mode, enabled=i.enabled,
        tool_ids=tuple(parse_id(t, "toolIds") for t in i.tool_ids),
        mcp_server_ids=tuple(parse_id(s, "mcpServerIds") for s in i.mcp_server_ids),
        channel_ids=tuple(parse_id(c, "channelIds") for c in i.channel_ids))


async def _attach(info: Info, id: strawberry.ID, tool_ids: list[strawberry.ID] | None,
                  mcp_server_ids: list[strawberry.ID] | None, *, detach: bool) -> a.AssistantPayload:
    assistant = await ctx(info).services.assistants.attach(
        parse_id(id), tool_ids=[parse_id(t, "toolIds") for t in tool_ids or ()],
        mcp_server_ids=[parse_id(s, "mcpServerIds") for s in mcp_server_ids or ()], tenant_id=request_tenant(info),
        operator=operator(info), detach=detach)
    return a.AssistantPayload(assistant=a.Assistant.from_domain(assistant))


@strawberry.type
class AssistantQueries:
    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="The tenant's tools.")
    async def tools(self, info: Info, search: str | None = None,
                    pagination: Pagination | None = None) -> Page[a.Tool]:
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.assistants.list_tools(tenant_id=request_tenant(info), search=search,
                                                                     offset=offset, limit=limit)
        return page([a.Tool.from_domain(t) for t in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER)
    async def tool(self, info: Info, id: strawberry.ID) -> a.Tool | None:
        try:
            return a.Tool.from_domain(await ctx(info).services.assistants.get_tool(parse_id(id),
                                                                                   tenant_id=request_tenant(info)))
        except DomainError:
            return None

    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="The tenant's MCP servers.")
    async def mcp_servers(self, info: Info, pagination: Pagination | None = None) -> Page[a.McpServer]:
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.assistants.list_mcp(tenant_id=request_tenant(info), offset=offset,
                                                                   limit=limit)
        return page([a.McpServer.from_domain(s) for s in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER,
                      description="The hosts the tenant's tools may call (empty: any public host).")
    async def egress_hosts(self, info: Info) -> list[str]:
        return await ctx(info).services.assistants.egress_hosts(tenant_id=request_tenant(info))

    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="The tenant's assistants.")
    async def assistants(self, info: Info, search: str | None = None,
                         pagination: Pagination | None = None) -> Page[a.Assistant]:
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.assistants.list(tenant_id=request_tenant(info), search=search,
                                                               offset=offset, limit=limit)
        return page([a.Assistant.from_domain(x) for x in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER)
    async def assistant(self, info: Info, id: strawberry.ID) -> a.Assistant | None:
        try:
            return a.Assistant.from_domain(await ctx(info).services.assistants.get(parse_id(id),
                                                                                   tenant_id=request_tenant(info)))
        except DomainError:
            return None

    @strawberry.field(permission_classes=perm.TENANT_MEMBER,
                      description="An assistant's runs, newest first (one thread's with threadId).")
    async def assistant_runs(self, info: Info, assistant_id: strawberry.ID, thread_id: str | None = None,
                             pagination: Pagination | None = None) -> Page[a.AssistantRun]:
        offset, limit = page_args(pagination)
        try:
            rows, total = await ctx(info).services.assistants.runs(
                parse_id(assistant_id, "assistantId"), tenant_id=request_tenant(info), thread_id=thread_id,
                offset=offset, limit=limit)
        except DomainError:
            return page([], 0, offset, limit)
        return page([a.AssistantRun.from_domain(r) for r in rows], total, offset, limit)


@strawberry.type
class AssistantMutations:
    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="An HTTP function tool (code_interpreter and retrieval are refused).")
    @typed_errors
    async def create_tool(self, info: Info, input: a.ToolInput) -> a.ToolPayload:
        tool = await ctx(info).services.assistants.create_tool(_tool_input(input), tenant_id=request_tenant(info),
                                                               operator=operator(info))
        return a.ToolPayload(tool=a.Tool.from_domain(tool))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    @typed_errors
    async def update_tool(self, info: Info, id: strawberry.ID, input: a.ToolInput) -> a.ToolPayload:
        keep = input.http is None or input.http.secret_headers is None
        tool = await ctx(info).services.assistants.update_tool(parse_id(id), _tool_input(input),
                                                               tenant_id=request_tenant(info), operator=operator(info),
                                                               keep_secrets=keep)
        return a.ToolPayload(tool=a.Tool.from_domain(tool))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Delete a tool (assistants that had it no longer do).")
    @typed_errors
    async def delete_tool(self, info: Info, id: strawberry.ID) -> a.AssistantOkPayload:
        await ctx(info).services.assistants.delete_tool(parse_id(id), tenant_id=request_tenant(info))
        return a.AssistantOkPayload(ok=True)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Tools from an OpenAPI 3 document, one per operation; importing again updates "
                                     "the tools of the same operations.")
    @typed_errors
    async def import_open_api_tools(self, info: Info, input: a.ImportOpenApiInput) -> a.ImportToolsPayload:
        result = await ctx(info).services.assistants.import_openapi(
            input.document, tenant_id=request_tenant(info), operator=operator(info), server_url=input.server_url,
            secret_headers=_str_map(input.secret_headers, "secretHeaders"), timeout_seconds=input.timeout_seconds)
        return a.ImportToolsPayload(created=[a.Tool.from_domain(t) for t in result.created],
                                    updated=[a.Tool.from_domain(t) for t in result.updated])

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Register an MCP server (Streamable HTTP); its tools are listed at once (a "
                                     "server that cannot be reached is not registered).")
    @typed_errors
    async def create_mcp_server(self, info: Info, input: a.McpServerInput) -> a.McpServerPayload:
        server = await ctx(info).services.assistants.create_mcp(
            name=input.name, url=input.url.strip(), headers=_str_map(input.headers, "headers"),
            timeout_seconds=input.timeout_seconds, tenant_id=request_tenant(info), operator=operator(info))
        return a.McpServerPayload(mcp_server=a.McpServer.from_domain(server))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    @typed_errors
    async def update_mcp_server(self, info: Info, id: strawberry.ID,
                                input: a.McpServerUpdateInput) -> a.McpServerPayload:
        server = await ctx(info).services.assistants.update_mcp(
            parse_id(id), tenant_id=request_tenant(info), operator=operator(info),
            url=input.url.strip() if input.url is not None else None,
            headers=_str_map(input.headers, "headers") if input.headers is not None else None,
            timeout_seconds=input.timeout_seconds, enabled=input.enabled)
        return a.McpServerPayload(mcp_server=a.McpServer.from_domain(server))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER, description="List an MCP server's tools again.")
    @typed_errors
    async def refresh_mcp_server(self, info: Info, id: strawberry.ID) -> a.McpServerPayload:
        server = await ctx(info).services.assistants.refresh_mcp(parse_id(id), tenant_id=request_tenant(info))
        return a.McpServerPayload(mcp_server=a.McpServer.from_domain(server))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    @typed_errors
    async def delete_mcp_server(self, info: Info, id: strawberry.ID) -> a.AssistantOkPayload:
        await ctx(info).services.assistants.delete_mcp(parse_id(id), tenant_id=request_tenant(info))
        return a.AssistantOkPayload(ok=True)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="The only hosts the tenant's tools may call (host names or *.domain; empty: "
                                     "any public host). Private addresses stay closed unless the platform opens them "
                                     "(egress.allow.networks).")
    @typed_errors
    async def set_egress_hosts(self, info: Info, hosts: list[str]) -> a.EgressHostsPayload:
        saved = await ctx(info).services.assistants.set_egress_hosts(hosts, tenant_id=request_tenant(info))
        return a.EgressHostsPayload(hosts=saved)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    @typed_errors
    async def create_assistant(self, info: Info, input: a.AssistantInput) -> a.AssistantPayload:
        assistant = await ctx(info).services.assistants.create(_assistant_input(input), tenant_id=request_tenant(info),
                                                               operator=operator(info))
        return a.AssistantPayload(assistant=a.Assistant.from_domain(assistant))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Change the assistant (a published version is not changed: publish again).")
    @typed_errors
    async def update_assistant(self, info: Info, id: strawberry.ID, input: a.AssistantInput) -> a.AssistantPayload:
        assistant = await ctx(info).services.assistants.update(parse_id(id), _assistant_input(input),
                                                               tenant_id=request_tenant(info), operator=operator(info))
        return a.AssistantPayload(assistant=a.Assistant.from_domain(assistant))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Give the assistant more tools and MCP servers (the tenant's).")
    @typed_errors
    async def attach_assistant_tools(self, info: Info, id: strawberry.ID, tool_ids: list[strawberry.ID] | None = None,
                                     mcp_server_ids: list[strawberry.ID] | None = None) -> a.AssistantPayload:
        return await _attach(info, id, tool_ids, mcp_server_ids, detach=False)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Take tools and MCP servers away from the assistant.")
    @typed_errors
    async def detach_assistant_tools(self, info: Info, id: strawberry.ID, tool_ids: list[strawberry.ID] | None = None,
                                     mcp_server_ids: list[strawberry.ID] | None = None) -> a.AssistantPayload:
        return await _attach(info, id, tool_ids, mcp_server_ids, detach=True)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    @typed_errors
    async def delete_assistant(self, info: Info, id: strawberry.ID) -> a.AssistantOkPayload:
        await ctx(info).services.assistants.delete(parse_id(id), tenant_id=request_tenant(info))
        return a.AssistantOkPayload(ok=True)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Freeze the assistant as it is into a new version, served as model "
                                     "assistant::<name> on /v1 and as a tool on /mcp.")
    @typed_errors
    async def publish_assistant(self, info: Info, id: strawberry.ID) -> a.AssistantPayload:
        assistant = await ctx(info).services.assistants.publish(parse_id(id), tenant_id=request_tenant(info),
                                                                operator=operator(info))
        return a.AssistantPayload(assistant=a.Assistant.from_domain(assistant))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER, description="Stop serving the assistant.")
    @typed_errors
    async def unpublish_assistant(self, info: Info, id: strawberry.ID) -> a.AssistantPayload:
        assistant = await ctx(info).services.assistants.unpublish(parse_id(id), tenant_id=request_tenant(info),
                                                                  operator=operator(info))
        return a.AssistantPayload(assistant=a.Assistant.from_domain(assistant))


@strawberry.type
class AssistantSubscriptions:
    @strawberry.subscription(permission_classes=perm.TENANT_MAINTAINER,
                             description="Run the assistant as it is now (the playground), each step as it happens; "
                                         "the run is stored in its thread. Model calls are charged to the channel.")
    async def assistant_run(self, info: Info, input: a.AssistantRunInput) -> AsyncGenerator[a.AssistantRunEvent, None]:
        c = ctx(info)
        tenant = request_tenant(info)
        thread_id = (input.thread_id or "").strip()
        try:
            channel_id = parse_id(input.channel_id, "channelId")
            config, messages = await c.services.assistants.playground(
                parse_id(input.assistant_id, "assistantId"),
                [{"role": m.role, "content": m.content} for m in input.messages], tenant_id=tenant, thread_id=thread_id)
        except DomainError as e:
            yield a.AssistantRunEvent(run_id=None, thread_id=input.thread_id or "", kind="error", content=e.message,
                                      error_code=str(e.code))
            return
        req = RunRequest(config=config, messages=messages, tenant_id=tenant, channel_id=channel_id,
                         thread_id=thread_id, operator=operator(info), temperature=input.temperature)
        events = c.services.assistant_runner.run(req)
        started = False
        async with aclosing(events):  # an unsubscribe stops the run (stored as stopped, cancelled)
            async for run, event in events:
                if not started:
                    started = True
                    yield a.AssistantRunEvent(run_id=strawberry.ID(str(run.id)), thread_id=run.thread_id,
                                              kind="started")
                yield a.AssistantRunEvent.from_step(run, event)
