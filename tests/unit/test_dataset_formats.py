"""Conversion between OpenAI messages, alpaca and sharegpt records: round trips, detection, clear errors."""

from __future__ import annotations

import json

import pytest

from aigc_admin.domain import chat_format as f
from aigc_admin.domain.chat_format import DatasetFormat, FormatError

MESSAGES = {"messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "And 3+3?"},
    {"role": "assistant", "content": "6"},
]}
ALPACA = {"instruction": "And 3+3?", "input": "", "output": "6", "system": "You are terse.",
          "history": [["What is 2+2?", "4"]]}
SHAREGPT = {"conversations": [
    {"from": "system", "value": "You are terse."},
    {"from": "human", "value": "What is 2+2?"},
    {"from": "gpt", "value": "4"},
    {"from": "human", "value": "And 3+3?"},
    {"from": "gpt", "value": "6"},
]}
SAME = {DatasetFormat.MESSAGES: MESSAGES, DatasetFormat.ALPACA: ALPACA, DatasetFormat.SHAREGPT: SHAREGPT}


@pytest.mark.parametrize("source", list(DatasetFormat))
@pytest.mark.parametrize("target", list(DatasetFormat))
def test_the_same_conversation_in_every_format(source: DatasetFormat, target: DatasetFormat) -> None:
    assert f.convert(SAME[source], target) == SAME[target]
    assert f.convert(SAME[source], target, source) == SAME[target]


@pytest.mark.parametrize("a", list(DatasetFormat))
@pytest.mark.parametrize("b", list(DatasetFormat))
def test_round_trips(a: DatasetFormat, b: DatasetFormat) -> None:
    assert f.convert(f.convert(SAME[a], b), a) == SAME[a]


def test_detection() -> None:
    assert f.detect(MESSAGES) == DatasetFormat.MESSAGES
    assert f.detect(ALPACA) == DatasetFormat.ALPACA
    assert f.detect({"instruction": "hi", "output": "hello"}) == DatasetFormat.ALPACA
    assert f.detect(SHAREGPT) == DatasetFormat.SHAREGPT
    with pytest.raises(FormatError, match="unknown record"):
        f.detect({"prompt": "x", "completion": "y"})
    with pytest.raises(FormatError, match="JSON object"):
        f.detect([1, 2])


def test_single_turn_without_system() -> None:
    alpaca = {"instruction": "Translate", "input": "", "output": "Traduire"}
    assert f.convert(alpaca, DatasetFormat.MESSAGES) == {"messages": [
        {"role": "user", "content": "Translate"}, {"role": "assistant", "content": "Traduire"}]}
    assert f.convert(alpaca, DatasetFormat.SHAREGPT) == {"conversations": [
        {"from": "human", "value": "Translate"}, {"from": "gpt", "value": "Traduire"}]}
    # optional keys absent on the way back
    assert f.convert(f.convert(alpaca, DatasetFormat.MESSAGES), DatasetFormat.ALPACA) == alpaca


def test_alpaca_input_joins_the_instruction_and_survives_a_round_trip_through_the_conversation() -> None:
    alpaca = {"instruction": "Translate to French", "input": "cheese", "output": "fromage"}
    conv = f.read(alpaca)
    assert conv.messages[0].content == "Translate to French\ncheese"
    assert conv.alpaca_fields() == ("Translate to French", "cheese")
    assert f.to_alpaca(conv) == alpaca
    # through another record format the split is not kept: the whole question becomes the instruction
    via_messages = f.convert(f.convert(alpaca, DatasetFormat.MESSAGES), DatasetFormat.ALPACA)
    assert via_messages == {"instruction": "Translate to French\ncheese", "input": "", "output": "fromage"}


def test_sharegpt_top_level_system_is_accepted() -> None:
    record = {"system": "Be kind.",
              "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hey"}]}
    assert f.convert(record, DatasetFormat.MESSAGES) == {"messages": [
        {"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hey"}]}


def test_lines_and_turns() -> None:
    conv = f.parse_line(json.dumps(MESSAGES).encode())
    assert conv.system == "You are terse." and conv.turns == 2 and conv.last_assistant() == "6"
    line = f.dump_line(conv, DatasetFormat.SHAREGPT)
    assert line.endswith("\n") and "\n" not in line[:-1] and json.loads(line) == SHAREGPT
    text = f.dump_line(f.read({"messages": [{"role": "user", "content": "héllo\nwörld"},
                                            {"role": "assistant", "content": "ok"}]}), DatasetFormat.MESSAGES)
    assert "héllo" in text and text.count("\n") == 1  # UTF-8 kept, newlines escaped


@pytest.mark.parametrize(("record", "message"), [
    ({"messages": []}, "\"messages\" must be a non-empty list"),
    ({"messages": "hi"}, "\"messages\" must be a non-empty list"),
    ({"messages": [{"role": "user"}]}, r"messages\[0\].content must be a string"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]},
     r"messages\[0\].content must be a string"),
    ({"messages": [{"role": "tool", "content": "x"}]},
     r'messages\[0\].role must be one of system, user, assistant \(got "tool"\)'),
    ({"messages": [{"role": "system", "content": "x"}]}, "at least one user or assistant message"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]},
     r"messages\[1\]: a system message may only come first"),
    ({"conversations": [{"from": "bot", "value": "x"}]}, r"conversations\[0\].from must be one of system, human, gpt"),
    ({"conversations": [{"from": "human"}]}, r"conversations\[0\].value must be a string"),
    ({"system": "a", "conversations": [{"from": "system", "value": "b"}, {"from": "human", "value": "c"}]},
     "system prompt is given twice"),
    ({"instruction": "x"}, "output must be a string"),
    ({"instruction": "", "input": "", "output": "y"}, "instruction and input are both empty"),
    ({"instruction": "x", "output": "y", "history": [["only question"]]}, r"history\[0\] must be a \[question"),
    ({"instruction": "x", "output": "y", "history": "nope"}, "history must be a list"),
])
def test_bad_records(record: object, message: str) -> None:
    with pytest.raises(FormatError, match=message) as e:
        f.read(record)
    assert isinstance(e.value, ValueError) and e.value.message


def test_bad_json_line() -> None:
    with pytest.raises(FormatError, match="not valid JSON"):
        f.parse_line(b"{not json")


@pytest.mark.parametrize(("messages", "message"), [
    ([("user", "q")], "end with an assistant message"),
    ([("user", "q"), ("assistant", "a"), ("user", "q2")], "end with an assistant message"),
    ([("assistant", "a")], "message 1 is assistant"),
    ([("user", "q"), ("user", "q2"), ("assistant", "a")], "message 2 is user"),
])
def test_what_alpaca_cannot_hold(messages: list[tuple[str, str]], message: str) -> None:
    record = {"messages": [{"role": r, "content": c} for r, c in messages]}
    conv = f.read(record)  # fine as messages and as sharegpt
    assert f.convert(f.to_sharegpt(conv), DatasetFormat.MESSAGES) == record
    with pytest.raises(FormatError, match=message):
        f.convert(record, DatasetFormat.ALPACA)


def test_multi_turn_to_alpaca_uses_history() -> None:
    record = {"messages": [{"role": "user", "content": f"q{i}"} if j == 0 else {"role": "assistant", "content": f"a{i}"}
                           for i in range(3) for j in range(2)]}
    assert f.convert(record, DatasetFormat.ALPACA) == {
        "instruction": "q2", "input": "", "output": "a2", "history": [["q0", "a0"], ["q1", "a1"]]}


@pytest.mark.parametrize("record", [
    {"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"},
                  {"role": "assistant", "content": "c"}]},
    {"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]},
    {"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "b"}]},
    {"messages": []},
])
def test_uploads_and_datasets_read_a_record_with_the_same_rules(record: object) -> None:
    """One chat-format module: an upload's validation reports what a dataset import reports for the same record
    (training only adds its own rules on top: alternation, an answer last, no empty content)."""
    from aigc_admin.domain.files.service import validate_chat_jsonl

    with pytest.raises(FormatError) as as_dataset:
        f.read(record, DatasetFormat.MESSAGES)
    as_upload = validate_chat_jsonl([json.dumps(record).encode()])
    assert [e.message for e in as_upload.errors] == [as_dataset.value.message]
