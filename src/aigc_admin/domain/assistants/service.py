"""Assistants, tools, MCP servers and the tenant's egress allow-list: the use cases (all tenant-scoped)."""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from aigc_admin.domain.assistants import http_tool
from aigc_admin.domain.assistants.entities import (
    ASSISTANT_MODEL_PREFIX,
    MCP_SEPARATOR,
    TOOL_NAME,
    AgentConfig,
    AgentMode,
    Assistant,
    AssistantErrorCode,
    HttpSpec,
    Limits,
    McpServer,
    McpToolInfo,
    Run,
    SecretBox,
    Tool,
    ToolDef,
    ToolTransport,
    ToolType,
)
from aigc_admin.domain.assistants.openapi import import_openapi
from aigc_admin.domain.egress import check_host_pattern
from aigc_admin.domain.errors import DomainError, Invalid

MAX_STEPS, MAX_TOKENS, MAX_TIMEOUT = 20, 32_768, 600.0
MAX_THREAD_RUNS = 20  # earlier runs of a thread replayed into a new one
MCP_NAME_CHARS = TOOL_NAME


def _not_found(what: str, ident: object, field: str = "id") -> DomainError:
    return DomainError(AssistantErrorCode.NOT_FOUND, f"{what} {ident} not found", field)


def _duplicate(field: str, message: str) -> DomainError:
    return DomainError(AssistantErrorCode.DUPLICATE, message, field)


@dataclass(frozen=True)
class ToolInput:
    name: str
    description: str = ""
    tool_type: str = ToolType.FUNCTION
    spec: HttpSpec | None = None
    enabled: bool = True
    remark: str = ""


@dataclass(frozen=True)
class AssistantInput:
    name: str
    model_name: str
    instructions: str = ""
    description: str = ""
    avatar: str = ""
    remark: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    mode: AgentMode = AgentMode.AUTO
    enabled: bool = True
    tool_ids: tuple[int, ...] = ()
    mcp_server_ids: tuple[int, ...] = ()
    channel_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class ImportResult:
    created: list[Tool]
    updated: list[Tool]


class AssistantRepository(Protocol):
    # tools
    async def get_tool(self, tool_id: int, tenant_id: int) -> Tool | None: ...
    async def tools_by_ids(self, ids: Sequence[int], tenant_id: int) -> builtins.list[Tool]: ...
    async def tool_named(self, name: str, tenant_id: int) -> Tool | None: ...
    async def tools_by_source(self, tenant_id: int, sources: Sequence[str]) -> dict[str, Tool]: ...
    async def save_tool(self, tool: Tool, secret_cipher: str | None) -> Tool: ...
    async def delete_tool(self, tool_id: int) -> None: ...
    async def list_tools(self, tenant_id: int, *, search: str | None, offset: int,
                         limit: int) -> tuple[builtins.list[Tool], int]: ...
    async def tool_secrets(self, tool_ids: Sequence[int]) -> dict[int, str]: ...

    # MCP servers
    async def get_mcp(self, server_id: int, tenant_id: int) -> McpServer | None: ...
    async def mcp_by_ids(self, ids: Sequence[int], tenant_id: int) -> builtins.list[McpServer]: ...
    async def mcp_named(self, name: str, tenant_id: int) -> McpServer | None: ...
    async def save_mcp(self, server: McpServer, headers_cipher: str | None) -> McpServer: ...
    async def delete_mcp(self, server_id: int) -> None: ...
    async def list_mcp(self, tenant_id: int, *, offset: int, limit: int) -> tuple[builtins.list[McpServer], int]: ...
    async def mcp_headers(self, server_id: int) -> str: ...

    # assistants
    async def get(self, assistant_id: int, tenant_id: int) -> Assistant | None: ...
    async def named(self, name: str, tenant_id: int) -> Assistant | None: ...
    async def save(self, assistant: Assistant) -> Assistant: ...
    async def delete(self, assistant_id: int) -> None: ...
    async def list(self, tenant_id: int, *, search: str | None, offset: int,
                   limit: int) -> tuple[builtins.list[Assistant], int]: ...
    async def add_version(self, assistant_id: int, version: int, config: dict[str, Any], operator: str) -> None: ...
    async def version(self, assistant_id: int, version: int) -> dict[str, Any] | None: ...
    async def published(self, tenant_id: int) -> builtins.list[Assistant]: ...

    # runs
    async def start_run(self, run: Run) -> Run: ...
    async def finish_run(self, run: Run) -> None: ...
    async def runs(self, assistant_id: int, *, tenant_id: int, thread_id: str | None, offset: int,
                   limit: int) -> tuple[builtins.list[Run], int]: ...
    async def thread(self, thread_id: str, tenant_id: int) -> builtins.list[Run]: ...

    # egress and lookups
    async def egress_hosts(self, tenant_id: int) -> builtins.list[str]: ...
    async def set_egress_hosts(self, tenant_id: int, hosts: Sequence[str]) -> None: ...
    async def model_is_local(self, name: str, tenant_id: int) -> bool | None:
        """None: the tenant has no model of that name."""
        ...

    async def channels_exist(self, ids: Sequence[int], tenant_id: int) -> set[int]: ...


class AssistantService:
    def __init__(self, *, repo: AssistantRepository, secrets: SecretBox, transport: ToolTransport) -> None:
        self.repo = repo
        self.secrets = secrets
        self.transport = transport

    # --- tools ---------------------------------------------------------------------------------------------
    async def get_tool(self, tool_id: int, *, tenant_id: int) -> Tool:
        tool = await self.repo.get_tool(tool_id, tenant_id)
        if tool is None:
            raise _not_found("tool", tool_id)
        return tool

    async def list_tools(self, *, tenant_id: int, search: str | None = None, offset: int = 0,
                         limit: int = 20) -> tuple[builtins.list[Tool], int]:
        return await self.repo.list_tools(tenant_id, search=search, offset=offset, limit=limit)

    def _checked_tool(self, data: ToolInput) -> HttpSpec:
        if data.tool_type != ToolType.FUNCTION:
            if data.tool_type in (ToolType.CODE_INTERPRETER, ToolType.RETRIEVAL):
                raise DomainError(AssistantErrorCode.UNSUPPORTED_TOOL_TYPE,
                                  f"{data.tool_type} tools are not supported yet: use a function (HTTP) tool",
                                  "toolType")
            raise Invalid("toolType", "toolType must be function, code_interpreter or retrieval")
        if not TOOL_NAME.fullmatch(data.name) or MCP_SEPARATOR in data.name:
            raise Invalid("name", "a tool's name is 1 to 64 letters, digits, '_' or '-' (and no '__')")
        if data.spec is None:
            raise Invalid("http", "a function tool needs its HTTP definition")
        return http_tool.check_spec(data.spec)

    async def create_tool(self, data: ToolInput, *, tenant_id: int, operator: str, source: str = "") -> Tool:
        spec = self._checked_tool(data)
        if await self.repo.tool_named(data.name, tenant_id) is not None:
            raise _duplicate("name", f"a tool named {data.name!r} exists")
        tool = Tool(id=0, uuid=uuid.uuid4().hex, tenant_id=tenant_id, name=data.name, description=data.description,
                    tool_type=ToolType.FUNCTION, spec=spec, enabled=data.enabled, source=source, remark=data.remark,
                    operator=operator)
        return await self.repo.save_tool(tool, self._seal(spec.secret_headers))

    async def update_tool(self, tool_id: int, data: ToolInput, *, tenant_id: int, operator: str,
                          keep_secrets: bool) -> Tool:
        """``keep_secrets``: the input's ``spec.secret_headers`` is empty because it was not sent (a client never
        sees the stored values): keep the stored ones."""
        tool = await self.get_tool(tool_id, tenant_id=tenant_id)
        spec = self._checked_tool(data)
        other = await self.repo.tool_named(data.name, tenant_id)
        if other is not None and other.id != tool.id:
            raise _duplicate("name", f"a tool named {data.name!r} exists")
        updated = replace(tool, name=data.name, description=data.description, spec=spec, enabled=data.enabled,
                          remark=data.remark, operator=operator)
        return await self.repo.save_tool(updated, None if keep_secrets else self._seal(spec.secret_headers))

    async def delete_tool(self, tool_id: int, *, tenant_id: int) -> None:
        await self.get_tool(tool_id, tenant_id=tenant_id)
        await self.repo.delete_tool(tool_id)

    async def import_openapi(self, document: str, *, tenant_id: int, operator: str, server_url: str = "",
                             secret_headers: dict[str, str] | None = None,
                             timeout_seconds: float | None = None) -> ImportResult:
        """One tool per operation; a tool imported before from the same operation is updated (its secret headers
        kept unless new ones are given)."""
        imported = import_openapi(document, server_url=server_url)
        existing = await self.repo.tools_by_source(tenant_id, [t.operation for t in imported])
        created: list[Tool] = []
        updated: list[Tool] = []
        for item in imported:
            spec = item.spec
            if secret_headers:
                spec = replace(spec, secret_headers=dict(secret_headers))
            if timeout_seconds is not None:
                spec = replace(spec, timeout_seconds=timeout_seconds)
            data = ToolInput(name=item.name, description=item.description, spec=spec)
            old = existing.get(item.operation)
            if old is not None:
                data = replace(data, name=old.name, enabled=old.enabled, remark=old.remark)
                updated.append(await self.update_tool(old.id, data, tenant_id=tenant_id, operator=operator,
                                                      keep_secrets=not secret_headers))
                continue
            name = item.name
            for n in range(2, 1000):
                if await self.repo.tool_named(name, tenant_id) is None:
                    break
                name = f"{item.name[:60]}_{n}"
            created.append(await self.create_tool(replace(data, name=name), tenant_id=tenant_id, operator=operator,
                                                   source=item.operation))
        return ImportResult(created, updated)

    def _seal(self, secrets: dict[str, str]) -> str:
        return self.secrets.encrypt(json.dumps(secrets)) if secrets else ""

    def _unseal(self, cipher: str) -> dict[str, str]:
        if not cipher:
            return {}
        value = json.loads(self.secrets.decrypt(cipher))
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    # --- MCP servers ---------------------------------------------------------------------------------------
    async def get_mcp(self, server_id: int, *, tenant_id: int) -> McpServer:
        server = await self.repo.get_mcp(server_id, tenant_id)
        if server is None:
            raise _not_found("MCP server", server_id)
        return server

    async def list_mcp(self, *, tenant_id: int, offset: int = 0,
                       limit: int = 20) -> tuple[builtins.list[McpServer], int]:
        return await self.repo.list_mcp(tenant_id, offset=offset, limit=limit)

    def _check_mcp(self, name: str, url: str, timeout: float) -> None:
        if not TOOL_NAME.fullmatch(name) or len(name) > 32 or MCP_SEPARATOR in name:
            raise Invalid("name", "an MCP server's name is 1 to 32 letters, digits, '_' or '-' (and no '__')")
        if not url.startswith(("http://", "https://")):
            raise Invalid("url", "url must be an http or https URL (Streamable HTTP)")
        if not 0 < timeout <= MAX_TIMEOUT:
            raise Invalid("timeoutSeconds", f"timeoutSeconds must be between 0 and {MAX_TIMEOUT:g}")

    async def create_mcp(self, *, name: str, url: str, headers: dict[str, str], timeout_seconds: float,
                         tenant_id: int, operator: str) -> McpServer:
        """Registered only once its tools could be listed (a server that is down is not half-created)."""
        self._check_mcp(name, url, timeout_seconds)
        if await self.repo.mcp_named(name, tenant_id) is not None:
            raise _duplicate("name", f"an MCP server named {name!r} exists")
        server = McpServer(id=0, tenant_id=tenant_id, name=name, url=url, headers=dict(headers),
                           timeout_seconds=timeout_seconds, operator=operator)
        server.tools = await self._list_mcp_tools(server)
        server.refreshed_at = _now()
        return await self.repo.save_mcp(server, self._seal(headers))

    async def update_mcp(self, server_id: int, *, tenant_id: int, operator: str, url: str | None = None,
                         headers: dict[str, str] | None = None, timeout_seconds: float | None = None,
                         enabled: bool | None = None) -> McpServer:
        server = await self.get_mcp(server_id, tenant_id=tenant_id)
        server.url = url if url is not None else server.url
        server.timeout_seconds = timeout_seconds if timeout_seconds is not None else server.timeout_seconds
        server.enabled = enabled if enabled is not None else server.enabled
        server.operator = operator
        self._check_mcp(server.name, server.url, server.timeout_seconds)
        return await self.repo.save_mcp(server, self._seal(headers) if headers is not None else None)

    async def refresh_mcp(self, server_id: int, *, tenant_id: int) -> McpServer:
        """List the server's tools again; when it cannot be reached, the error is recorded and raised."""
        server = await self._with_headers(await self.get_mcp(server_id, tenant_id=tenant_id))
        try:
            server.tools = await self._list_mcp_tools(server)
            server.last_error = ""
            server.refreshed_at = _now()
        except DomainError as e:
            server.last_error = e.message
            await self.repo.save_mcp(server, None)
            raise
        return await self.repo.save_mcp(server, None)

    async def delete_mcp(self, server_id: int, *, tenant_id: int) -> None:
        await self.get_mcp(server_id, tenant_id=tenant_id)
        await self.repo.delete_mcp(server_id)

    async def _list_mcp_tools(self, server: McpServer) -> list[McpToolInfo]:
        tools = await self.transport.list_mcp_tools(server)
        return [t for t in tools if TOOL_NAME.fullmatch(f"{server.name}{MCP_SEPARATOR}{t.name}")]

    async def _with_headers(self, server: McpServer) -> McpServer:
        server.headers = self._unseal(await self.repo.mcp_headers(server.id))
        return server

    # --- egress --------------------------------------------------------------------------------------------
    async def egress_hosts(self, *, tenant_id: int) -> builtins.list[str]:
        return await self.repo.egress_hosts(tenant_id)

    async def set_egress_hosts(self, hosts: Sequence[str], *, tenant_id: int) -> builtins.list[str]:
        if len(hosts) > 200:
            raise Invalid("hosts", "at most 200 hosts")
        try:
            checked = sorted({check_host_pattern(h) for h in hosts})
        except ValueError as e:
            raise Invalid("hosts", str(e)) from None
        await self.repo.set_egress_hosts(tenant_id, checked)
        self.transport.forget_tenant(tenant_id)
        return checked

    # --- assistants ----------------------------------------------------------------------------------------
    async def get(self, assistant_id: int, *, tenant_id: int) -> Assistant:
        assistant = await self.repo.get(assistant_id, tenant_id)
        if assistant is None:
            raise _not_found("assistant", assistant_id)
        return assistant

    async def list(self, *, tenant_id: int, search: str | None = None, offset: int = 0,
                   limit: int = 20) -> tuple[builtins.list[Assistant], int]:
        return await self.repo.list(tenant_id, search=search, offset=offset, limit=limit)

    async def _check(self, data: AssistantInput, tenant_id: int) -> None:
        if not TOOL_NAME.fullmatch(data.name):
            raise Invalid("name", "an assistant's name is 1 to 64 letters, digits, '_' or '-' (it is also its model "
                                  f"name, {ASSISTANT_MODEL_PREFIX}<name>)")
        limits = data.limits
        if not 1 <= limits.max_steps <= MAX_STEPS:
            raise Invalid("maxSteps", f"maxSteps must be between 1 and {MAX_STEPS}")
        if not 1 <= limits.max_tokens <= MAX_TOKENS:
            raise Invalid("maxTokens", f"maxTokens must be between 1 and {MAX_TOKENS}")
        if not 0 < limits.timeout_seconds <= MAX_TIMEOUT:
            raise Invalid("timeoutSeconds", f"timeoutSeconds must be between 0 and {MAX_TIMEOUT:g}")
        if await self.repo.model_is_local(data.model_name, tenant_id) is None:
            raise DomainError(AssistantErrorCode.MODEL_NOT_ALLOWED,
                              f"the tenant has no model named {data.model_name!r}", "modelName")
        tools = await self.repo.tools_by_ids(data.tool_ids, tenant_id)
        missing = set(data.tool_ids) - {t.id for t in tools}
        if missing:
            raise _not_found("tool", min(missing), "toolIds")
        servers = await self.repo.mcp_by_ids(data.mcp_server_ids, tenant_id)
        missing = set(data.mcp_server_ids) - {s.id for s in servers}
        if missing:
            raise _not_found("MCP server", min(missing), "mcpServerIds")
        missing = set(data.channel_ids) - await self.repo.channels_exist(data.channel_ids, tenant_id)
        if missing:
            raise _not_found("channel", min(missing), "channelIds")

    async def create(self, data: AssistantInput, *, tenant_id: int, operator: str) -> Assistant:
        await self._check(data, tenant_id)
        if await self.repo.named(data.name, tenant_id) is not None:
            raise _duplicate("name", f"an assistant named {data.name!r} exists")
        assistant = Assistant(id=0, uuid=uuid.uuid4().hex, tenant_id=tenant_id, operator=operator,
                              **_fields(data))
        return await self.repo.save(assistant)

    async def update(self, assistant_id: int, data: AssistantInput, *, tenant_id: int, operator: str) -> Assistant:
        """The working copy changes; a published version does not (publish again to serve the change)."""
        assistant = await self.get(assistant_id, tenant_id=tenant_id)
        await self._check(data, tenant_id)
        other = await self.repo.named(data.name, tenant_id)
        if other is not None and other.id != assistant.id:
            raise _duplicate("name", f"an assistant named {data.name!r} exists")
        if assistant.published_version and data.name != assistant.name:
            raise Invalid("name", "a published assistant keeps its name (it is its model name); unpublish it first")
        return await self.repo.save(replace(assistant, operator=operator, **_fields(data)))

    async def delete(self, assistant_id: int, *, tenant_id: int) -> None:
        await self.get(assistant_id, tenant_id=tenant_id)
        await self.repo.delete(assistant_id)

    async def attach(self, assistant_id: int, *, tool_ids: Sequence[int], mcp_server_ids: Sequence[int],
                     tenant_id: int, operator: str, detach: bool = False) -> Assistant:
        """Add tools and MCP servers to the assistant (or, with ``detach``, take them away)."""
        a = await self.get(assistant_id, tenant_id=tenant_id)
        if detach:
            tools = tuple(t for t in a.tool_ids if t not in set(tool_ids))
            servers = tuple(s for s in a.mcp_server_ids if s not in set(mcp_server_ids))
        else:
            tools, servers = (*a.tool_ids, *tool_ids), (*a.mcp_server_ids, *mcp_server_ids)
        data = AssistantInput(name=a.name, model_name=a.model_name, instructions=a.instructions,
                              description=a.description, avatar=a.avatar, remark=a.remark, metadata=a.metadata,
                              limits=a.limits, mode=a.mode, enabled=a.enabled, tool_ids=tools,
                              mcp_server_ids=servers, channel_ids=tuple(a.channel_ids))
        return await self.update(assistant_id, data, tenant_id=tenant_id, operator=operator)

    async def config(self, assistant: Assistant) -> AgentConfig:
        """The assistant as it is now, with its enabled tools (MCP tools from each server's last listing)."""
        tools: list[ToolDef] = []
        owned = await self.repo.tools_by_ids(assistant.tool_ids, assistant.tenant_id)
        secrets = await self.repo.tool_secrets([t.id for t in owned])
        for t in owned:
            if t.enabled:
                tools.append(ToolDef(t.name, t.description, t.spec.parameters, http=replace(t.spec, secret_headers={}),
                                     sealed_headers=secrets.get(t.id, "")))
        for server in await self.repo.mcp_by_ids(assistant.mcp_server_ids, assistant.tenant_id):
            if server.enabled:
                tools += [ToolDef(f"{server.name}{MCP_SEPARATOR}{t.name}", t.description, t.input_schema,
                                  mcp_server_id=server.id, mcp_tool=t.name) for t in server.tools]
        return AgentConfig(assistant_id=assistant.id, name=assistant.name, model_name=assistant.model_name,
                           instructions=assistant.instructions, tools=tuple(tools), limits=assistant.limits,
                           mode=assistant.mode)

    async def publish(self, assistant_id: int, *, tenant_id: int, operator: str) -> Assistant:
        """Freeze the assistant as it is now into a new version, served as model ``assistant::<name>``."""
        assistant = await self.get(assistant_id, tenant_id=tenant_id)
        if not assistant.enabled:
            raise Invalid("id", "enable the assistant before publishing it")
        config = await self.config(assistant)
        version = assistant.published_version + 1
        while await self.repo.version(assistant.id, version) is not None:  # unpublished then published again
            version += 1
        await self.repo.add_version(assistant.id, version, config_to_json(replace(config, version=version)), operator)
        return await self.repo.save(replace(assistant, published_version=version, operator=operator))

    async def unpublish(self, assistant_id: int, *, tenant_id: int, operator: str) -> Assistant:
        assistant = await self.get(assistant_id, tenant_id=tenant_id)
        if not assistant.published_version:
            raise DomainError(AssistantErrorCode.NOT_PUBLISHED, f"assistant {assistant.name} is not published", "id")
        return await self.repo.save(replace(assistant, published_version=0, operator=operator))

    async def published_config(self, name: str, *, tenant_id: int) -> tuple[Assistant, AgentConfig]:
        assistant = await self.repo.named(name, tenant_id)
        if assistant is None or not assistant.published_version or not assistant.enabled:
            raise DomainError(AssistantErrorCode.NOT_PUBLISHED, f"no published assistant named {name!r}", "model")
        stored = await self.repo.version(assistant.id, assistant.published_version)
        if stored is None:
            raise DomainError(AssistantErrorCode.NOT_PUBLISHED, f"no published assistant named {name!r}", "model")
        return assistant, config_from_json(stored)

    # --- runs ----------------------------------------------------------------------------------------------
    async def playground(self, assistant_id: int, messages: builtins.list[dict[str, Any]], *, tenant_id: int,
                         thread_id: str = "") -> tuple[AgentConfig, builtins.list[dict[str, Any]]]:
        """A playground run's configuration (the assistant as it is now) and conversation: the thread's last
        ``MAX_THREAD_RUNS`` questions and answers, then ``messages``."""
        assistant = await self.get(assistant_id, tenant_id=tenant_id)
        if not messages or any(m.get("role") not in ("system", "user", "assistant") for m in messages):
            raise Invalid("messages", "messages must be a non-empty list of system, user or assistant messages")
        history: builtins.list[dict[str, Any]] = []
        if thread_id:
            earlier = [r for r in await self.repo.thread(thread_id, tenant_id) if r.assistant_id == assistant.id]
            for r in earlier[-MAX_THREAD_RUNS:]:
                history += [{"role": "user", "content": r.request}, {"role": "assistant", "content": r.response}]
        return await self.config(assistant), history + list(messages)

    async def runs(self, assistant_id: int, *, tenant_id: int, thread_id: str | None = None, offset: int = 0,
                   limit: int = 20) -> tuple[builtins.list[Run], int]:
        await self.get(assistant_id, tenant_id=tenant_id)
        return await self.repo.runs(assistant_id, tenant_id=tenant_id, thread_id=thread_id, offset=offset,
                                    limit=limit)

    def spec_for_call(self, tool: ToolDef) -> HttpSpec:
        """A tool's HTTP definition with its secret headers opened (only to make the call)."""
        assert tool.http is not None
        if not tool.sealed_headers:
            return tool.http
        return replace(tool.http, secret_headers=self._unseal(tool.sealed_headers))

    async def mcp_for_call(self, server_id: int, tenant_id: int) -> McpServer | None:
        server = await self.repo.get_mcp(server_id, tenant_id)
        if server is None or not server.enabled:
            return None
        return await self._with_headers(server)


def _fields(data: AssistantInput) -> dict[str, Any]:
    return {"name": data.name, "model_name": data.model_name, "instructions": data.instructions,
            "description": data.description, "avatar": data.avatar, "remark": data.remark,
            "metadata": dict(data.metadata), "limits": data.limits, "mode": data.mode, "enabled": data.enabled,
            "tool_ids": list(dict.fromkeys(data.tool_ids)), "mcp_server_ids": list(dict.fromkeys(data.mcp_server_ids)),
            "channel_ids": list(dict.fromkeys(data.channel_ids))}


def _now() -> datetime:
    return datetime.now(UTC)


# --- a frozen configuration as stored with a published version -------------------------------------------
def _spec_json(spec: HttpSpec) -> dict[str, Any]:
    return {"url": spec.url, "method": spec.method, "parameters": spec.parameters, "headers": spec.headers,
            "secret_headers": spec.secret_headers, "body": spec.body, "query_params": list(spec.query_params),
            "header_params": list(spec.header_params), "timeout_seconds": spec.timeout_seconds,
            "max_response_bytes": spec.max_response_bytes, "extract": spec.extract, "user_agent": spec.user_agent}


def spec_from_json(raw: dict[str, Any]) -> HttpSpec:
    return HttpSpec(url=raw["url"], method=raw.get("method", "GET"),
                    parameters=raw.get("parameters") or {"type": "object", "properties": {}},
                    headers=dict(raw.get("headers") or {}), secret_headers=dict(raw.get("secret_headers") or {}),
                    body=raw.get("body", ""), query_params=tuple(raw.get("query_params") or ()),
                    header_params=tuple(raw.get("header_params") or ()),
                    timeout_seconds=float(raw.get("timeout_seconds", 10)),
                    max_response_bytes=int(raw.get("max_response_bytes", 65_536)), extract=raw.get("extract", ""),
                    user_agent=raw.get("user_agent", ""))


def spec_to_json(spec: HttpSpec) -> dict[str, Any]:
    """A tool's definition as stored in the ``tools`` table (without the secret headers' values)."""
    out = _spec_json(spec)
    out["secret_headers"] = {}
    out["secret_header_names"] = sorted(spec.secret_headers)
    return out


def config_to_json(config: AgentConfig) -> dict[str, Any]:
    return {"assistant_id": config.assistant_id, "name": config.name, "model_name": config.model_name,
            "instructions": config.instructions, "mode": config.mode.value, "version": config.version,
            "limits": {"max_steps": config.limits.max_steps, "max_tokens": config.limits.max_tokens,
                       "timeout_seconds": config.limits.timeout_seconds},
            "tools": [{"name": t.name, "description": t.description, "parameters": t.parameters,
                       "http": _spec_json(t.http) if t.http else None, "sealed_headers": t.sealed_headers,
                       "mcp_server_id": t.mcp_server_id,
                       "mcp_tool": t.mcp_tool} for t in config.tools]}


def config_from_json(raw: dict[str, Any]) -> AgentConfig:
    limits = raw.get("limits") or {}
    return AgentConfig(
        assistant_id=int(raw["assistant_id"]), name=raw["name"], model_name=raw["model_name"],
        instructions=raw.get("instructions", ""), mode=AgentMode(raw.get("mode", "auto")),
        version=int(raw.get("version", 0)),
        limits=Limits(int(limits.get("max_steps", 5)), int(limits.get("max_tokens", 4096)),
                      float(limits.get("timeout_seconds", 120))),
        tools=tuple(ToolDef(t["name"], t.get("description", ""), t.get("parameters") or {},
                            http=spec_from_json(t["http"]) if t.get("http") else None,
                            sealed_headers=t.get("sealed_headers", ""),
                            mcp_server_id=t.get("mcp_server_id"), mcp_tool=t.get("mcp_tool", ""))
                    for t in raw.get("tools") or ()))
