"""Chat samples, the one place for their rules: reading and writing the three JSONL record shapes of chat
fine-tuning data, and what a sample must be to train on (pure functions). Uploaded files (files area) and
datasets (datasets area) both use it.

- ``messages`` (OpenAI): ``{"messages": [{"role": "system"|"user"|"assistant", "content": "…"}, …]}``
- ``alpaca``: ``{"instruction", "input", "output", "system"?, "history"?: [[question, answer], …]}``
- ``sharegpt``: ``{"conversations": [{"from": "system"|"human"|"gpt", "value": "…"}, …]}`` (a top-level
  ``"system"`` string is accepted on input too)

Everything goes through :class:`Conversation`: an optional system prompt and the user/assistant messages.
Alpaca's ``instruction`` and ``input`` form the last user message, joined by a newline (as LLaMA-Factory
does); a conversation parsed from alpaca remembers the split so that it is written back the same way.
Records that cannot be read or written raise :class:`FormatError` (a ``ValueError``) with a message that
names the place with JSON indices (``messages[0].role``).

A training sample (``training_sample``) is stricter than a record: OpenAI messages, no empty content, user and
assistant in turn starting with the user, and the assistant's answer last.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class DatasetFormat(StrEnum):
    MESSAGES = "messages"
    ALPACA = "alpaca"
    SHAREGPT = "sharegpt"


class FormatError(ValueError):
    """A record that is not valid in its format, or cannot be written in the wanted one."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


ROLES = ("system", "user", "assistant")
_FROM_SHAREGPT = {"system": "system", "human": "user", "gpt": "assistant"}
_TO_SHAREGPT = {v: k for k, v in _FROM_SHAREGPT.items()}


@dataclass(frozen=True)
class Message:
    role: str  # user | assistant (the system prompt is Conversation.system)
    content: str


@dataclass(frozen=True)
class Conversation:
    system: str
    messages: tuple[Message, ...]
    # alpaca's (instruction, input) of the last user message, when it came from alpaca with an input
    alpaca_split: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if not self.messages:
            raise FormatError("a conversation needs at least one user or assistant message")
        for i, m in enumerate(self.messages):
            if m.role not in ("user", "assistant"):
                raise FormatError(f"message {i + 1}: {_misplaced(m.role)}")
        if self.alpaca_split is not None and self.last_user() != join_instruction(*self.alpaca_split):
            object.__setattr__(self, "alpaca_split", None)  # stale after an edit: no longer applies

    @property
    def turns(self) -> int:
        """Exchanges in the conversation: its assistant messages."""
        return sum(1 for m in self.messages if m.role == "assistant")

    def last_user(self) -> str:
        for m in reversed(self.messages):
            if m.role == "user":
                return m.content
        return ""

    def last_assistant(self) -> str:
        return self.messages[-1].content if self.messages[-1].role == "assistant" else ""

    def as_messages(self) -> list[dict[str, str]]:
        """OpenAI chat messages, the system prompt first when there is one."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [{"role": m.role, "content": m.content} for m in self.messages]

    def alpaca_fields(self) -> tuple[str, str]:
        """(instruction, input) of the last user message."""
        return self.alpaca_split or (self.last_user(), "")


def _misplaced(role: str) -> str:
    return "a system message may only come first" if role == "system" else f"role {role!r} is not allowed"


def join_instruction(instruction: str, input: str) -> str:
    return f"{instruction}\n{input}" if input else instruction


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise FormatError(f"{where} must be a string")
    return value


def _object(record: object) -> Mapping[str, Any]:
    if not isinstance(record, Mapping):
        raise FormatError("a record must be a JSON object")
    return record


def _list(value: object, where: str) -> Sequence[Any]:
    if not isinstance(value, list) or not value:
        raise FormatError(f"\"{where}\" must be a non-empty list")
    return value


def _conversation(pairs: list[tuple[str, str]], where: str, split: tuple[str, str] | None = None,
                  first: int = 0) -> Conversation:
    """From (role, content) pairs; a system message may only come first (``where[i]`` names the pair at ``i``;
    ``first``: the index of the first pair in the record)."""
    for i, (role, _) in enumerate(pairs[1:], 1):
        if role == "system":
            raise FormatError(f"{where}[{i - first}]: a system message may only come first")
    system = ""
    if pairs and pairs[0][0] == "system":
        system = pairs[0][1]
        pairs = pairs[1:]
    return Conversation(system=system, messages=tuple(Message(r, c) for r, c in pairs), alpaca_split=split)


# --- reading ------------------------------------------------------------------------------------------------
def detect(record: object) -> DatasetFormat:
    """The format of a parsed JSONL record, from its keys."""
    r = _object(record)
    if "messages" in r:
        return DatasetFormat.MESSAGES
    if "conversations" in r:
        return DatasetFormat.SHAREGPT
    if "instruction" in r or "output" in r:
        return DatasetFormat.ALPACA
    raise FormatError("unknown record: expected 'messages' (OpenAI), 'conversations' (sharegpt) "
                      "or 'instruction' and 'output' (alpaca)")


def from_messages(record: object) -> Conversation:
    items = _list(_object(record).get("messages"), "messages")
    pairs: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise FormatError(f"messages[{i}] must be an object with \"role\" and \"content\"")
        role = item.get("role")
        if not isinstance(role, str) or role not in ROLES:
            got = json.dumps(role, ensure_ascii=False)[:40]
            raise FormatError(f"messages[{i}].role must be one of {', '.join(ROLES)} (got {got})")
        pairs.append((role, _text(item.get("content"), f"messages[{i}].content")))
    return _conversation(pairs, "messages")


def from_sharegpt(record: object) -> Conversation:
    r = _object(record)
    items = _list(r.get("conversations"), "conversations")
    pairs: list[tuple[str, str]] = []
    if r.get("system"):
        pairs.append(("system", _text(r["system"], "system")))
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise FormatError(f"conversations[{i}] must be an object with \"from\" and \"value\"")
        who = _text(item.get("from"), f"conversations[{i}].from")
        if who not in _FROM_SHAREGPT:
            raise FormatError(f"conversations[{i}].from must be one of system, human, gpt (got {who!r})")
        if who == "system" and pairs and pairs[0][0] == "system" and i == 0:
            raise FormatError("the system prompt is given twice (system and conversations[0])")
        pairs.append((_FROM_SHAREGPT[who], _text(item.get("value"), f"conversations[{i}].value")))
    return _conversation(pairs, "conversations", first=1 if r.get("system") else 0)


def from_alpaca(record: object) -> Conversation:
    r = _object(record)
    instruction = _text(r.get("instruction", ""), "instruction")
    input_ = _text(r.get("input", "") or "", "input")
    output = _text(r.get("output"), "output")
    if not instruction and not input_:
        raise FormatError("instruction and input are both empty")
    system = _text(r.get("system", "") or "", "system")
    pairs: list[tuple[str, str]] = [("system", system)] if system else []
    history = r.get("history") or []
    if not isinstance(history, list):
        raise FormatError("history must be a list of [question, answer] pairs")
    for i, pair in enumerate(history):
        if not isinstance(pair, list) or len(pair) != 2:
            raise FormatError(f"history[{i}] must be a [question, answer] pair")
        pairs += [("user", _text(pair[0], f"history[{i}][0]")), ("assistant", _text(pair[1], f"history[{i}][1]"))]
    pairs += [("user", join_instruction(instruction, input_)), ("assistant", output)]
    return _conversation(pairs, "history", (instruction, input_) if input_ else None)


_READERS = {DatasetFormat.MESSAGES: from_messages, DatasetFormat.ALPACA: from_alpaca,
            DatasetFormat.SHAREGPT: from_sharegpt}


def read(record: object, fmt: DatasetFormat | None = None) -> Conversation:
    """A record in ``fmt`` (detected when None)."""
    return _READERS[fmt or detect(record)](record)


def parse_line(line: str | bytes) -> Conversation:
    """One JSONL line in any of the three formats."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise FormatError(f"not valid JSON: {e}") from None
    return read(record)


# --- training samples -----------------------------------------------------------------------------------------
def training_sample(record: object) -> Conversation:
    """A record to train on: OpenAI messages, no empty content, user and assistant in turn starting with the
    user (after an optional system message), the assistant's answer last. Raises FormatError naming the first
    problem."""
    if not isinstance(record, Mapping):
        raise FormatError("a line must be a JSON object with \"messages\"")
    conv = from_messages(record)
    items = record["messages"]
    for i, item in enumerate(items):
        if not item["content"].strip():
            raise FormatError(f"messages[{i}].content is empty")
    offset = 1 if items[0]["role"] == "system" else 0
    for i, m in enumerate(conv.messages):
        expected = "user" if i % 2 == 0 else "assistant"
        if m.role != expected:
            raise FormatError(f"messages[{i + offset}].role is {m.role} but {expected} was expected "
                              "(user and assistant must alternate, starting with user)")
    if len(conv.messages) < 2:
        raise FormatError("a sample needs at least one user and one assistant message")
    if conv.messages[-1].role != "assistant":
        raise FormatError("the last message must be from the assistant")
    return conv


# --- writing ------------------------------------------------------------------------------------------------
def to_messages(c: Conversation) -> dict[str, Any]:
    return {"messages": c.as_messages()}


def to_sharegpt(c: Conversation) -> dict[str, Any]:
    return {"conversations": [{"from": _TO_SHAREGPT[m["role"]], "value": m["content"]} for m in c.as_messages()]}


def to_alpaca(c: Conversation) -> dict[str, Any]:
    """Alpaca needs user/assistant exchanges, in order, ending with the assistant's answer (the output);
    the exchanges before the last one become ``history``."""
    for i, m in enumerate(c.messages):
        wanted = "user" if i % 2 == 0 else "assistant"
        if m.role != wanted:
            raise FormatError(f"alpaca needs user and assistant messages in turn, starting with the user; "
                              f"message {i + 1} is {m.role}")
    if c.messages[-1].role != "assistant":
        raise FormatError("alpaca needs the conversation to end with an assistant message (the output)")
    instruction, input_ = c.alpaca_fields()
    out: dict[str, Any] = {"instruction": instruction, "input": input_, "output": c.messages[-1].content}
    if c.system:
        out["system"] = c.system
    history = [[c.messages[i].content, c.messages[i + 1].content] for i in range(0, len(c.messages) - 2, 2)]
    if history:
        out["history"] = history
    return out


_WRITERS = {DatasetFormat.MESSAGES: to_messages, DatasetFormat.ALPACA: to_alpaca,
            DatasetFormat.SHAREGPT: to_sharegpt}


def write(c: Conversation, fmt: DatasetFormat) -> dict[str, Any]:
    return _WRITERS[fmt](c)


def dump_line(c: Conversation, fmt: DatasetFormat) -> str:
    """One JSONL line (UTF-8 text kept as is, no newline inside, a newline at the end)."""
    return json.dumps(write(c, fmt), ensure_ascii=False) + "\n"


def convert(record: object, to: DatasetFormat, source: DatasetFormat | None = None) -> dict[str, Any]:
    """A record from ``source`` (detected when None) in the format ``to``."""
    return write(read(record, source), to)
