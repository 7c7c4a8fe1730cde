"""Assistants, their tools, MCP servers, published versions, runs and the tenants' egress allow-lists."""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from aigc_admin.adapters.db import models as m
from aigc_admin.adapters.db.paging import page
from aigc_admin.domain.assistants.entities import (
    AgentMode,
    Assistant,
    Limits,
    McpServer,
    McpToolInfo,
    Run,
    Tool,
    ToolType,
)
from aigc_admin.domain.assistants.service import spec_from_json, spec_to_json


def _tool(row: m.Tool) -> Tool:
    raw = json.loads(row.metadata or "{}")
    spec = spec_from_json({"url": "", **raw})
    # the secret headers' names only, never their values
    spec = replace(spec, secret_headers={n: "" for n in raw.get("secret_header_names") or []})
    return Tool(id=row.id, uuid=row.uuid, tenant_id=row.tenant_id, name=row.name, description=row.description,  # type: ignore[attr-defined]
                tool_type=ToolType(row.tool_type) if row.tool_type in ToolType._value2member_map_
                else ToolType.FUNCTION,
                spec=spec, enabled=row.enabled, source=row.source, remark=row.remark, operator=row.operator,
                created_at=row.created_at, updated_at=row.updated_at)


def _mcp(row: m.McpServer) -> McpServer:
    tools = [McpToolInfo(t["name"], t.get("description", ""), t.get("input_schema") or {})
             for t in json.loads(row.tools or "[]")]
    return McpServer(id=row.id, tenant_id=row.tenant_id, name=row.name, url=row.url, enabled=row.enabled,  # type: ignore[attr-defined]
                     timeout_seconds=row.timeout_seconds, tools=tools, refreshed_at=row.refreshed_at,
                     last_error=row.last_error, operator=row.operator, created_at=row.created_at)


def _assistant(row: m.Assistant, tool_ids: builtins.list[int]) -> Assistant:
    return Assistant(
        id=row.id, uuid=row.uuid, tenant_id=row.tenant_id, name=row.name, model_name=row.model_name,  # type: ignore[attr-defined]
        instructions=row.instructions, description=row.description, avatar=row.avatar, remark=row.remark,
        metadata=json.loads(row.metadata or "{}"),
        limits=Limits(row.max_steps, row.max_tokens, row.timeout_seconds),
        mode=AgentMode(row.agent_mode) if row.agent_mode in AgentMode._value2member_map_ else AgentMode.AUTO,
        enabled=row.enabled, tool_ids=sorted(tool_ids), mcp_server_ids=json.loads(row.mcp_server_ids or "[]"),
        channel_ids=json.loads(row.channel_ids or "[]"), published_version=row.published_version,
        operator=row.operator, created_at=row.created_at, updated_at=row.updated_at)


def _run(row: m.AssistantMessage, tenant_id: int) -> Run:
    return Run(id=row.id, assistant_id=row.assistant_id, tenant_id=tenant_id, thread_id=row.thread_id,  # type: ignore[attr-defined]
               request=row.request, response=row.response, steps=json.loads(row.messages or "[]"),
               status=row.status, stop_reason=row.stop_reason, prompt_tokens=row.prompt_tokens,
               completion_tokens=row.completion_tokens, version=row.version, channel_id=row.channel_id,
               operator=row.operator, created_at=row.created_at, updated_at=row.updated_at)


class AssistantRepo:
    # --- tools ---------------------------------------------------------------------------------------------
    async def get_tool(self, tool_id: int, tenant_id: int) -> Tool | None:
        row = await m.Tool.get_or_none(id=tool_id, tenant_id=tenant_id)
        return _tool(row) if row else None

    async def tools_by_ids(self, ids: Sequence[int], tenant_id: int) -> builtins.list[Tool]:
        if not ids:
            return []
        return [_tool(r) for r in await m.Tool.filter(id__in=list(ids), tenant_id=tenant_id).order_by("id")]

    async def tools_many(self, ids: Sequence[int]) -> dict[int, Tool]:
        """By id, whatever the tenant (the dataloader of an assistant's tools, which the tenant check found)."""
        return {r.id: _tool(r) for r in await m.Tool.filter(id__in=list(ids))} if ids else {}

    async def tool_named(self, name: str, tenant_id: int) -> Tool | None:
        row = await m.Tool.get_or_none(name=name, tenant_id=tenant_id)
        return _tool(row) if row else None

    async def tools_by_source(self, tenant_id: int, sources: Sequence[str]) -> dict[str, Tool]:
        if not sources:
            return {}
        rows = await m.Tool.filter(tenant_id=tenant_id, source__in=list(sources))
        return {r.source: _tool(r) for r in rows}

    async def save_tool(self, tool: Tool, secret_cipher: str | None) -> Tool:
        values: dict[str, Any] = {"name": tool.name, "description": tool.description, "tool_type": tool.tool_type.value,
                                  "metadata": json.dumps(spec_to_json(tool.spec)), "enabled": tool.enabled,
                                  "source": tool.source, "remark": tool.remark, "operator": tool.operator}
        if secret_cipher is not None:
            values["secret_headers"] = secret_cipher
        elif tool.id:  # the names of the kept secrets stay listed
            stored = json.loads((await m.Tool.get(id=tool.id)).metadata or "{}")
            spec = json.loads(values["metadata"])
            spec["secret_header_names"] = stored.get("secret_header_names") or []
            values["metadata"] = json.dumps(spec)
        if tool.id:
            await m.Tool.filter(id=tool.id).update(**values)
            row = await m.Tool.get(id=tool.id)
        else:
            row = await m.Tool.create(uuid=tool.uuid, tenant_id=tool.tenant_id, **values)
        return _tool(row)

    async def delete_tool(self, tool_id: int) -> None:
        await m.Tool.filter(id=tool_id).delete()

    async def list_tools(self, tenant_id: int, *, search: str | None, offset: int,
                         limit: int) -> tuple[builtins.list[Tool], int]:
        qs = m.Tool.filter(tenant_id=tenant_id)
        if search:
            qs = qs.filter(Q(name__icontains=search) | Q(description__icontains=search))
        rows, total = await page(qs, offset=offset, limit=limit)
        return [_tool(r) for r in rows], total

    async def tool_secrets(self, tool_ids: Sequence[int]) -> dict[int, str]:
        if not tool_ids:
            return {}
        pairs = await m.Tool.filter(id__in=list(tool_ids)).values_list("id", "secret_headers")
        return {int(i): str(s) for i, s in pairs if s}

    # --- MCP servers ---------------------------------------------------------------------------------------
    async def get_mcp(self, server_id: int, tenant_id: int) -> McpServer | None:
        row = await m.McpServer.get_or_none(id=server_id, tenant_id=tenant_id)
        return _mcp(row) if row else None

    async def mcp_by_ids(self, ids: Sequence[int], tenant_id: int) -> builtins.list[McpServer]:
        if not ids:
            return []
        return [_mcp(r) for r in await m.McpServer.filter(id__in=list(ids), tenant_id=tenant_id).order_by("id")]

    async def mcp_named(self, name: str, tenant_id: int) -> McpServer | None:
        row = await m.McpServer.get_or_none(name=name, tenant_id=tenant_id)
        return _mcp(row) if row else None

    async def save_mcp(self, server: McpServer, headers_cipher: str | None) -> McpServer:
        values: dict[str, Any] = {
            "name": server.name, "url": server.url, "enabled": server.enabled,
            "timeout_seconds": server.timeout_seconds, "refreshed_at": server.refreshed_at,
            "last_error": server.last_error[:2000], "operator": server.operator,
            "tools": json.dumps([{"name": t.name, "description": t.description, "input_schema": t.input_schema}
                                 for t in server.tools])}
        if headers_cipher is not None:
            values["headers"] = headers_cipher
        if server.id:
            await m.McpServer.filter(id=server.id).update(**values)
            row = await m.McpServer.get(id=server.id)
        else:
            row = await m.McpServer.create(tenant_id=server.tenant_id, **values)
        return _mcp(row)

    async def delete_mcp(self, server_id: int) -> None:
        await m.McpServer.filter(id=server_id).delete()

    async def list_mcp(self, tenant_id: int, *, offset: int, limit: int) -> tuple[builtins.list[McpServer], int]:
        rows, total = await page(m.McpServer.filter(tenant_id=tenant_id), offset=offset, limit=limit)
        return [_mcp(r) for r in rows], total

    async def mcp_headers(self, server_id: int) -> str:
        values = await m.McpServer.filter(id=server_id).values_list("headers", flat=True)
        return str(values[0]) if values else ""

    # --- assistants ----------------------------------------------------------------------------------------
    async def _tool_ids(self, assistant_ids: builtins.list[int]) -> dict[int, builtins.list[int]]:
        out: dict[int, builtins.list[int]] = {}
        if assistant_ids:
            pairs = await m.Tool.filter(assistants__id__in=assistant_ids).values_list("assistants__id", "id")
            for assistant_id, tool_id in pairs:
                out.setdefault(int(assistant_id), []).append(int(tool_id))
        return out

    async def _many(self, rows: builtins.list[m.Assistant]) -> builtins.list[Assistant]:
        ids = await self._tool_ids([r.id for r in rows])
        return [_assistant(r, ids.get(r.id, [])) for r in rows]

    async def get(self, assistant_id: int, tenant_id: int) -> Assistant | None:
        row = await m.Assistant.get_or_none(id=assistant_id, tenant_id=tenant_id)
        return (await self._many([row]))[0] if row else None

    async def named(self, name: str, tenant_id: int) -> Assistant | None:
        row = await m.Assistant.get_or_none(name=name, tenant_id=tenant_id)
        return (await self._many([row]))[0] if row else None

    async def save(self, assistant: Assistant) -> Assistant:
        values: dict[str, Any] = {
            "name": assistant.name, "model_name": assistant.model_name, "instructions": assistant.instructions,
            "description": assistant.description, "avatar": assistant.avatar, "remark": assistant.remark,
            "metadata": json.dumps(assistant.metadata), "max_steps": assistant.limits.max_steps,
            "max_tokens": assistant.limits.max_tokens, "timeout_seconds": assistant.limits.timeout_seconds,
            "agent_mode": assistant.mode.value, "enabled": assistant.enabled,
            "mcp_server_ids": json.dumps(assistant.mcp_server_ids), "channel_ids": json.dumps(assistant.channel_ids),
            "published_version": assistant.published_version, "operator": assistant.operator}
        async with in_transaction():
            if assistant.id:
                await m.Assistant.filter(id=assistant.id).update(**values)
                row = await m.Assistant.get(id=assistant.id)
            else:
                row = await m.Assistant.create(uuid=assistant.uuid, tenant_id=assistant.tenant_id, **values)
            await row.tools.clear()
            if assistant.tool_ids:
                await row.tools.add(*await m.Tool.filter(id__in=assistant.tool_ids, tenant_id=assistant.tenant_id))
        return (await self._many([row]))[0]

    async def delete(self, assistant_id: int) -> None:
        await m.Assistant.filter(id=assistant_id).delete()

    async def list(self, tenant_id: int, *, search: str | None, offset: int,
                   limit: int) -> tuple[builtins.list[Assistant], int]:
        qs = m.Assistant.filter(tenant_id=tenant_id)
        if search:
            qs = qs.filter(Q(name__icontains=search) | Q(description__icontains=search))
        rows, total = await page(qs, offset=offset, limit=limit)
        return await self._many(rows), total

    async def add_version(self, assistant_id: int, version: int, config: dict[str, Any], operator: str) -> None:
        await m.AssistantVersion.create(assistant_id=assistant_id, version=version, config=json.dumps(config),
                                        operator=operator)

    async def version(self, assistant_id: int, version: int) -> dict[str, Any] | None:
        row = await m.AssistantVersion.get_or_none(assistant_id=assistant_id, version=version)
        return json.loads(row.config) if row else None  # type: ignore[no-any-return]

    async def published(self, tenant_id: int) -> builtins.list[Assistant]:
        rows = await m.Assistant.filter(tenant_id=tenant_id, published_version__gt=0, enabled=True).order_by("name")
        return await self._many(list(rows))

    # --- runs ----------------------------------------------------------------------------------------------
    async def start_run(self, run: Run) -> Run:
        row = await m.AssistantMessage.create(
            assistant_id=run.assistant_id, request=run.request, response="", messages="[]", thread_id=run.thread_id,
            status=run.status, version=run.version, channel_id=run.channel_id, operator=run.operator)
        run.id, run.created_at = row.id, row.created_at
        return run

    async def finish_run(self, run: Run) -> None:
        await m.AssistantMessage.filter(id=run.id).update(
            response=run.response, messages=json.dumps(run.steps, ensure_ascii=False), status=run.status,
            stop_reason=run.stop_reason, prompt_tokens=run.prompt_tokens, completion_tokens=run.completion_tokens)

    async def runs(self, assistant_id: int, *, tenant_id: int, thread_id: str | None, offset: int,
                   limit: int) -> tuple[builtins.list[Run], int]:
        qs = m.AssistantMessage.filter(assistant_id=assistant_id, assistant__tenant_id=tenant_id)
        if thread_id:
            qs = qs.filter(thread_id=thread_id)
        rows, total = await page(qs, offset=offset, limit=limit, order=("-id",))
        return [_run(r, tenant_id) for r in rows], total

    async def thread(self, thread_id: str, tenant_id: int) -> builtins.list[Run]:
        rows = await m.AssistantMessage.filter(thread_id=thread_id, assistant__tenant_id=tenant_id).order_by("id")
        return [_run(r, tenant_id) for r in rows]

    # --- egress and lookups --------------------------------------------------------------------------------
    async def egress_hosts(self, tenant_id: int) -> builtins.list[str]:
        return [str(h) for h in await m.TenantEgressHost.filter(tenant_id=tenant_id).order_by("host")
                .values_list("host", flat=True)]

    async def set_egress_hosts(self, tenant_id: int, hosts: Sequence[str]) -> None:
        async with in_transaction():
            await m.TenantEgressHost.filter(tenant_id=tenant_id).delete()
            if hosts:
                await m.TenantEgressHost.bulk_create([m.TenantEgressHost(tenant_id=tenant_id, host=h) for h in hosts])

    async def model_is_local(self, name: str, tenant_id: int) -> bool | None:
        row = await m.LLMModel.filter(model_name=name, tenants__id=tenant_id).first()
        return None if row is None else row.provider_name == "local"

    async def channels_exist(self, ids: Sequence[int], tenant_id: int) -> set[int]:
        if not ids:
            return set()
        rows = await m.ChatChannel.filter(id__in=list(ids), tenant_id=tenant_id).only("id")
        return {r.id for r in rows}
