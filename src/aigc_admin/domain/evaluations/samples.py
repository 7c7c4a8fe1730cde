"""Reading an evaluation's samples from a chat JSONL file.

Each non-blank line is ``{"messages": [...]}`` (the fine-tuning format). The reference is the content of the
last assistant message; the input is every message before it (a trailing user turn after the last answer is
not part of the sample). A held-out split keeps the lines ``split.held_out`` chooses, counted among the
non-blank lines as the training side counts them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from aigc_admin.domain.errors import Invalid
from aigc_admin.domain.evaluations.entities import SampleInput
from aigc_admin.domain.evaluations.split import held_out

MAX_SAMPLES = 100_000
MAX_REPORTED = 10  # line errors listed in one message
ROLES = ("system", "user", "assistant", "tool")


def parse_sample(raw: bytes, line: int) -> SampleInput:
    """One line as a sample; ``ValueError`` says what is wrong with it."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"not JSON ({e})") from None
    messages = obj.get("messages") if isinstance(obj, dict) else None
    if not isinstance(messages, list) or not messages:
        raise ValueError('expected an object with a non-empty "messages" list')
    clean: list[dict[str, Any]] = []
    for k, m in enumerate(messages, start=1):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ValueError(f"message {k} needs a role ({', '.join(ROLES)}) and a string content")
        clean.append({"role": m["role"], "content": m["content"]})
    last = max((i for i, m in enumerate(clean) if m["role"] == "assistant"), default=None)
    if last is None:
        raise ValueError("no assistant message: nothing to compare the answer with")
    if not any(m["role"] == "user" for m in clean[:last]):
        raise ValueError("no user message before the reference answer")
    return SampleInput(line=line, messages=clean[:last], reference=clean[last]["content"])


async def read_samples(lines: AsyncIterator[bytes], *, percent: float = 0.0, seed: int = 0) -> list[SampleInput]:
    """The file's samples (only the held-out ones when ``percent`` > 0). Bad lines among them are reported
    together, with their line numbers, as one ``Invalid`` on ``fileId``."""
    samples: list[SampleInput] = []
    errors: list[str] = []
    bad = 0
    index = -1  # among non-blank lines
    line = 0
    async for raw in lines:
        line += 1
        if not raw.strip():
            continue
        index += 1
        if percent > 0 and not held_out(index, percent=percent, seed=seed):
            continue
        try:
            samples.append(parse_sample(raw, line))
        except ValueError as e:
            bad += 1
            if len(errors) < MAX_REPORTED:
                errors.append(f"line {line}: {e}")
        if len(samples) > MAX_SAMPLES:
            raise Invalid("fileId", f"more than {MAX_SAMPLES} samples: split the file")
    if errors:
        more = f" (and {bad - len(errors)} more)" if bad > len(errors) else ""
        raise Invalid("fileId", "; ".join(errors) + more)
    if not samples:
        what = f"{percent:g}% held out of the file's samples is none of them: raise holdoutPercent" if percent \
            else "the file has no samples"
        raise Invalid("holdoutPercent" if percent else "fileId", what)
    return samples
