"""Evaluation scoring: metric values against hand-computed references (Latin and CJK), the judge's answers as
read, the bootstrap intervals, the held-out split, reading samples, and the gate's decision."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.evaluations import judge, metrics
from aigc_admin.domain.evaluations.entities import EvalStatus, Evaluation, RunConfig
from aigc_admin.domain.evaluations.gate import Gate, GateStatus, check_gate, decide
from aigc_admin.domain.evaluations.samples import read_samples
from aigc_admin.domain.evaluations.split import held_out
from aigc_admin.domain.evaluations.stats import Estimate, bootstrap, paired_difference


def test_exact_match_and_contains_compare_normalised_text() -> None:
    assert metrics.exact_match("  The answer:   42. ", "the ANSWER: 42") == 1.0  # case, spaces, end punctuation
    assert metrics.exact_match("４２", "42") == 1.0  # NFKC: full-width digits
    assert metrics.exact_match("42", "43") == 0.0
    assert metrics.contains("It is 42, I think", "42.") == 1.0
    assert metrics.contains("It is 4", "42") == 0.0
    assert metrics.contains("anything", "") == 0.0  # an empty reference is contained nowhere: no free points


def test_bleu_matches_a_hand_computed_value() -> None:
    # hypothesis "the cat sat on mat" against "the cat sat on the mat": n-gram precisions 5/5, 3/4, 2/3, 1/2
    # (no zero count: no smoothing); geometric mean (1/4)^(1/4) = 0.70711; brevity penalty exp(1 - 6/5)
    expected = (1 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25 * 2.718281828459045 ** (1 - 6 / 5)
    assert metrics.bleu("the cat sat on mat", "the cat sat on the mat") == pytest.approx(expected, abs=1e-6)
    assert metrics.bleu("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)


def test_bleu_tokenises_chinese_by_character() -> None:
    # 我喜欢猫 against 我喜欢狗, one token per character: precisions 3/4, 2/3, 1/2 and 0/1, which the exp
    # smoothing makes 1/(2·1); no brevity penalty. (With whitespace tokens the whole string is one wrong token: 0.)
    expected = (3 / 4 * 2 / 3 * 1 / 2 * 1 / 2) ** 0.25
    assert metrics.bleu("我喜欢猫", "我喜欢狗") == pytest.approx(expected, abs=1e-6)


def test_chrf_matches_a_hand_computed_value() -> None:
    # character n-grams of "abcd" and "abce": orders 1-4 exist, precision = recall = 3/4, 2/3, 1/2, 0;
    # chrF averages them over those orders: F = 23/48
    assert metrics.chrf("abcd", "abce") == pytest.approx(23 / 48, abs=1e-6)
    assert metrics.chrf("abc", "abc") == pytest.approx(1.0)
    assert metrics.chrf("xyz", "abc") == 0.0


def test_rouge_l_latin_and_chinese() -> None:
    # LCS of "the cat on the mat" and "the cat sat on the mat" is 5 tokens: P = 5/5, R = 5/6, F = 2PR/(P+R) = 10/11
    assert metrics.rouge_l("the cat on the mat", "the cat sat on the mat") == pytest.approx(10 / 11, abs=1e-6)
    # jieba: 我 / 喜欢 / 猫 against 我 / 喜欢 / 狗: LCS 2 of 3 each way, F = 2/3 (rouge-score's own tokenizer
    # drops every non-ASCII character and would score 0)
    assert metrics.rouge_l("我喜欢猫", "我喜欢狗") == pytest.approx(2 / 3, abs=1e-6)
    assert metrics.rouge_l("我喜欢猫", "我喜欢猫") == pytest.approx(1.0)


def test_string_metrics_are_cheap_enough_to_run_inline() -> None:
    # not a timing assertion: every metric answers for empty, long and mixed-script text without failing
    for m in metrics.STRING_METRICS:
        for out, ref in (("", ""), ("", "x"), ("x" * 5000, "x y z"), ("mixed 混合 text", "混合 mixed")):
            assert 0.0 <= metrics.score(m, out, ref) <= 1.0


@pytest.mark.parametrize(("text", "rating"), [
    ("Clear and correct. Rating: [[7]]", 7.0), ("[[8.5]]", 8.5), ("first [[3]] then corrected [[9]]", 9.0),
    ("Rating: 6", 6.0), ("Rating: [[ 10 ]]", 10.0)])
def test_ratings_are_read(text: str, rating: float) -> None:
    assert judge.parse_rating(text) == rating


@pytest.mark.parametrize("text", ["I would not rate this.", "[[11]]", "[[0]]", "Rating: [[-3]]", ""])
def test_unreadable_ratings_are_errors_not_zeros(text: str) -> None:
    with pytest.raises(judge.Unparseable):
        judge.parse_rating(text)


def test_pairwise_verdicts_both_orders() -> None:
    assert judge.parse_verdict("B is better. [[B]]") == "B"
    with pytest.raises(judge.Unparseable):
        judge.parse_verdict("both are fine")
    assert judge.combine("A", "B") == judge.PairwiseOutcome(1.0, "win")  # ours first as A, then as B
    assert judge.combine("B", "A") == judge.PairwiseOutcome(0.0, "loss")
    assert judge.combine("C", "C") == judge.PairwiseOutcome(0.5, "tie")
    assert judge.combine("A", "A") == judge.PairwiseOutcome(0.5, "inconsistent")  # a position bias, not a win


def test_rubrics_are_checked_and_rendered() -> None:
    judge.check_rubric("Q: {question} A: {answer} ref {reference} [[rating]]", pairwise=False)
    with pytest.raises(DomainError, match="unknown placeholder"):
        judge.check_rubric("{question} {answr}", pairwise=False)
    with pytest.raises(DomainError, match="must show"):
        judge.check_rubric("{question} {answer_a}", pairwise=True)
    with pytest.raises(DomainError, match="not a valid template"):
        judge.check_rubric("{question {answer}", pairwise=False)
    prompt = judge.single_prompt(None, [{"role": "user", "content": "2+2?"}], "4", "4")
    assert "2+2?" in prompt[1]["content"] and "Reference Answer]\n4" in prompt[1]["content"]
    pair = judge.pairwise_prompt("{question}|{answer_a}|{answer_b}", [{"role": "user", "content": "q"}], "a", "b")
    assert pair[1]["content"] == "q|a|b"


def test_bootstrap_is_reproducible_and_brackets_the_mean() -> None:
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0] * 5
    a, b = bootstrap(values), bootstrap(values)
    assert a == b and a.low <= a.mean <= a.high and a.mean == pytest.approx(0.7) and a.n == 50
    assert 0.5 < a.low < 0.7 < a.high < 0.85
    assert bootstrap([0.5] * 20) == Estimate(0.5, 0.5, 0.5, 20)
    assert bootstrap([]) == Estimate(0.0, 0.0, 0.0, 0)
    better = paired_difference([0.2] * 30, [0.6] * 30)
    assert better.mean == pytest.approx(0.4) and better.excludes_zero()
    noise = paired_difference([0.0, 1.0] * 10, [1.0, 0.0] * 10)
    assert noise.mean == 0.0 and not noise.excludes_zero()


def test_the_split_is_deterministic_and_near_the_percentage() -> None:
    chosen = [i for i in range(10_000) if held_out(i, percent=10, seed=7)]
    assert chosen == [i for i in range(10_000) if held_out(i, percent=10, seed=7)]
    assert 900 < len(chosen) < 1100
    assert chosen != [i for i in range(10_000) if held_out(i, percent=10, seed=8)]
    assert not any(held_out(i, percent=0, seed=7) for i in range(100))


async def _lines(*rows: str) -> AsyncIterator[bytes]:
    for row in rows:
        yield row.encode()


async def test_samples_read_the_last_answer_as_reference_and_report_bad_lines_by_number() -> None:
    good = json.dumps({"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                                    {"role": "assistant", "content": "hello"}]})
    samples = await read_samples(_lines(good, "", good))
    assert [s.line for s in samples] == [1, 3]
    assert samples[0].reference == "hello" and samples[0].messages[-1] == {"role": "user", "content": "hi"}
    no_answer = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    with pytest.raises(DomainError) as e:
        await read_samples(_lines(good, no_answer, "{oops", good))
    assert "line 2: no assistant message" in e.value.message and "line 3: not JSON" in e.value.message
    assert e.value.field == "fileId"
    with pytest.raises(DomainError) as e:
        await read_samples(_lines(good), percent=0.01, seed=1)  # one line, nothing held out
    assert e.value.field == "holdoutPercent"


def _evaluation(status: EvalStatus = EvalStatus.SUCCEEDED, mean: float = 0.5) -> Evaluation:
    return Evaluation(id=1, uuid="u", tenant_id=1, status=status, model_id=1, model_name="m", channel_id=1,
                      metrics=("rouge_l",), config=RunConfig(), concurrency=1, source_file="f", dataset_type="custom",
                      holdout_percent=0, holdout_seed=0, total=10, done=10, error_message="boom",
                      aggregates={"metrics": {"rouge_l": {"mean": mean, "low": 0, "high": 1, "n": 10}}})


def test_the_gate_decides_on_the_mean_and_on_the_interval_of_the_improvement() -> None:
    g = Gate(metric="rouge_l", threshold=0.4)
    assert decide(g, _evaluation(mean=0.45), None, None).status == GateStatus.PASSED
    assert decide(g, _evaluation(mean=0.35), None, None).status == GateStatus.FAILED
    assert decide(g, _evaluation(EvalStatus.FAILED), None, None).status == GateStatus.ERROR
    g = Gate(metric="rouge_l", min_improvement=0.05)
    base = _evaluation(mean=0.3)
    assert decide(g, _evaluation(), base, Estimate(0.1, 0.06, 0.14, 40)).status == GateStatus.PASSED
    # a mean that clears the bar with an interval that does not: not a win
    failed = decide(g, _evaluation(), base, Estimate(0.1, -0.02, 0.2, 40))
    assert failed.status == GateStatus.FAILED and "interval" in failed.reason
    assert decide(g, _evaluation(), _evaluation(EvalStatus.FAILED), None).status == GateStatus.ERROR


def test_gate_rules() -> None:
    with pytest.raises(DomainError, match="threshold"):
        check_gate(Gate(metric="bleu"), channel_id=1, holdout_percent=10)
    with pytest.raises(DomainError) as e:
        check_gate(Gate(metric="bleu", threshold=0.2), channel_id=None, holdout_percent=10)
    assert e.value.field == "channelId"
    with pytest.raises(DomainError) as e:
        check_gate(Gate(metric="bleu", threshold=0.2), channel_id=1, holdout_percent=0)
    assert e.value.field == "gate.fileId"
    with pytest.raises(DomainError) as e:
        check_gate(Gate(metric="judge", threshold=0.2), channel_id=1, holdout_percent=10)
    assert e.value.field == "gate.judgeModelId"
    with pytest.raises(DomainError) as e:
        check_gate(Gate(metric="pairwise", min_improvement=0.1, judge_model_id=3), channel_id=1, holdout_percent=10)
    assert e.value.field == "gate.minImprovement"
    check_gate(Gate(metric="bleu", threshold=0.2, min_improvement=0.0), channel_id=1, holdout_percent=10)
