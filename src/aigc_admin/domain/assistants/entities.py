"""Assistants and their tools: what they are, the error codes, and the ports the service and the agent use.

A tool is what a model may call: an HTTP function tool (written by hand or imported from an OpenAPI
document, one per operation) or a tool of a registered MCP server (named ``<server>__<tool>``). Every call
a tool makes goes through the egress guard (``domain/egress.py``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI's function calling accepts
MCP_SEPARATOR = "__"  # an MCP tool's name in an assistant: <server>__<tool>
ASSISTANT_MODEL_PREFIX = "assistant::"  # a published assistant is the model assistant::<name>


class AssistantErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"
    DUPLICATE = "DUPLICATE"
    UNSUPPORTED_TOOL_TYPE = "UNSUPPORTED_TOOL_TYPE"  # code_interpreter, retrieval
    INVALID_SCHEMA = "INVALID_SCHEMA"  # parameters that are not a JSON Schema object
    INVALID_OPENAPI = "INVALID_OPENAPI"  # a document that does not parse or is not OpenAPI 3
    MCP_UNAVAILABLE = "MCP_UNAVAILABLE"  # the MCP server is down, slow or refused by egress
    MODEL_NOT_ALLOWED = "MODEL_NOT_ALLOWED"  # the assistant's model is not one the tenant may call
    NOT_PUBLISHED = "NOT_PUBLISHED"


class ToolType(StrEnum):
    """The original's tool types; only ``function`` is served (the others are refused with a clear error)."""

    FUNCTION = "function"
    CODE_INTERPRETER = "code_interpreter"
    RETRIEVAL = "retrieval"


class AgentMode(StrEnum):
    AUTO = "auto"  # native function calling for external models, ReAct for local (FastChat) ones
    NATIVE = "native"  # the model gets ``tools`` and answers with ``tool_calls``
    REACT = "react"  # the original's ReAct prompt: Thought / Action / Action Input / Observation


@dataclass(frozen=True)
class HttpSpec:
    """An HTTP function tool. ``url`` may hold ``{name}`` placeholders (filled percent-encoded from the
    arguments); ``body`` is a JSON template whose ``"{{name}}"`` strings become the argument's JSON value (and
    ``{{name}}`` inside a longer string its text). Without a body template, the arguments the URL does not use
    go in the query (GET, DELETE, HEAD) or as a JSON object body (other methods). ``query_params`` and
    ``header_params`` (set by the OpenAPI import) name arguments sent in the query or as headers."""

    url: str
    method: str = "GET"
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    headers: dict[str, str] = field(default_factory=dict)  # sent as they are (not secret)
    secret_headers: dict[str, str] = field(default_factory=dict)  # stored encrypted, never returned or logged
    body: str = ""
    query_params: tuple[str, ...] = ()
    header_params: tuple[str, ...] = ()
    timeout_seconds: float = 10.0
    max_response_bytes: int = 65_536
    extract: str = ""  # a JSON pointer (RFC 6901, "/data/0/name") into a JSON response: what the model sees
    user_agent: str = ""


@dataclass
class Tool:
    id: int
    uuid: str
    tenant_id: int
    name: str
    description: str
    tool_type: ToolType
    spec: HttpSpec
    enabled: bool = True
    source: str = ""  # "" (written by hand) or "openapi:<operationId>" (imported)
    remark: str = ""
    operator: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class McpToolInfo:
    """A tool an MCP server listed (its own name; an assistant sees ``<server>__<name>``)."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass
class McpServer:
    id: int
    tenant_id: int
    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)  # secret: decrypted only to call the server
    enabled: bool = True
    timeout_seconds: float = 30.0
    tools: list[McpToolInfo] = field(default_factory=list)
    refreshed_at: datetime | None = None
    last_error: str = ""
    operator: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True)
class Limits:
    max_steps: int = 5  # model calls in one run (a tool round is one step)
    max_tokens: int = 4096  # completion tokens over the whole run
    timeout_seconds: float = 120.0


@dataclass
class Assistant:
    id: int
    uuid: str
    tenant_id: int
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
    tool_ids: list[int] = field(default_factory=list)
    mcp_server_ids: list[int] = field(default_factory=list)
    channel_ids: list[int] = field(default_factory=list)  # may call the published assistant (besides the channels
    # that may call its model)
    published_version: int = 0  # 0: not published
    operator: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ToolDef:
    """A tool as the model sees it (and how to call it)."""

    name: str
    description: str
    parameters: dict[str, Any]
    http: HttpSpec | None = None  # an HTTP function tool (its secret headers are in ``sealed_headers``)
    sealed_headers: str = field(default="", repr=False)  # encrypted: opened only to make the call
    mcp_server_id: int | None = None  # a tool of an MCP server: ``mcp_tool`` is its own name there
    mcp_tool: str = ""

    def openai(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


@dataclass(frozen=True)
class AgentConfig:
    """Everything one run needs (a published version is one of these, frozen)."""

    assistant_id: int
    name: str
    model_name: str
    instructions: str
    tools: tuple[ToolDef, ...]
    limits: Limits
    mode: AgentMode
    version: int = 0  # 0: the assistant as it is now (the playground)


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool call gave: its text for the model, or why it failed (``error_code``: an egress refusal code,
    INVALID_ARGUMENTS, TIMEOUT, HTTP_<status>, TOO_LARGE, UNAVAILABLE, ...)."""

    ok: bool
    content: str
    error_code: str = ""
    duration_ms: float = 0.0


@dataclass
class Run:
    """One run of an assistant (a row of the original's ``assistant_messages``): the request, the answer, and
    every step (``steps``: model text, tool calls and results, as the playground streamed them)."""

    id: int
    assistant_id: int
    tenant_id: int
    thread_id: str
    request: str
    response: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running"  # running | completed | stopped | failed
    stop_reason: str = ""  # max_steps | max_tokens | timeout | model_error | ...
    prompt_tokens: int = 0
    completion_tokens: int = 0
    version: int = 0
    channel_id: int | None = None
    operator: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


class SecretBox(Protocol):
    def encrypt(self, plain: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


class ToolTransport(Protocol):
    """Carries a tool call out through the egress guard of the tenant."""

    async def call_http(self, spec: HttpSpec, arguments: dict[str, Any], *, tenant_id: int) -> ToolOutcome: ...

    async def list_mcp_tools(self, server: McpServer) -> list[McpToolInfo]:
        """Raises ``DomainError`` (MCP_UNAVAILABLE) when the server cannot be reached or answers wrongly."""
        ...

    async def call_mcp(self, server: McpServer, tool: str, arguments: dict[str, Any]) -> ToolOutcome: ...

    def forget_tenant(self, tenant_id: int) -> None:
        """The tenant's egress allow-list changed (a transport may cache it briefly)."""
        ...
