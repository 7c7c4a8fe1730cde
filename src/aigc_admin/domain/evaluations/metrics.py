"""How an answer is scored against its reference: each metric maps (output, reference) to a score in [0, 1].

- ``exact_match``: 1 when the normalised output equals the normalised reference. Normalised: Unicode NFKC,
  lower-cased, white space collapsed, leading/trailing white space and punctuation removed.
- ``contains``: 1 when the normalised reference occurs in the normalised output.
- ``bleu``: sacrebleu's sentence BLEU (smoothing ``exp``, its default), / 100. Text with CJK characters is
  tokenised with sacrebleu's ``zh`` tokenizer, other text with ``13a``.
- ``chrf``: sacrebleu's sentence chrF (character n-grams up to 6, beta 2), / 100.
- ``rouge_l``: ROUGE-L F-measure of rouge-score (longest common subsequence of tokens). Latin text: rouge-score's
  own tokenizer; text with CJK characters: words from jieba (white space dropped), so that a Chinese answer has
  tokens to compare at all (rouge-score's tokenizer drops every non-ASCII character).

``judge`` and ``pairwise`` are scored by a model (``judge.py``), not here.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from functools import cache
from typing import Any

STRING_METRICS = ("exact_match", "contains", "bleu", "chrf", "rouge_l")
JUDGE_METRICS = ("judge", "pairwise")
ALL_METRICS = STRING_METRICS + JUDGE_METRICS

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_SPACE = re.compile(r"\s+")
_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = _SPACE.sub(" ", text).strip()
    return _EDGE_PUNCTUATION.sub("", text)


def exact_match(output: str, reference: str) -> float:
    return float(normalise(output) == normalise(reference))


def contains(output: str, reference: str) -> float:
    wanted = normalise(reference)
    return float(bool(wanted) and wanted in normalise(output))


def bleu(output: str, reference: str) -> float:
    import sacrebleu

    tokenize = "zh" if has_cjk(output + reference) else "13a"
    return float(sacrebleu.sentence_bleu(output, [reference], tokenize=tokenize).score) / 100


def chrf(output: str, reference: str) -> float:
    import sacrebleu

    return float(sacrebleu.sentence_chrf(output, [reference]).score) / 100


class _JiebaTokens:
    """rouge-score's tokenizer interface, with jieba's words (for text with CJK characters)."""

    def tokenize(self, text: str) -> list[str]:
        import jieba

        return [w.lower() for w in jieba.lcut(text) if w.strip()]


@cache
def _rouge(cjk: bool) -> Any:
    from rouge_score import rouge_scorer

    logging.getLogger("absl").setLevel(logging.WARNING)  # "Using default tokenizer." at every scorer

    if cjk:
        import jieba

        jieba.setLogLevel(60)  # its "Building prefix dict" lines at every start are noise
        return rouge_scorer.RougeScorer(["rougeL"], tokenizer=_JiebaTokens())
    return rouge_scorer.RougeScorer(["rougeL"])


def rouge_l(output: str, reference: str) -> float:
    scorer = _rouge(has_cjk(output + reference))
    return float(scorer.score(reference, output)["rougeL"].fmeasure)


SCORERS: dict[str, Callable[[str, str], float]] = {
    "exact_match": exact_match, "contains": contains, "bleu": bleu, "chrf": chrf, "rouge_l": rouge_l}


def score(metric: str, output: str, reference: str) -> float:
    return SCORERS[metric](output, reference)
