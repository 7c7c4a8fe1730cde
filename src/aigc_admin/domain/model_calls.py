"""The model-call port: "answer this chat request for tenant T through channel C".

Every area that talks to a model from inside the platform (the chat playground now; evaluation and
assistants next) uses this port, never the gateway's HTTP routes or its wire format. The gateway
implements it with the same routing, limits and usage accounting as ``/v1``: a call is charged to the
channel, refused when the channel may not use the model, and counted in the channel's usage.

The request is an OpenAI chat completion body (``model``, ``messages``, ``max_tokens``, ``temperature``,
...); the answer comes back as structured chunks, never as server-sent-event bytes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from aigc_admin.domain.errors import DomainError


class ModelCallErrorCode(StrEnum):
    INVALID = "INVALID"  # the request itself is wrong (the caller can fix it)
    NOT_FOUND = "NOT_FOUND"  # no such model, or not deployed; or no such channel in the tenant
    NOT_ALLOWED = "NOT_ALLOWED"  # the channel may not use the model, or is disabled or expired
    RATE_LIMITED = "RATE_LIMITED"  # the channel's RPM/TPM limits or its quota
    UNAVAILABLE = "UNAVAILABLE"  # no healthy worker, the upstream is unreachable: try again
    UPSTREAM_ERROR = "UPSTREAM_ERROR"  # the model's worker or upstream failed to answer


class ModelCallError(DomainError):
    """A refused or failed call. ``reason`` is the gateway's own error code (``model_not_allowed``, ...)."""

    def __init__(self, code: ModelCallErrorCode, message: str, *, reason: str = "",
                 retry_after: int | None = None) -> None:
        super().__init__(code, message, "model" if code in (ModelCallErrorCode.NOT_FOUND,
                                                             ModelCallErrorCode.NOT_ALLOWED) else None)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """A piece of a streamed answer: new text, and on the last piece the finish reason and the usage."""

    content: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: tuple[dict[str, Any], ...] = field(default=())  # OpenAI delta.tool_calls, as sent


@dataclass(frozen=True, slots=True)
class ChatReply:
    """A whole answer."""

    content: str
    finish_reason: str | None
    usage: Usage
    tool_calls: tuple[dict[str, Any], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the OpenAI-shaped response


class ModelCalls(Protocol):
    """``also_allow``: model names the call may use although the channel's allow-list lacks them (a fine-tuning
    gate evaluates a model of the tenant before it is granted to the channel); the caller has checked that they
    are the tenant's. Everything else (limits, quota, usage) is the channel's as usual."""

    async def stream_chat(self, body: dict[str, Any], *, tenant_id: int, channel_id: int,
                          also_allow: frozenset[str] = frozenset()) -> AsyncGenerator[ChatChunk, None]:
        """Admit the call (refusals raise ``ModelCallError`` here), then the answer as it is generated; a failure
        after the first chunk raises ``ModelCallError`` from the iteration. Close it (``aclosing``) when done
        early: that settles the call."""
        ...

    async def chat(self, body: dict[str, Any], *, tenant_id: int, channel_id: int,
                   also_allow: frozenset[str] = frozenset()) -> ChatReply:
        """The whole answer (``stream`` in ``body`` is ignored)."""
        ...
