"""The agent: model → tools → model … → answer, within the assistant's bounds (steps, completion tokens, time).

Two ways to offer tools to a model:
- **native**: the request carries ``tools`` and the model answers with ``tool_calls`` (OpenAI function calling);
- **ReAct** (the original's way, for models without function calling, like the local FastChat ones): the tools
  are described in the system prompt, the model writes ``Action:`` / ``Action Input:`` and stops before
  ``Observation:``, which the agent writes back with the tool's result.

Every model call goes through the model-call port (routing, limits and usage on the caller's channel). A tool's
failure (bad arguments, egress refusal, timeout, HTTP error) goes back to the model as its result; it never ends
the run. The run ends with a final answer, or when a bound is reached, and says which (``stop_reason``)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from aigc_admin.domain.assistants.entities import AgentConfig, AgentMode, ToolDef, ToolOutcome
from aigc_admin.domain.assistants.http_tool import ArgumentsInvalid, check_arguments, truncate
from aigc_admin.domain.model_calls import ModelCallError, ModelCalls

EVENT_RESULT_BYTES = 2000  # a tool result as streamed to the playground (the model gets all of it)
ToolRunner = Callable[[ToolDef, dict[str, Any]], Awaitable[ToolOutcome]]

REACT_PROMPT = """{instructions}

Answer the question as best you can. You have access to the following tools:

{tools}

Use the following format:

Question: the input question you must answer
Thought: you should always think about what to do
Action: the action to take, one of [{names}]
Action Input: the input to the action, a JSON object
Observation: the result of the action
... (this Thought/Action/Action Input/Observation can repeat)
Thought: I now know the final answer
Final Answer: the final answer to the original input question"""
REACT_ACTION = re.compile(r"Action\s*:\s*(.+?)\s*\n+\s*Action\s*Input\s*:\s*(.*)", re.S)
REACT_FINAL = re.compile(r"Final\s*Answer\s*:\s*(.*)", re.S)


@dataclass(frozen=True)
class StepEvent:
    """One thing that happened in a run, in order. ``kind``: text (a piece of the model's text), tool_call,
    tool_result, final (the answer; also on a stop, with what there is), usage (the run's totals so far)."""

    kind: str
    step: int
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

    def record(self) -> dict[str, Any]:
        """The step as stored with the run (text pieces are not stored one by one: the final answer is)."""
        out: dict[str, Any] = {"kind": self.kind, "step": self.step}
        for name in ("content", "tool", "arguments", "call_id", "error_code", "stop_reason"):
            if value := getattr(self, name):
                out[name] = value
        if self.kind == "tool_result":
            out["ok"] = self.ok
            out["duration_ms"] = round(self.duration_ms, 1)
        if self.kind in ("usage", "final"):
            out["prompt_tokens"], out["completion_tokens"] = self.prompt_tokens, self.completion_tokens
        return out


@dataclass
class _Totals:
    prompt: int = 0
    completion: int = 0
    text: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Where:
    """Whose call it is and until when."""

    tenant_id: int
    channel_id: int
    also_allow: frozenset[str]
    deadline: float


class _Stop(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def mode_for(config: AgentConfig, *, local_model: bool) -> AgentMode:
    if config.mode is not AgentMode.AUTO:
        return config.mode
    return AgentMode.REACT if local_model else AgentMode.NATIVE


class Agent:
    def __init__(self, *, calls: ModelCalls, run_tool: ToolRunner) -> None:
        self.calls = calls
        self.run_tool = run_tool

    async def run(self, config: AgentConfig, messages: list[dict[str, Any]], *, tenant_id: int, channel_id: int,
                  mode: AgentMode, temperature: float | None = None,
                  also_allow: frozenset[str] = frozenset()) -> AsyncGenerator[StepEvent, None]:
        """The run's events; the last one is ``final`` (with ``stop_reason``: completed, max_steps, max_tokens,
        timeout, model_error). ``also_allow``: the assistant's model when the channel may call the published
        assistant but not the model itself (see ``ModelCalls``)."""
        totals = _Totals()
        deadline = time.monotonic() + config.limits.timeout_seconds
        loop = self._native if mode is AgentMode.NATIVE else self._react
        reason, detail, step = "completed", "", 0
        where = _Where(tenant_id, channel_id, also_allow, deadline)
        steps = loop(config, messages, totals, where, temperature)
        async with aclosing(steps):
            try:
                async for event in steps:
                    step = event.step
                    yield event
            except _Stop as stop:
                reason, detail = stop.reason, stop.detail
        answer = "".join(totals.text).strip() if reason == "completed" else detail
        yield StepEvent("final", step, content=answer, stop_reason=reason, prompt_tokens=totals.prompt,
                        completion_tokens=totals.completion)

    # --- one model call ------------------------------------------------------------------------------------
    async def _call(self, body: dict[str, Any], totals: _Totals, step: int, where: _Where,
                    calls: dict[int, dict[str, Any]] | None) -> AsyncGenerator[StepEvent, None]:
        """Stream one model call: its text as events; its tool calls (native) gathered into ``calls``."""
        left = where.deadline - time.monotonic()
        if left <= 0:
            raise _Stop("timeout", "the run took longer than its time limit")
        totals.text.clear()
        try:
            async with asyncio.timeout(left):
                chunks = await self.calls.stream_chat(body, tenant_id=where.tenant_id, channel_id=where.channel_id,
                                                      also_allow=where.also_allow)
                async with aclosing(chunks):
                    async for chunk in chunks:
                        if chunk.content:
                            totals.text.append(chunk.content)
                            yield StepEvent("text", step, content=chunk.content)
                        if chunk.tool_calls and calls is not None:
                            _gather(calls, chunk.tool_calls)
                        if chunk.usage is not None:
                            totals.prompt += chunk.usage.prompt_tokens
                            totals.completion += chunk.usage.completion_tokens
        except TimeoutError:
            raise _Stop("timeout", "the run took longer than its time limit") from None
        except ModelCallError as e:
            raise _Stop("model_error", f"the model call failed: {e.message}") from None
        yield StepEvent("usage", step, prompt_tokens=totals.prompt, completion_tokens=totals.completion)

    def _budget(self, config: AgentConfig, totals: _Totals) -> int:
        left = config.limits.max_tokens - totals.completion
        if left <= 0:
            raise _Stop("max_tokens", "the run used its completion token budget")
        return left

    async def _tool(self, tools: dict[str, ToolDef], name: str, raw_arguments: Any, call_id: str, step: int,
                    deadline: float) -> tuple[StepEvent, StepEvent, ToolOutcome]:
        started = time.perf_counter()
        call = StepEvent("tool_call", step, tool=name, call_id=call_id,
                         arguments=raw_arguments if isinstance(raw_arguments, str) else json.dumps(raw_arguments))
        outcome = await self._invoke(tools, name, raw_arguments, deadline)
        result = StepEvent("tool_result", step, tool=name, call_id=call_id, ok=outcome.ok,
                           content=truncate(outcome.content, EVENT_RESULT_BYTES), error_code=outcome.error_code,
                           duration_ms=outcome.duration_ms or (time.perf_counter() - started) * 1000)
        return call, result, outcome

    async def _invoke(self, tools: dict[str, ToolDef], name: str, raw_arguments: Any, deadline: float) -> ToolOutcome:
        tool = tools.get(name)
        if tool is None:
            return ToolOutcome(False, f"there is no tool named {name!r}; the tools are: {', '.join(tools)}",
                               "UNKNOWN_TOOL")
        try:
            arguments = json.loads(raw_arguments or "{}") if isinstance(raw_arguments, str) else raw_arguments
            check_arguments(tool.parameters, arguments)
        except ValueError:
            return ToolOutcome(False, "the arguments are not JSON", "INVALID_ARGUMENTS")
        except ArgumentsInvalid as e:
            return ToolOutcome(False, f"invalid arguments: {e}", "INVALID_ARGUMENTS")
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Stop("timeout", "the run took longer than its time limit")
        try:
            async with asyncio.timeout(left):
                return await self.run_tool(tool, arguments)
        except TimeoutError:
            raise _Stop("timeout", "the run took longer than its time limit") from None

    # --- native function calling ---------------------------------------------------------------------------
    async def _native(self, config: AgentConfig, messages: list[dict[str, Any]], totals: _Totals, where: _Where,
                      temperature: float | None) -> AsyncGenerator[StepEvent, None]:
        tools = {t.name: t for t in config.tools}
        history = _with_system(config.instructions, messages)
        for step in range(1, config.limits.max_steps + 1):
            body: dict[str, Any] = {"model": config.model_name, "messages": history,
                                    "max_tokens": self._budget(config, totals)}
            if tools:
                body["tools"] = [t.openai() for t in config.tools]
            if temperature is not None:
                body["temperature"] = temperature
            gathered: dict[int, dict[str, Any]] = {}
            async for event in self._call(body, totals, step, where, gathered):
                yield event
            if not gathered:
                return
            calls = [gathered[i] for i in sorted(gathered)]
            history.append({"role": "assistant", "content": "".join(totals.text) or None, "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in calls]})
            for c in calls:
                call, result, outcome = await self._tool(tools, c["name"], c["arguments"], c["id"], step,
                                                         where.deadline)
                yield call
                yield result
                history.append({"role": "tool", "tool_call_id": c["id"], "content": _for_model(outcome)})
        raise _Stop("max_steps", f"the run reached its limit of {config.limits.max_steps} steps")

    # --- ReAct ---------------------------------------------------------------------------------------------
    async def _react(self, config: AgentConfig, messages: list[dict[str, Any]], totals: _Totals, where: _Where,
                     temperature: float | None) -> AsyncGenerator[StepEvent, None]:
        tools = {t.name: t for t in config.tools}
        if not tools:  # nothing to act with: a plain chat
            history = _with_system(config.instructions, messages)
        else:
            described = "\n".join(f"{t.name}: {t.description} Parameters: {json.dumps(t.parameters)}"
                                  for t in config.tools)
            system = REACT_PROMPT.format(instructions=config.instructions, tools=described, names=", ".join(tools))
            history = _with_system(system.strip(), messages)
        for step in range(1, config.limits.max_steps + 1):
            body: dict[str, Any] = {"model": config.model_name, "messages": history,
                                    "max_tokens": self._budget(config, totals)}
            if tools:
                body["stop"] = ["Observation:"]
            if temperature is not None:
                body["temperature"] = temperature
            async for event in self._call(body, totals, step, where, None):
                yield event
            text = "".join(totals.text)
            action = REACT_ACTION.search(text) if tools else None
            final = REACT_FINAL.search(text)
            if action is None or (final is not None and final.start() < action.start()):
                if final is not None:
                    totals.text[:] = [final.group(1)]
                return  # a final answer, or text that is not an action: the model answered
            name, raw = action.group(1).strip().strip("`[]"), action.group(2).strip()
            raw = raw.split("\nObservation", 1)[0].strip().removeprefix("```json").strip("`").strip()
            call, result, outcome = await self._tool(tools, name, raw, f"react-{step}", step, where.deadline)
            yield call
            yield result
            history.append({"role": "assistant", "content": text[:action.end()].rstrip()})
            history.append({"role": "user", "content": f"Observation: {_for_model(outcome)}"})
        raise _Stop("max_steps", f"the run reached its limit of {config.limits.max_steps} steps")


def _with_system(instructions: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    history = [dict(m) for m in messages]
    if instructions:
        history.insert(0, {"role": "system", "content": instructions})
    return history


def _for_model(outcome: ToolOutcome) -> str:
    return outcome.content if outcome.ok else f"Error ({outcome.error_code}): {outcome.content}"


def _gather(calls: dict[int, dict[str, Any]], deltas: tuple[dict[str, Any], ...]) -> None:
    """OpenAI streams a tool call in pieces keyed by ``index``: the id and name first, the arguments in parts."""
    for position, delta in enumerate(deltas):
        index = delta.get("index", position)
        call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        function = delta.get("function") or {}
        call["id"] = delta.get("id") or call["id"] or f"call-{index}"
        call["name"] += function.get("name") or ""
        call["arguments"] += function.get("arguments") or ""
