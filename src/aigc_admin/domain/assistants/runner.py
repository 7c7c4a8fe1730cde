"""Running an assistant: the agent with the tenant's tools, each run stored as a row of the original's
``assistant_messages`` (request, answer, steps) in a thread, and every egress refusal written to the audit log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from aigc_admin.domain.assistants.agent import Agent, StepEvent, mode_for
from aigc_admin.domain.assistants.entities import AgentConfig, Run, ToolDef, ToolOutcome, ToolTransport
from aigc_admin.domain.assistants.service import AssistantService
from aigc_admin.domain.audit.service import AuditEntry, AuditService
from aigc_admin.domain.egress import EgressErrorCode
from aigc_admin.domain.model_calls import ModelCalls

EGRESS_CODES = {c.value for c in EgressErrorCode}


@dataclass(frozen=True)
class RunRequest:
    config: AgentConfig
    messages: list[dict[str, Any]]
    tenant_id: int
    channel_id: int
    thread_id: str = ""  # "" = a new thread
    operator: str = ""
    temperature: float | None = None
    also_allow: frozenset[str] = frozenset()


class AssistantRunner:
    def __init__(self, *, service: AssistantService, calls: ModelCalls, transport: ToolTransport,
                 audit: AuditService | None = None) -> None:
        self.service = service
        self.calls = calls
        self.transport = transport
        self.audit = audit

    async def run(self, req: RunRequest) -> AsyncGenerator[tuple[Run, StepEvent], None]:
        """The run's events as they happen, each with the run it belongs to (stored when it starts and when it
        ends; a run whose consumer went away is stored as stopped, ``cancelled``)."""
        config = req.config
        local = await self.service.repo.model_is_local(config.model_name, req.tenant_id)
        mode = mode_for(config, local_model=bool(local))
        last_user = next((m.get("content") for m in reversed(req.messages) if m.get("role") == "user"), "")
        run = await self.service.repo.start_run(Run(
            id=0, assistant_id=config.assistant_id, tenant_id=req.tenant_id,
            thread_id=req.thread_id or uuid.uuid4().hex,
            request=last_user if isinstance(last_user, str) else str(last_user), version=config.version,
            channel_id=req.channel_id, operator=req.operator))

        async def run_tool(tool: ToolDef, arguments: dict[str, Any]) -> ToolOutcome:
            outcome = await self._call_tool(tool, arguments, req.tenant_id)
            if outcome.error_code in EGRESS_CODES:
                await self._audit_refusal(req, tool, outcome)
            return outcome

        agent = Agent(calls=self.calls, run_tool=run_tool)
        events = agent.run(config, req.messages, tenant_id=req.tenant_id, channel_id=req.channel_id, mode=mode,
                           temperature=req.temperature, also_allow=req.also_allow)
        finished = False
        try:
            async with aclosing(events):
                async for event in events:
                    if event.kind not in ("text", "usage"):
                        run.steps.append(event.record())
                    if event.kind == "final":
                        run.response = event.content
                        run.stop_reason = event.stop_reason
                        run.status = {"completed": "completed", "model_error": "failed"}.get(event.stop_reason,
                                                                                              "stopped")
                        run.prompt_tokens, run.completion_tokens = event.prompt_tokens, event.completion_tokens
                        await self.service.repo.finish_run(run)
                        finished = True
                    yield run, event
        finally:
            if not finished:
                run.status, run.stop_reason = "stopped", "cancelled"
                await self.service.repo.finish_run(run)

    async def _call_tool(self, tool: ToolDef, arguments: dict[str, Any], tenant_id: int) -> ToolOutcome:
        if tool.http is not None:
            return await self.transport.call_http(self.service.spec_for_call(tool), arguments, tenant_id=tenant_id)
        if tool.mcp_server_id is not None:
            server = await self.service.mcp_for_call(tool.mcp_server_id, tenant_id)
            if server is None:
                return ToolOutcome(False, "the tool's MCP server was removed or disabled", "UNAVAILABLE")
            return await self.transport.call_mcp(server, tool.mcp_tool, arguments)
        return ToolOutcome(False, "the tool has no definition", "UNAVAILABLE")

    async def _audit_refusal(self, req: RunRequest, tool: ToolDef, outcome: ToolOutcome) -> None:
        if self.audit is None:
            return
        await self.audit.record(AuditEntry(
            trace_id=uuid.uuid4().hex, operator=req.operator, account_id=None, tenant_id=req.tenant_id,
            operation="egressRefused", variables={"assistant": req.config.name, "tool": tool.name,
                                                  "code": outcome.error_code},
            duration_ms=int(outcome.duration_ms), success=False, error=outcome.content))

