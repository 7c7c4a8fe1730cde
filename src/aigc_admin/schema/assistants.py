"""Assistants with tools: HTTP function tools (by hand or from OpenAPI), MCP servers, the egress allow-list,
published versions, runs and the live playground."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from aigc_admin.domain.assistants import entities as ent
from aigc_admin.domain.assistants.agent import StepEvent

AssistantErrorCode = strawberry.enum(ent.AssistantErrorCode, description="Codes of assistant and tool failures.")
ToolType = strawberry.enum(ent.ToolType, description="The original's tool types: only FUNCTION (HTTP) is served.")
AgentMode = strawberry.enum(ent.AgentMode, description="How tools are offered to the model: AUTO (native function "
                                                       "calling for external models, ReAct for local ones), NATIVE, "
                                                       "REACT.")


@strawberry.type
class AssistantError:
    field: str | None
    code: AssistantErrorCode  # type: ignore[valid-type]
    message: str


@strawberry.type(description="How an HTTP function tool is called.")
class HttpTool:
    url: str = strawberry.field(description="May hold {argument} placeholders (filled percent-encoded).")
    method: str
    parameters: JSON = strawberry.field(description="The JSON Schema of the arguments (an object).")
    headers: JSON = strawberry.field(description="Headers sent as they are.")
    secret_header_names: list[str] = strawberry.field(description="Headers stored encrypted: only their names are "
                                                                  "ever shown.")
    body: str = strawberry.field(description='A JSON template: "{{name}}" becomes the argument\'s value.')
    query_params: list[str]
    header_params: list[str]
    timeout_seconds: float
    max_response_bytes: int
    extract: str = strawberry.field(description="A JSON pointer into the response: the part the model sees.")
    user_agent: str

    @classmethod
    def from_domain(cls, s: ent.HttpSpec) -> HttpTool:
        return cls(url=s.url, method=s.method, parameters=s.parameters, headers=s.headers,  # type: ignore[arg-type]
                   secret_header_names=sorted(s.secret_headers), body=s.body, query_params=list(s.query_params),
                   header_params=list(s.header_params), timeout_seconds=s.timeout_seconds,
                   max_response_bytes=s.max_response_bytes, extract=s.extract, user_agent=s.user_agent)


@strawberry.type(description="A tool assistants may call.")
class Tool:
    id: strawberry.ID
    uuid: str
    name: str
    description: str
    tool_type: ToolType  # type: ignore[valid-type]
    enabled: bool
    source: str = strawberry.field(description='"" (written by hand) or openapi:<operation> (imported).')
    remark: str
    operator: str
    http: HttpTool
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_domain(cls, t: ent.Tool) -> Tool:
        return cls(id=strawberry.ID(str(t.id)), uuid=t.uuid, name=t.name, description=t.description,
                   tool_type=t.tool_type, enabled=t.enabled, source=t.source, remark=t.remark, operator=t.operator,
                   http=HttpTool.from_domain(t.spec), created_at=t.created_at, updated_at=t.updated_at)


@strawberry.input(description="An HTTP function tool's definition.")
class HttpToolInput:
    url: str
    method: str = "GET"
    parameters: JSON | None = strawberry.field(default=None, description="JSON Schema of the arguments (an object); "
                                                                         "none: no arguments.")
    headers: JSON | None = None
    secret_headers: JSON | None = strawberry.field(
        default=None, description="Headers stored encrypted (tokens, API keys); on update, omit to keep the stored "
                                  "ones, {} to remove them.")
    body: str = ""
    timeout_seconds: float = 10.0
    max_response_bytes: int = 65_536
    extract: str = ""
    user_agent: str = ""


@strawberry.input
class ToolInput:
    name: str
    http: HttpToolInput | None = None
    description: str = ""
    tool_type: ToolType = ent.ToolType.FUNCTION  # type: ignore[valid-type]
    enabled: bool = True
    remark: str = ""


@strawberry.type
class ToolPayload:
    tool: Tool | None = None
    errors: list[AssistantError] = strawberry.field(default_factory=list)


@strawberry.input(description="An OpenAPI 3 document (JSON or YAML text): one tool per operation.")
class ImportOpenApiInput:
    document: str
    server_url: str = strawberry.field(default="", description="Overrides the document's servers (needed when they "
                                                               "are relative).")
    secret_headers: JSON | None = strawberry.field(default=None, description="Headers every imported tool sends, "
                                                                             "stored encrypted (e.g. Authorization).")
    timeout_seconds: float | None = None


@strawberry.type
class ImportToolsPayload:
    created: list[Tool] = strawberry.field(default_factory=list)
    updated: list[Tool] = strawberry.field(default_factory=list, description="Imported before from the same "
                                                                            "operation: updated in place.")
    errors: list[AssistantError] = strawberry.field(default_factory=list)


@strawberry.type(description="A tool an MCP server lists.")
class McpTool:
    name: str
    qualified_name: str = strawberry.field(description="What assistants call it: <server>__<tool>.")
    description: str
    input_schema: JSON


@strawberry.type(description="An MCP server (Streamable HTTP) whose tools the tenant's assistants may use.")
class McpServer:
    id: strawberry.ID
    name: str
    url: str
    enabled: bool
    timeout_seconds: float
    tools: list[McpTool]
    refreshed_at: datetime | None
    last_error: str
    operator: str
    created_at: datetime | None

    @classmethod
    def from_domain(cls, s: ent.McpServer) -> McpServer:
        return cls(id=strawberry.ID(str(s.id)), name=s.name, url=s.url, enabled=s.enabled,
                   timeout_seconds=s.timeout_seconds, refreshed_at=s.refreshed_at, last_error=s.last_error,
                   operator=s.operator, created_at=s.created_at,
                   tools=[McpTool(name=t.name, qualified_name=f"{s.name}{ent.MCP_SEPARATOR}{t.name}",
                                  description=t.description, input_schema=t.input_schema)  # type: ignore[arg-type]
                          for t in s.tools])


@strawberry.input
class McpServerInput:
    name: str
    url: str
    headers: JSON | None = strawberry.field(default=None, description="Sent with every request, stored encrypted "
                                                                      "(e.g. Authorization).")
    timeout_seconds: float = 30.0


@strawberry.input
class McpServerUpdateInput:
    url: str | None = None
    headers: JSON | None = strawberry.field(default=None, description="Omit to keep the stored ones.")
    timeout_seconds: float | None = None
    enabled: bool | None = None


@strawberry.type
class McpServerPayload:
    mcp_server: McpServer | None = None
    errors: list[AssistantError] = strawberry.field(default_factory=list)


@strawberry.type(description="An assistant: a model, its instructions, its tools and its bounds.")
class Assistant:
    id: strawberry.ID
    uuid: str
    name: str
    model_name: str
    instructions: str
    description: str
    avatar: str
    remark: str
    metadata: JSON
    max_steps: int
    max_tokens: int
    timeout_seconds: float
    mode: AgentMode  # type: ignore[valid-type]
    enabled: bool
    tool_ids: list[strawberry.ID]
    mcp_server_ids: list[strawberry.ID]
    channel_ids: list[strawberry.ID] = strawberry.field(description="Channels that may call the published assistant "
                                                                    "(channels that may call its model may too).")
    published_version: int = strawberry.field(description="0: not published.")
    operator: str
    created_at: datetime | None
    updated_at: datetime | None

    @strawberry.field(description="The model name a published assistant answers to on /v1 (null: not published).")
    def published_model(self) -> str | None:
        return f"{ent.ASSISTANT_MODEL_PREFIX}{self.name}" if self.published_version else None

    @strawberry.field
    async def tools(self, info: Info) -> list[Tool]:
        found = await info.context.loaders.tool.load_many([int(i) for i in self.tool_ids])
        return [Tool.from_domain(t) for t in found if t is not None]

    @classmethod
    def from_domain(cls, a: ent.Assistant) -> Assistant:
        def ids(values: list[int]) -> list[strawberry.ID]:
            return [strawberry.ID(str(v)) for v in values]

        return cls(id=strawberry.ID(str(a.id)), uuid=a.uuid, name=a.name, model_name=a.model_name,
                   instructions=a.instructions, description=a.description, avatar=a.avatar, remark=a.remark,
                   metadata=a.metadata,  # type: ignore[arg-type]
                   max_steps=a.limits.max_steps, max_tokens=a.limits.max_tokens,
                   timeout_seconds=a.limits.timeout_seconds, mode=a.mode, enabled=a.enabled,
                   tool_ids=ids(a.tool_ids), mcp_server_ids=ids(a.mcp_server_ids), channel_ids=ids(a.channel_ids),
                   published_version=a.published_version, operator=a.operator, created_at=a.created_at,
                   updated_at=a.updated_at)


@strawberry.input
class AssistantInput:
    name: str
    model_name: str
    instructions: str = ""
    description: str = ""
    avatar: str = ""
    remark: str = ""
    metadata: JSON | None = None
    max_steps: int = 5
    max_tokens: int = 4096
    timeout_seconds: float = 120.0
    mode: AgentMode = ent.AgentMode.AUTO  # type: ignore[valid-type]
    enabled: bool = True
    tool_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    mcp_server_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    channel_ids: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.type
class AssistantPayload:
    assistant: Assistant | None = None
    errors: list[AssistantError] = strawberry.field(default_factory=list)


@strawberry.type
class AssistantOkPayload:
    ok: bool = False
    errors: list[AssistantError] = strawberry.field(default_factory=list)


@strawberry.type
class EgressHostsPayload:
    hosts: list[str] = strawberry.field(default_factory=list)
    errors: list[AssistantError] = strawberry.field(default_factory=list)


@strawberry.type(description="One run of an assistant (a row of assistant_messages): the question, the answer and "
                             "every step.")
class AssistantRun:
    id: strawberry.ID
    assistant_id: strawberry.ID
    thread_id: str
    request: str
    response: str
    steps: JSON = strawberry.field(description="Tool calls, tool results and the final answer, in order.")
    status: str = strawberry.field(description="running, completed, stopped (a bound or the caller) or failed.")
    stop_reason: str
    prompt_tokens: int
    completion_tokens: int
    version: int = strawberry.field(description="The published version that ran (0: the playground).")
    channel_id: strawberry.ID | None
    operator: str
    created_at: datetime | None

    @classmethod
    def from_domain(cls, r: ent.Run) -> AssistantRun:
        return cls(id=strawberry.ID(str(r.id)), assistant_id=strawberry.ID(str(r.assistant_id)),
                   thread_id=r.thread_id,
                   request=r.request, response=r.response, steps=r.steps,  # type: ignore[arg-type]
                   status=r.status, stop_reason=r.stop_reason,
                   prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens, version=r.version,
                   channel_id=strawberry.ID(str(r.channel_id)) if r.channel_id is not None else None,
                   operator=r.operator, created_at=r.created_at)


@strawberry.input
class AssistantMessageInput:
    role: str
    content: str


@strawberry.input(description="A playground run: the assistant as it is now, charged to a channel of the tenant.")
class AssistantRunInput:
    assistant_id: strawberry.ID
    channel_id: strawberry.ID
    messages: list[AssistantMessageInput]
    thread_id: str | None = strawberry.field(default=None, description="Go on with a thread (its earlier questions "
                                                                       "and answers come first).")
    temperature: float | None = None


@strawberry.type(description="One step of a live run. kind: started, text, tool_call, tool_result, usage, final "
                             "(the last one; stopReason says why it ended), error.")
class AssistantRunEvent:
    run_id: strawberry.ID | None
    thread_id: str
    kind: str
    step: int = 0
    content: str = ""
    tool: str = ""
    arguments: str = ""
    call_id: str = ""
    ok: bool = True
    error_code: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    stop_reason: str = ""
    duration_ms: float = 0.0

    @classmethod
    def from_step(cls, run: ent.Run, e: StepEvent) -> AssistantRunEvent:
        fields: dict[str, Any] = {name: getattr(e, name) for name in (
            "kind", "step", "content", "tool", "arguments", "call_id", "ok", "error_code", "prompt_tokens",
            "completion_tokens", "stop_reason", "duration_ms")}
        return cls(run_id=strawberry.ID(str(run.id)), thread_id=run.thread_id, **fields)
