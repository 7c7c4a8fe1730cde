"""Chat JSONL validation of fine-tuning uploads: line-numbered errors, limits, counts, line ends, encodings."""

from __future__ import annotations

import io
import json

import pytest

from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.files.service import (
    MESSAGE_OVERHEAD,
    SAMPLE_OVERHEAD,
    LineSplitter,
    estimate_tokens,
    safe_name,
    validate_chat_jsonl,
)


def sample(*pairs: tuple[str, str]) -> bytes:
    return json.dumps({"messages": [{"role": r, "content": c} for r, c in pairs]}, ensure_ascii=False).encode()


GOOD = sample(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"))
GOOD2 = sample(("user", "2+2?"), ("assistant", "4"), ("user", "and 3+3?"), ("assistant", "6"))


def lines(*rows: bytes, end: bytes = b"\n") -> list[bytes]:
    return list(io.BytesIO(end.join(rows) + end))


def test_good_file_counts_lines_samples_and_tokens() -> None:
    report = validate_chat_jsonl(lines(GOOD, GOOD2))
    assert report.ok and report.errors == [] and report.error_count == 0
    assert (report.lines, report.samples) == (2, 2)
    contents = ["Be brief.", "Hi", "Hello!", "2+2?", "4", "and 3+3?", "6"]
    expected = sum(estimate_tokens(c) for c in contents) + MESSAGE_OVERHEAD * 7 + SAMPLE_OVERHEAD * 2
    assert report.token_estimate == expected and report.estimated


def test_token_estimate_is_documented_formula() -> None:
    assert estimate_tokens("abcd") == 1 and estimate_tokens("abcde") == 2 and estimate_tokens("") == 0
    assert estimate_tokens("你好") == 2  # one per non-ASCII character
    assert estimate_tokens("ab你好") == 3


def test_a_token_counter_is_used_when_given() -> None:
    class Words:
        def count(self, texts: list[str]) -> int:
            return sum(len(t.split()) for t in texts)

    report = validate_chat_jsonl(lines(sample(("user", "one two three"), ("assistant", "four five"))),
                                 counter=Words())
    assert report.token_estimate == 5 + 2 * MESSAGE_OVERHEAD + SAMPLE_OVERHEAD and not report.estimated


def test_malformed_json_on_line_3() -> None:
    report = validate_chat_jsonl(lines(GOOD, GOOD2, b'{"messages": [', GOOD))
    assert [e.line for e in report.errors] == [3]
    assert report.errors[0].message.startswith("not valid JSON")
    assert report.samples == 3 and report.error_count == 1 and not report.ok


@pytest.mark.parametrize(("row", "fragment"), [
    (sample(("user", "hi"), ("bot", "hello")), "messages[1].role must be one of system, user, assistant"),
    (sample(("user", "hi"), ("tool", "x")), "role must be one of"),
    (sample(("user", "hi")), "at least one user and one assistant"),
    (sample(("user", "hi"), ("assistant", "a"), ("user", "more?")), "last message must be from the assistant"),
    (sample(("assistant", "a"), ("user", "hi")), "messages[0].role is assistant but user was expected"),
    (sample(("user", "a"), ("user", "b"), ("assistant", "c")), "messages[1].role is user but assistant"),
    (sample(("user", "a"), ("system", "b"), ("assistant", "c")), "system message may only come first"),
    (sample(("user", "  "), ("assistant", "c")), "messages[0].content is empty"),
    (json.dumps({"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "x"}]}).encode(),
     "messages[0].content must be a string"),
    (json.dumps({"messages": [{"role": "user", "content": ["a"]}]}).encode(), "content must be a string"),
    (json.dumps({"messages": []}).encode(), "\"messages\" must be a non-empty list"),
    (json.dumps({"prompt": "x", "completion": "y"}).encode(), "\"messages\" must be a non-empty list"),
    (b"[1, 2]", "must be a JSON object"),
    (json.dumps({"messages": ["hi"]}).encode(), "messages[0] must be an object"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
])
def test_wrong_samples_are_reported_with_their_line(row: bytes, fragment: str) -> None:
    report = validate_chat_jsonl(lines(GOOD, row))
    assert [e.line for e in report.errors] == [2], report
    assert fragment in report.errors[0].message, report.errors[0].message
    assert report.samples == 1


def test_empty_file_and_blank_lines() -> None:
    empty = validate_chat_jsonl([])
    assert (empty.lines, empty.samples, empty.error_count) == (0, 0, 0)
    blank = validate_chat_jsonl(lines(b"", b"  ", b"\t\r"))
    assert (blank.samples, blank.error_count) == (0, 0)  # blank lines are skipped (the service calls it EMPTY)
    numbered = validate_chat_jsonl(lines(b"", GOOD, b"", b"oops"))
    assert [e.line for e in numbered.errors] == [4] and numbered.samples == 1  # blank lines keep their numbers


def test_line_too_long() -> None:
    long_row = sample(("user", "x" * 300), ("assistant", "y"))
    report = validate_chat_jsonl(lines(GOOD, long_row), max_line_bytes=200)
    assert [e.line for e in report.errors] == [2]
    assert "longer than the limit of 200 bytes" in report.errors[0].message


def test_only_the_first_n_errors_are_kept_but_all_are_counted() -> None:
    report = validate_chat_jsonl(lines(*[b"nope"] * 30, GOOD), max_errors=5)
    assert [e.line for e in report.errors] == [1, 2, 3, 4, 5]
    assert report.error_count == 30 and report.samples == 1


def test_crlf_line_ends() -> None:
    report = validate_chat_jsonl(lines(GOOD, GOOD2, end=b"\r\n"))
    assert report.ok and report.samples == 2


def test_utf8_bom_on_the_first_line() -> None:
    report = validate_chat_jsonl(lines(b"\xef\xbb\xbf" + GOOD, GOOD2))
    assert report.ok and report.samples == 2
    later = validate_chat_jsonl(lines(GOOD, b"\xef\xbb\xbf" + GOOD2))
    assert [e.line for e in later.errors] == [2]  # a BOM is only accepted at the start of the file


def test_invalid_utf8() -> None:
    row = b'{"messages": [{"role": "user", "content": "caf\xe9"}, {"role": "assistant", "content": "x"}]}'
    report = validate_chat_jsonl(lines(GOOD, row))
    assert [e.line for e in report.errors] == [2] and "not valid UTF-8" in report.errors[0].message


def test_non_ascii_content_is_fine() -> None:
    report = validate_chat_jsonl(lines(sample(("user", "你好"), ("assistant", "您好！"))))
    assert report.ok and report.token_estimate == 2 + 3 + 2 * MESSAGE_OVERHEAD + SAMPLE_OVERHEAD


def test_last_line_without_line_end() -> None:
    report = validate_chat_jsonl([GOOD + b"\n", GOOD2])
    assert report.ok and report.samples == 2


def test_line_splitter_across_chunks_and_overlong_lines() -> None:
    splitter = LineSplitter(max_line_bytes=10)
    out = splitter.feed(b"ab") + splitter.feed(b"c\r\nde") + splitter.feed(b"f\n" + b"x" * 50) + splitter.feed(b"y\nz")
    out += splitter.close()
    assert out[:2] == [b"abc\r", b"def"]
    assert len(out[2]) == 12 and out[2].startswith(b"x")  # bounded: only the first max+2 bytes are held
    assert out[3:] == [b"z"]


@pytest.mark.parametrize(("raw", "name"), [
    ("train.jsonl", "train.jsonl"), ("../../etc/passwd", "passwd"), ("C:\\Users\\me\\data.jsonl", "data.jsonl"),
    ("  spaced.jsonl ", "spaced.jsonl"), ("数据.jsonl", "数据.jsonl"),
])
def test_safe_names_strip_directories(raw: str, name: str) -> None:
    assert safe_name(raw) == name


@pytest.mark.parametrize("raw", ["", None, "..", "a/..", "dir/", ".", "bad\x00name", "new\nline", "x" * 256])
def test_unsafe_names_are_refused(raw: str | None) -> None:
    with pytest.raises(DomainError) as e:
        safe_name(raw)
    assert e.value.code == "INVALID"
