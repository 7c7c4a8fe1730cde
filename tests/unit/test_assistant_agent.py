"""The agent's loop (domain logic, with a scripted model and tools standing in): native tool calls gathered from
streamed pieces, ReAct parsing, tool failures sent back to the model, and the bounds (steps, tokens, time) each
ending the run with its reason. Also the HTTP tool's request building and argument checks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from aigc_admin.domain.assistants import http_tool
from aigc_admin.domain.assistants.agent import Agent, StepEvent
from aigc_admin.domain.assistants.entities import AgentConfig, AgentMode, HttpSpec, Limits, ToolDef, ToolOutcome
from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.model_calls import ChatChunk, ChatReply, ModelCallError, ModelCallErrorCode, Usage

ADD = ToolDef("add", "Add two numbers", {"type": "object", "properties": {"a": {"type": "integer"},
                                                                          "b": {"type": "integer"}},
                                         "required": ["a", "b"]})


class ScriptedModel:
    """Each call answers the next script entry: a list of ChatChunks, or an exception."""

    def __init__(self, script: list[Any], delay: float = 0.0) -> None:
        self.script = list(script)
        self.bodies: list[dict[str, Any]] = []
        self.delay = delay

    async def stream_chat(self, body: dict[str, Any], *, tenant_id: int, channel_id: int,
                          also_allow: frozenset[str] = frozenset()) -> AsyncGenerator[ChatChunk, None]:
        self.bodies.append(json.loads(json.dumps(body)))
        entry = self.script.pop(0) if self.script else [ChatChunk("done", "stop", Usage(1, 1))]
        if isinstance(entry, Exception):
            raise entry

        async def chunks() -> AsyncGenerator[ChatChunk, None]:
            for chunk in entry:
                await asyncio.sleep(self.delay)
                yield chunk
        return chunks()

    async def chat(self, body: dict[str, Any], *, tenant_id: int, channel_id: int,
                   also_allow: frozenset[str] = frozenset()) -> ChatReply:
        raise NotImplementedError


def tool_call_chunks(name: str, arguments: str, call_id: str = "c1") -> list[ChatChunk]:
    """A tool call streamed the way OpenAI does: id and name first, the arguments in two pieces."""
    half = len(arguments) // 2
    return [ChatChunk(tool_calls=({"index": 0, "id": call_id, "type": "function",
                                   "function": {"name": name, "arguments": ""}},)),
            ChatChunk(tool_calls=({"index": 0, "function": {"arguments": arguments[:half]}},)),
            ChatChunk(tool_calls=({"index": 0, "function": {"arguments": arguments[half:]}},)),
            ChatChunk(finish_reason="tool_calls", usage=Usage(10, 5))]


def config(mode: AgentMode = AgentMode.NATIVE, **limits: Any) -> AgentConfig:
    return AgentConfig(assistant_id=1, name="calc", model_name="m", instructions="Be exact.", tools=(ADD,),
                       limits=Limits(**{"max_steps": 4, "max_tokens": 1000, "timeout_seconds": 5, **limits}),
                       mode=mode)


async def run(model: ScriptedModel, cfg: AgentConfig, tools: Any = None) -> list[StepEvent]:
    calls: list[dict[str, Any]] = []

    async def run_tool(tool: ToolDef, arguments: dict[str, Any]) -> ToolOutcome:
        calls.append(arguments)
        if tools is not None:
            return await tools(tool, arguments)  # type: ignore[no-any-return]
        return ToolOutcome(True, str(arguments["a"] + arguments["b"]))

    agent = Agent(calls=model, run_tool=run_tool)
    return [e async for e in agent.run(cfg, [{"role": "user", "content": "2+3?"}], tenant_id=1, channel_id=1,
                                       mode=cfg.mode)]


async def test_native_loop_model_tool_model_answer() -> None:
    model = ScriptedModel([tool_call_chunks("add", '{"a": 2, "b": 3}'),
                           [ChatChunk("It is "), ChatChunk("5.", "stop", Usage(20, 3))]])
    events = await run(model, config())
    kinds = [e.kind for e in events]
    assert kinds == ["usage", "tool_call", "tool_result", "text", "text", "usage", "final"]
    call, result, final = events[1], events[2], events[-1]
    assert (call.tool, json.loads(call.arguments), call.call_id) == ("add", {"a": 2, "b": 3}, "c1")
    assert (result.ok, result.content) == (True, "5")
    assert (final.content, final.stop_reason) == ("It is 5.", "completed")
    assert (final.prompt_tokens, final.completion_tokens) == (30, 8)
    # the first request offers the tool; the second carries the call and its result for the model
    assert model.bodies[0]["tools"][0]["function"]["name"] == "add"
    assert model.bodies[0]["messages"][0] == {"role": "system", "content": "Be exact."}
    second = model.bodies[1]["messages"]
    assert second[-2]["tool_calls"][0]["function"] == {"name": "add", "arguments": '{"a": 2, "b": 3}'}
    assert second[-1] == {"role": "tool", "tool_call_id": "c1", "content": "5"}
    assert model.bodies[1]["max_tokens"] == 995  # what is left of the run's completion budget


async def test_tool_failures_go_back_to_the_model_not_to_a_crash() -> None:
    async def failing(tool: ToolDef, arguments: dict[str, Any]) -> ToolOutcome:
        return ToolOutcome(False, "10.0.0.1 is private", "ADDRESS_NOT_ALLOWED")

    model = ScriptedModel([tool_call_chunks("add", '{"a": "two", "b": 1}'), tool_call_chunks("nope", "{}", "c2"),
                           tool_call_chunks("add", "not json", "c3"), tool_call_chunks("add", '{"a":1,"b":1}', "c4"),
                           [ChatChunk("sorry", "stop", Usage(1, 1))]])
    events = await run(model, config(max_steps=5), failing)
    results = [e for e in events if e.kind == "tool_result"]
    assert [r.error_code for r in results] == ["INVALID_ARGUMENTS", "UNKNOWN_TOOL", "INVALID_ARGUMENTS",
                                               "ADDRESS_NOT_ALLOWED"]
    assert results[0].content == "invalid arguments: a: 'two' is not of type 'integer'"
    assert all(not r.ok for r in results)
    fed_back = [m for m in model.bodies[-1]["messages"] if m["role"] == "tool"]
    assert fed_back[-1]["content"] == "Error (ADDRESS_NOT_ALLOWED): 10.0.0.1 is private"
    assert events[-1].stop_reason == "completed"


async def test_each_bound_ends_the_run_and_says_why() -> None:
    loop_forever = [tool_call_chunks("add", '{"a":1,"b":2}', f"c{i}") for i in range(10)]
    events = await run(ScriptedModel(list(loop_forever)), config(max_steps=3))
    assert events[-1].stop_reason == "max_steps" and "3 steps" in events[-1].content
    assert sum(e.kind == "tool_call" for e in events) == 3

    events = await run(ScriptedModel(list(loop_forever)), config(max_tokens=12))  # 5 completion tokens per call
    assert events[-1].stop_reason == "max_tokens"

    slow = ScriptedModel(list(loop_forever), delay=0.2)
    events = await run(slow, config(timeout_seconds=0.5))
    assert events[-1].stop_reason == "timeout"

    failing = ScriptedModel([ModelCallError(ModelCallErrorCode.RATE_LIMITED, "Rate limit reached")])
    events = await run(failing, config())
    assert events[-1].stop_reason == "model_error" and "Rate limit" in events[-1].content


async def test_react_parses_actions_and_the_final_answer() -> None:
    model = ScriptedModel([
        [ChatChunk('Thought: add them\nAction: add\nAction Input: {"a": 2, "b": 3}', "stop", Usage(30, 12))],
        [ChatChunk("Thought: I now know the final answer\nFinal Answer: 5", "stop", Usage(40, 9))],
    ])
    events = await run(model, config(AgentMode.REACT))
    call = next(e for e in events if e.kind == "tool_call")
    assert (call.tool, json.loads(call.arguments)) == ("add", {"a": 2, "b": 3})
    assert events[-1].content == "5" and events[-1].stop_reason == "completed"
    first = model.bodies[0]
    assert "tools" not in first and first["stop"] == ["Observation:"]
    assert "Action Input:" in first["messages"][0]["content"] and "add: Add two numbers" in first["messages"][0][
        "content"]
    assert model.bodies[1]["messages"][-1] == {"role": "user", "content": "Observation: 5"}


async def test_react_text_that_is_no_action_is_the_answer() -> None:
    model = ScriptedModel([[ChatChunk("qwe rty uio", "length", Usage(3, 3))]])
    events = await run(model, config(AgentMode.REACT))
    assert (events[-1].content, events[-1].stop_reason) == ("qwe rty uio", "completed")


def test_http_request_from_templates() -> None:
    spec = HttpSpec(url="https://api.example.com/users/{user}/items", method="POST",
                    parameters={"type": "object", "properties": {"user": {"type": "string"}}},
                    body='{"query": "{{q}}", "limit": "{{limit}}", "note": "for {{user}}"}',
                    headers={"X-A": "1"}, secret_headers={"Authorization": "Bearer s"})
    req = http_tool.build_request(spec, {"user": "a b/c", "q": "x", "limit": 5})
    assert req.url == "https://api.example.com/users/a%20b%2Fc/items"
    assert req.json_body == {"query": "x", "limit": 5, "note": "for a b/c"}
    assert req.headers == {"X-A": "1", "Authorization": "Bearer s"}
    get = http_tool.build_request(HttpSpec(url="https://h/search"), {"q": "cats", "n": 3})
    assert (get.method, get.params, get.has_body) == ("GET", [("q", "cats"), ("n", "3")], False)
    post = http_tool.build_request(HttpSpec(url="https://h/{id}", method="PUT"), {"id": 7, "name": "n"})
    assert (post.url, post.json_body) == ("https://h/7", {"name": "n"})


def test_tool_definitions_are_checked() -> None:
    def refused(**kw: Any) -> str:
        with pytest.raises(DomainError) as e:
            http_tool.check_spec(HttpSpec(**{"url": "https://h/x", **kw}))
        return str(e.value.code)

    assert refused(parameters={"type": 42}) == "INVALID_SCHEMA"
    assert refused(parameters={"type": "array"}) == "INVALID_SCHEMA"
    assert refused(url="ftp://h/x") == "INVALID"
    assert refused(url="https://{host}/x") == "INVALID"
    assert refused(method="TRACE") == "INVALID"
    assert refused(body="{not json") == "INVALID"
    assert refused(headers={"Host": "evil"}) == "INVALID"
    assert refused(headers={"X": "a\r\nB: c"}) == "INVALID"
    assert refused(timeout_seconds=0) == "INVALID"
    assert refused(extract="data.items") == "INVALID"
    with pytest.raises(http_tool.ArgumentsInvalid, match="required"):
        http_tool.check_arguments(ADD.parameters, {"a": 1})


def test_response_extraction_and_cap() -> None:
    spec = HttpSpec(url="https://h", extract="/data/0/name", max_response_bytes=3)
    assert http_tool.response_text(b'{"data": [{"name": "alpha"}]}', spec) == "alp … [truncated]"
    with pytest.raises(http_tool.ExtractFailed):
        http_tool.response_text(b'{"data": []}', spec)
