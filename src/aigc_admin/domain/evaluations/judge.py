"""A model as the judge: the prompts it is given and how its answers are read.

- ``judge`` (single-answer grading, as MT-bench does it): the judge reads the question, the answer (and the
  reference answer when the sample has one) and ends with a rating from 1 to 10 written ``[[rating]]``. The
  sample's score is ``rating / 10``.
- ``pairwise``: the judge reads the question and two answers, A and B, and ends with ``[[A]]``, ``[[B]]`` or
  ``[[C]]`` (a tie). Each sample is judged twice, the evaluated model's answer first as A, then as B, so that
  the judge's preference for a position cancels out: the sample's score is 1 (both verdicts prefer the evaluated
  model), 0 (both prefer the other) or 0.5 (a tie, or the two verdicts disagree).

A judge answer that cannot be read (no rating, a rating outside 1–10, no verdict) is a per-sample error that keeps
the raw text: never a crash, never a silent zero.

The rubric (the judge's instructions) is editable per evaluation; it may use ``{question}``, ``{answer}``,
``{reference}`` (single) or ``{question}``, ``{answer_a}``, ``{answer_b}`` (pairwise), and must keep asking for the
``[[...]]`` format that is parsed here.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from aigc_admin.domain.errors import Invalid

JUDGE_SYSTEM = "You are a careful, impartial judge of the answers of AI assistants."

SINGLE_RUBRIC = """Judge the quality of the assistant's answer to the user's question below. Consider whether it is \
correct, helpful and relevant, and how complete and clear it is. {reference_note}Begin with a short explanation, \
as objective as you can make it. Then rate the answer on a scale of 1 to 10, written exactly like this: \
"Rating: [[5]]".

[Question]
{question}
{reference_block}
[The Start of the Assistant's Answer]
{answer}
[The End of the Assistant's Answer]"""

PAIRWISE_RUBRIC = """Compare the answers of two AI assistants to the user's question below and decide which one \
answers it better: which is more correct, helpful and relevant, complete and clear. The order in which the \
answers appear must not influence you, nor their length, nor the assistants' names. Begin with a short \
explanation. Then give your verdict, written exactly like this: "[[A]]" if assistant A's answer is better, \
"[[B]]" if assistant B's answer is better, "[[C]]" for a tie.

[Question]
{question}

[The Start of Assistant A's Answer]
{answer_a}
[The End of Assistant A's Answer]

[The Start of Assistant B's Answer]
{answer_b}
[The End of Assistant B's Answer]"""

SINGLE_FIELDS = frozenset({"question", "answer", "reference", "reference_note", "reference_block"})
PAIRWISE_FIELDS = frozenset({"question", "answer_a", "answer_b"})
_RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_RATING_LOOSE = re.compile(r"[Rr]ating\s*:?\s*\[?\s*(\d+(?:\.\d+)?)\s*\]?")
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")


class Unparseable(Exception):
    """The judge's answer has no readable rating or verdict."""


def check_rubric(rubric: str, pairwise: bool, field: str = "judge.rubric") -> None:
    """A custom rubric may only use the placeholders of its kind (a typo would otherwise fail every sample)."""
    allowed = PAIRWISE_FIELDS if pairwise else SINGLE_FIELDS
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(rubric) if name is not None}
    except ValueError as e:
        raise Invalid(field, f"the rubric is not a valid template: {e} (write {{{{ and }}}} for literal braces)") \
            from None
    unknown = sorted(n for n in names if n not in allowed)
    if unknown:
        raise Invalid(field, f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
                             f"the rubric may use {', '.join('{' + n + '}' for n in sorted(allowed))}")
    needed = {"question", "answer_a", "answer_b"} if pairwise else {"answer"}
    if not needed <= names:
        raise Invalid(field, f"the rubric must show {', '.join('{' + n + '}' for n in sorted(needed))}")


def question_text(messages: list[dict[str, Any]]) -> str:
    """The conversation the answer replies to, as the judge reads it (one turn: just the user's text)."""
    turns = [m for m in messages if m.get("role") != "system"]
    if len(turns) == 1:
        return str(turns[0].get("content") or "")
    return "\n".join(f"{m.get('role', 'user')}: {m.get('content') or ''}" for m in turns)


def single_prompt(rubric: str | None, messages: list[dict[str, Any]], answer: str,
                  reference: str) -> list[dict[str, str]]:
    note = ("A reference answer is given: use it to judge correctness. " if reference else "")
    block = f"\n[The Start of the Reference Answer]\n{reference}\n[The End of the Reference Answer]\n" \
        if reference else ""
    text = (rubric or SINGLE_RUBRIC).format(question=question_text(messages), answer=answer, reference=reference,
                                            reference_note=note, reference_block=block)
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": text}]


def pairwise_prompt(rubric: str | None, messages: list[dict[str, Any]], answer_a: str,
                    answer_b: str) -> list[dict[str, str]]:
    text = (rubric or PAIRWISE_RUBRIC).format(question=question_text(messages), answer_a=answer_a, answer_b=answer_b)
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": text}]


def parse_rating(text: str) -> float:
    """The rating in a single-answer judgement: the last ``[[n]]`` (else the last ``Rating: n``), 1 to 10."""
    found = _RATING.findall(text) or _RATING_LOOSE.findall(text)
    if not found:
        raise Unparseable("the judge gave no rating in the [[n]] format")
    rating = float(found[-1])
    if not 1 <= rating <= 10:
        raise Unparseable(f"the judge's rating {found[-1]} is outside 1 to 10")
    return rating


def parse_verdict(text: str) -> str:
    """``A``, ``B`` or ``C`` (a tie): the last ``[[X]]`` in a pairwise judgement."""
    found = _VERDICT.findall(text)
    if not found:
        raise Unparseable("the judge gave no verdict in the [[A]]/[[B]]/[[C]] format")
    return str(found[-1])


@dataclass(frozen=True)
class PairwiseOutcome:
    score: float  # 1 win, 0.5 tie or inconsistent, 0 loss (for the evaluated model)
    result: str  # win | loss | tie | inconsistent


def combine(first: str, second: str) -> PairwiseOutcome:
    """``first``: the verdict with the evaluated model's answer as A; ``second``: with it as B."""
    ours_first = {"A": 1.0, "B": 0.0, "C": 0.5}[first]
    ours_second = {"A": 0.0, "B": 1.0, "C": 0.5}[second]
    if ours_first != ours_second:
        return PairwiseOutcome(0.5, "inconsistent")
    return PairwiseOutcome(ours_first, {1.0: "win", 0.0: "loss", 0.5: "tie"}[ours_first])
