"""Evaluations against external models served by a small OpenAI-compatible server this test starts and scripts
(answers, transient failures, timeouts, judge ratings and verdicts, malformed ratings): scoring, retries,
per-sample results and filters, the mismatch export, usage on the channel, the judge and pairwise metrics,
cancel and retry, compare, the fine-tuning gate's decision, and bad input (clear typed errors, nothing created)."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from aigc_admin.adapters.db import models as m
from tests.support.api import ApiHarness, unique
from tests.support.asgi_stub import chat_answer, read_json, send_json, serving

CALLS: Counter[str] = Counter()
DEGRADED: set[str] = set()  # questions the scripted models now answer wrongly (a regression)
EVAL_FIELDS = ("id status total done failed errorMessage results { metric mean low high n } "
               "runningMeans { metric value } ")
CREATE = ("mutation($i: CreateEvaluationInput!) { createEvaluation(input: $i) { evaluation { id status total } "
          "errors { field code message } } }")
SAMPLES = ("query($id: ID!, $f: Boolean, $m: EvaluationMetric, $b: Float) { evaluationSamples(id: $id, failedOnly: $f, "
           "metric: $m, below: $b) { totalCount items { idx line reference output status error attempts latencyMs "
           "promptTokens completionTokens baselineOutput judge scores { metric value } } } }")


def _answer_for(model: str, text: str) -> tuple[int, str]:
    """(status, content) of the scripted models."""
    if model.startswith("baseline"):
        return 200, "a bad answer"
    if model.startswith("judge"):
        if "[The Start of Assistant A's Answer]" in text:
            a = re.search(r"Assistant A's Answer\]\n(.*?)\n\[The End", text, re.S)
            b = re.search(r"Assistant B's Answer\]\n(.*?)\n\[The End", text, re.S)
            a_text, b_text = (a.group(1) if a else ""), (b.group(1) if b else "")
            if "garbled" in a_text + b_text:
                return 200, "Both have merit; I will not choose."
            if ("good" in a_text) == ("good" in b_text):
                return 200, "Equal. [[C]]"
            return 200, "Reasons. [[A]]" if "good" in a_text else "Reasons. [[B]]"
        answer = re.search(r"Assistant's Answer\]\n(.*?)\n\[The End", text, re.S)
        said = answer.group(1) if answer else ""
        if "garbled" in said:
            return 200, "This answer is hard to judge; I cannot give a number."
        if "toohigh" in said:
            return 200, "Superb! Rating: [[12]]"
        return 200, "Correct and clear. Rating: [[9]]" if "good" in said else "Wrong. Rating: [[2]]"
    verb, _, rest = text.partition(":")
    CALLS[text] += 1
    if text in DEGRADED:
        return 200, "something else"
    if verb == "flaky" and CALLS[text] == 1:
        return 503, ""
    if verb == "down":
        return 500, ""
    return 200, rest


async def scripted(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    request = await read_json(receive)
    text = str(request["messages"][-1]["content"])
    if text.startswith("slow:"):
        await asyncio.sleep(2.5)
    status, content = _answer_for(str(request["model"]), text)
    if status != 200:
        await send_json(send, status, {"error": {"message": "scripted failure"}})
        return
    await send_json(send, 200, chat_answer(request["model"], content, 5, 2))


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serving(scripted) as url:
        yield url


async def ok(api: ApiHarness, query: str, variables: dict[str, Any] | None = None,
             tenant: str | None = None) -> dict[str, Any]:
    return await api.ok(query, variables, token=api.admin_token, tenant=tenant)


async def gql(api: ApiHarness, query: str, variables: dict[str, Any] | None = None,
              tenant: str | None = None) -> dict[str, Any]:
    return await api.gql(query, variables, token=api.admin_token, tenant=tenant)


def chat_line(question: str, reference: str | None) -> str:
    messages = [{"role": "user", "content": question}]
    if reference is not None:
        messages.append({"role": "assistant", "content": reference})
    return json.dumps({"messages": messages}, ensure_ascii=False)


async def upload(api: ApiHarness, tenant: str, purpose: str, lines: list[str], token: str | None = None) -> str:
    r = await api.client.post("/files", params={"purpose": purpose, "filename": "eval.jsonl"},
                              content="\n".join(lines).encode(),
                              headers={"Authorization": f"Bearer {token or api.admin_token}", "X-Tenant-Id": tenant})
    assert r.status_code in (200, 201), r.text
    return str(r.json()["file"]["id"])


async def model(api: ApiHarness, tenant: str, name: str, upstream: str) -> str:
    body = await ok(api, "mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                        {"i": {"name": name, "provider": "EXTERNAL", "baseUrl": upstream, "tenantIds": [tenant]}})
    return str(body["createModel"]["model"]["id"])


async def channel(api: ApiHarness, tenant: str, model_ids: list[str]) -> str:
    body = await ok(api, "mutation($i: ChannelInput!) { createChannel(input: $i) { channel { id } } }",
                        {"i": {"modelIds": model_ids}}, tenant=tenant)
    return str(body["createChannel"]["channel"]["id"])


@pytest.fixture(scope="module")
async def world(api: ApiHarness, upstream: str) -> dict[str, str]:
    tenant = await api.create_tenant(unique("ev"))
    w = {"tenant": tenant}
    for role in ("answerer", "judge", "baseline", "hidden"):
        w[role] = await model(api, tenant, unique(role), upstream)
    w["channel"] = await channel(api, tenant, [w["answerer"], w["judge"], w["baseline"]])
    w["narrow"] = await channel(api, tenant, [w["answerer"]])  # may not call the judge
    return w


async def create(api: ApiHarness, w: dict[str, str], **fields: Any) -> dict[str, Any]:
    data = {"modelId": w["answerer"], "channelId": w["channel"], "metrics": ["EXACT_MATCH"], **fields}
    body = await ok(api, CREATE, {"i": data}, tenant=w["tenant"])
    return dict(body["createEvaluation"])


async def run(api: ApiHarness, w: dict[str, str], evaluation_id: str) -> dict[str, Any]:
    await api.run_job(f"evaluation:{evaluation_id}")
    body = await ok(api, f'{{ evaluation(id: "{evaluation_id}") {{ {EVAL_FIELDS} }} }}', tenant=w["tenant"])
    return dict(body["evaluation"])


async def samples(api: ApiHarness, w: dict[str, str], evaluation_id: str, **args: Any) -> list[dict[str, Any]]:
    body = await ok(api, SAMPLES, {"id": evaluation_id, **args}, tenant=w["tenant"])
    return list(body["evaluationSamples"]["items"])


async def test_every_sample_is_answered_through_the_channel_scored_and_kept(api: ApiHarness, world: dict[str, str],
                                                                           upstream: str) -> None:
    w = world
    berlin = f"Berlin {unique('f')}"
    file_id = await upload(api, w["tenant"], "fine-tune-eval", [
        chat_line("echo:Paris", "Paris"),
        chat_line("echo:the cat sat on mat", "the cat sat on the mat"),
        chat_line(f"flaky:{berlin}", berlin),  # a 503 first: retried
        chat_line(f"down:{unique('d')}", "x"),  # always 500: fails after the retries
        chat_line("echo:我喜欢猫", "我喜欢狗"),
    ])
    created = await create(api, w, fileId=file_id, metrics=["EXACT_MATCH", "CONTAINS", "BLEU", "ROUGE_L"],
                           concurrency=3, retries=2)
    assert created["errors"] == [] and created["evaluation"]["status"] == "PENDING"
    assert created["evaluation"]["total"] == 5
    ev = await run(api, w, created["evaluation"]["id"])
    assert ev["status"] == "SUCCEEDED" and (ev["done"], ev["failed"]) == (4, 1)
    assert "1 of 5 samples failed" in ev["errorMessage"]
    results = {r["metric"]: r for r in ev["results"]}
    assert results["EXACT_MATCH"]["mean"] == pytest.approx(0.5) and results["EXACT_MATCH"]["n"] == 4
    assert results["EXACT_MATCH"]["low"] <= 0.5 <= results["EXACT_MATCH"]["high"]

    rows = await samples(api, w, created["evaluation"]["id"])
    by_idx = {r["idx"]: r for r in rows}
    scores = {i: {s["metric"]: s["value"] for s in r["scores"]} for i, r in by_idx.items()}
    assert scores[0] == {"EXACT_MATCH": 1.0, "CONTAINS": 1.0, "BLEU": pytest.approx(1.0), "ROUGE_L": 1.0}
    assert scores[1]["BLEU"] == pytest.approx(0.578930, abs=1e-5) and scores[1]["EXACT_MATCH"] == 0.0
    assert scores[4]["BLEU"] == pytest.approx(0.594604, abs=1e-5) and scores[4]["ROUGE_L"] == pytest.approx(2 / 3)
    assert by_idx[2]["attempts"] == 2 and by_idx[2]["status"] == "done"
    assert by_idx[3]["status"] == "failed" and by_idx[3]["attempts"] == 3 and by_idx[3]["error"].startswith("the model")
    assert by_idx[3]["scores"] == [] and by_idx[3]["output"] is None
    assert by_idx[0]["latencyMs"] is not None and (by_idx[0]["promptTokens"], by_idx[0]["completionTokens"]) == (5, 2)
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5]

    assert [r["idx"] for r in await samples(api, w, created["evaluation"]["id"], f=True)] == [3]
    below = await samples(api, w, created["evaluation"]["id"], m="EXACT_MATCH", b=1.0)
    assert [r["idx"] for r in below] == [1, 4]

    # the mismatches, and only them, as chat lines with the answer
    r = await api.client.get(f"/evaluations/{created['evaluation']['id']}/mismatches.jsonl",
                             headers={"Authorization": f"Bearer {api.admin_token}", "X-Tenant-Id": w["tenant"]})
    assert r.status_code == 200, r.text
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert [x["line"] for x in lines] == [2, 5]
    assert lines[0]["messages"][-1] == {"role": "assistant", "content": "the cat sat on the mat"}
    assert lines[0]["output"] == "the cat sat on mat" and lines[0]["scores"]["exact_match"] == 0.0
    other = await api.client.get(f"/evaluations/{created['evaluation']['id']}/mismatches.jsonl?metric=nope",
                                 headers={"Authorization": f"Bearer {api.admin_token}", "X-Tenant-Id": w["tenant"]})
    assert other.status_code == 400 and "metric" in other.json()["error"]["message"]

    # charged to the channel like /v1: requests and tokens per model
    await api.services().gateway.usage.flush()
    usage = await ok(api, f'{{ channelUsage(channelId: "{w["channel"]}") {{ model requests promptTokens }} }}',
                         tenant=w["tenant"])
    assert sum(u["requests"] for u in usage["channelUsage"]) >= 5

    # retry runs the failed sample again, and keeps the scored ones
    retried = await ok(api, f'mutation {{ retryEvaluation(id: "{created["evaluation"]["id"]}") '
                           "{ evaluation { status failed done } errors { code } } }", tenant=w["tenant"])
    assert retried["retryEvaluation"]["evaluation"] == {"status": "PENDING", "failed": 0, "done": 4}
    again = await run(api, w, created["evaluation"]["id"])
    assert (again["done"], again["failed"]) == (4, 1)  # still down: the same one fails again


async def test_the_judge_rates_and_unreadable_ratings_are_per_sample_errors(api: ApiHarness,
                                                                           world: dict[str, str]) -> None:
    w = world
    file_id = await upload(api, w["tenant"], "fine-tune-eval", [
        chat_line("echo:a good answer", "ref"), chat_line("echo:a bad answer", "ref"),
        chat_line("echo:garbled words", "ref"), chat_line("echo:toohigh praise", "ref")])
    created = await create(api, w, fileId=file_id, metrics=["JUDGE", "CONTAINS"], judge={"modelId": w["judge"]})
    assert created["errors"] == []
    ev = await run(api, w, created["evaluation"]["id"])
    assert ev["status"] == "SUCCEEDED" and (ev["done"], ev["failed"]) == (2, 2)
    rows = {r["idx"]: r for r in await samples(api, w, created["evaluation"]["id"])}
    assert {s["metric"]: s["value"] for s in rows[0]["scores"]}["JUDGE"] == pytest.approx(0.9)
    assert {s["metric"]: s["value"] for s in rows[1]["scores"]}["JUDGE"] == pytest.approx(0.2)
    assert rows[0]["judge"]["judge"]["rating"] == 9 and "Rating: [[9]]" in rows[0]["judge"]["judge"]["raw"]
    # never a silent zero: an error with the judge's raw text kept
    assert rows[2]["status"] == "failed" and "no rating" in rows[2]["error"]
    assert rows[2]["judge"]["judge"]["raw"].startswith("This answer is hard to judge")
    assert rows[3]["status"] == "failed" and "outside 1 to 10" in rows[3]["error"] and rows[3]["output"]


async def test_pairwise_judges_both_orders_against_the_baseline(api: ApiHarness, world: dict[str, str]) -> None:
    w = world
    file_id = await upload(api, w["tenant"], "fine-tune-eval", [
        chat_line("echo:a good answer", "ref"),  # ours good, the baseline's bad: a win both ways
        chat_line("echo:a bad answer", "ref"),  # both bad: a tie
        chat_line("echo:garbled", "ref")])  # no verdict: an error with both raw texts
    created = await create(api, w, fileId=file_id, metrics=["PAIRWISE"], judge={"modelId": w["judge"]},
                           baselineModelId=w["baseline"])
    assert created["errors"] == []
    ev = await run(api, w, created["evaluation"]["id"])
    assert (ev["done"], ev["failed"]) == (2, 1)
    rows = {r["idx"]: r for r in await samples(api, w, created["evaluation"]["id"])}
    assert rows[0]["scores"] == [{"metric": "PAIRWISE", "value": 1.0}]
    assert rows[0]["judge"]["pairwise"]["verdicts"] == ["A", "B"] and rows[0]["judge"]["pairwise"]["result"] == "win"
    assert rows[0]["baselineOutput"] == "a bad answer"
    assert rows[1]["scores"] == [{"metric": "PAIRWISE", "value": 0.5}]
    assert rows[2]["status"] == "failed" and len(rows[2]["judge"]["pairwise"]["raw"]) == 2


async def test_a_timeout_is_retried_then_the_sample_fails(api: ApiHarness, world: dict[str, str]) -> None:
    w = world
    file_id = await upload(api, w["tenant"], "fine-tune-eval", [chat_line("slow:late", "late")])
    created = await create(api, w, fileId=file_id, timeoutSeconds=1, retries=1)
    ev = await run(api, w, created["evaluation"]["id"])
    assert ev["status"] == "FAILED" and "no answer within 1 s (2 attempts)" in ev["errorMessage"]


async def test_cancel_mid_run_keeps_what_was_scored(api: ApiHarness, world: dict[str, str]) -> None:
    w = world
    file_id = await upload(api, w["tenant"], "fine-tune-eval",
                           [chat_line("echo:quick", "quick")] * 2 + [chat_line(f"slow:{i}", str(i)) for i in range(8)])
    created = await create(api, w, fileId=file_id, concurrency=1, timeoutSeconds=10)
    evaluation_id = created["evaluation"]["id"]
    running = asyncio.create_task(api.run_job(f"evaluation:{evaluation_id}"))
    for _ in range(200):
        state = await ok(api, f'{{ evaluation(id: "{evaluation_id}") {{ done status }} }}', tenant=w["tenant"])
        if state["evaluation"]["done"] >= 2:
            break
        await asyncio.sleep(0.05)
    cancelled = await ok(api, f'mutation {{ cancelEvaluation(id: "{evaluation_id}") {{ evaluation {{ status }} '
                             "errors { code } } }", tenant=w["tenant"])
    assert cancelled["cancelEvaluation"]["evaluation"]["status"] == "CANCELLED"
    await asyncio.wait_for(running, 30)
    final = await ok(api, f'{{ evaluation(id: "{evaluation_id}") {{ status done total }} }}', tenant=w["tenant"])
    assert final["evaluation"]["status"] == "CANCELLED" and 2 <= final["evaluation"]["done"] < 10
    again = await ok(api, f'mutation {{ cancelEvaluation(id: "{evaluation_id}") {{ errors {{ code }} }} }}',
                         tenant=w["tenant"])
    assert again["cancelEvaluation"]["errors"] == [{"code": "NOT_CANCELLABLE"}]


async def test_compare_scores_of_the_same_samples(api: ApiHarness, world: dict[str, str]) -> None:
    w = world
    lines = [chat_line(f"echo:answer {i}", f"answer {i}") for i in range(12)]
    file_id = await upload(api, w["tenant"], "fine-tune-eval", lines)
    ours = await create(api, w, fileId=file_id, metrics=["EXACT_MATCH", "ROUGE_L"])
    theirs = await create(api, w, fileId=file_id, metrics=["EXACT_MATCH"], modelId=w["baseline"])
    for c in (ours, theirs):
        await run(api, w, c["evaluation"]["id"])
    ids = [ours["evaluation"]["id"], theirs["evaluation"]["id"]]
    body = await ok(api, "query($ids: [ID!]!) { compareEvaluations(ids: $ids, pagination: {limit: 5}) { "
                        "metrics { metric estimates { mean n } deltas { evaluationId mean low high significant } } "
                        "disagreementsTotal disagreements { idx reference answers { evaluationId output scores "
                        "{ metric value } } } } }", {"ids": ids}, tenant=w["tenant"])
    c = body["compareEvaluations"]
    assert [row["metric"] for row in c["metrics"]] == ["EXACT_MATCH"]  # the metrics they share
    row = c["metrics"][0]
    assert [e["mean"] for e in row["estimates"]] == [1.0, 0.0]
    assert row["deltas"][0]["evaluationId"] == ids[1] and row["deltas"][0]["mean"] == -1.0
    assert row["deltas"][0]["significant"] is True
    assert c["disagreementsTotal"] == 12 and len(c["disagreements"]) == 5
    assert c["disagreements"][0]["answers"][1]["output"] == "a bad answer"

    other_file = await upload(api, w["tenant"], "fine-tune-eval", lines[:3])
    elsewhere = await create(api, w, fileId=other_file)
    refused = await gql(api, "query($ids: [ID!]!) { compareEvaluations(ids: $ids) { disagreementsTotal } }",
                            {"ids": [ids[0], elsewhere["evaluation"]["id"]]}, tenant=w["tenant"])
    assert "did not score the same samples" in refused["errors"][0]["message"]


async def test_bad_input_gets_typed_errors_and_creates_nothing(api: ApiHarness, world: dict[str, str]) -> None:
    w = world
    tenant_pk = int(w["tenant"])
    good = await upload(api, w["tenant"], "fine-tune-eval", [chat_line("echo:a", "a")])
    train = await upload(api, w["tenant"], "fine-tune", [chat_line(f"echo:{i}", str(i)) for i in range(10)])
    # a chat file's upload already refuses a line without an answer (unit-tested here: the line-numbered errors
    # of reading one); a file stored unchecked (purpose assistants) is refused for what it is
    no_reference = await upload(api, w["tenant"], "assistants", [chat_line("echo:a", None)])
    elsewhere = await api.create_tenant(unique("other"))
    foreign = await upload(api, elsewhere, "fine-tune-eval", [chat_line("echo:a", "a")])
    before = await m.LLMEvalResult.filter(tenant_id=tenant_pk).count()
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"fileId": good, "modelId": "987654321"}, "modelId", "NOT_FOUND"),
        ({"fileId": foreign}, "fileId", "NOT_FOUND"),
        ({"fileId": no_reference}, "fileId", "INVALID"),
        ({"fileId": train}, "holdoutPercent", "INVALID"),  # a fine-tune file without a held-out part
        ({"fileId": train, "holdoutPercent": 100}, "holdoutPercent", "INVALID"),
        ({"fileId": train, "holdoutPercent": -5}, "holdoutPercent", "INVALID"),
        ({"fileId": good, "holdoutPercent": 10}, "holdoutPercent", "INVALID"),
        ({"fileId": good, "channelId": w["narrow"], "metrics": ["JUDGE"], "judge": {"modelId": w["judge"]}},
         "judge.modelId", "NOT_ALLOWED"),
        ({"fileId": good, "modelId": w["hidden"]}, "modelId", "NOT_ALLOWED"),
        ({"fileId": good, "metrics": ["JUDGE"]}, "judge.modelId", "INVALID"),
        ({"fileId": good, "metrics": ["PAIRWISE"], "judge": {"modelId": w["judge"]}}, "baselineModelId", "INVALID"),
        ({"fileId": good, "metrics": ["JUDGE"], "judge": {"modelId": w["judge"], "rubric": "{question} {answr}"}},
         "judge.rubric", "INVALID"),
        ({"fileId": good, "metrics": []}, "metrics", "INVALID"),
        ({"fileId": good, "metrics": ["BLEU", "BLEU"]}, "metrics", "INVALID"),
        ({"fileId": good, "concurrency": 0}, "concurrency", "INVALID"),
        ({"fileId": good, "deployForRun": True}, "deployForRun", "INVALID"),  # an external model
        ({"fileId": good, "channelId": "424242"}, "channelId", "NOT_FOUND"),
    ]
    for fields, field, code in cases:
        body = await create(api, w, **fields)
        assert body["evaluation"] is None, fields
        assert [(e["field"], e["code"]) for e in body["errors"]] == [(field, code)], (fields, body["errors"])
    no_ref = await create(api, w, fileId=no_reference)
    assert "assistants file cannot be evaluated" in no_ref["errors"][0]["message"]
    assert await m.LLMEvalResult.filter(tenant_id=tenant_pk).count() == before

    # another tenant's evaluation looks missing everywhere
    mine = await create(api, w, fileId=good)
    other = {"tenant": elsewhere}
    seen = await ok(api, f'{{ evaluation(id: "{mine["evaluation"]["id"]}") {{ id }} }}', tenant=other["tenant"])
    assert seen["evaluation"] is None
    refused = await ok(api, f'mutation {{ cancelEvaluation(id: "{mine["evaluation"]["id"]}") '
                           "{ errors { code } } }", tenant=other["tenant"])
    assert refused["cancelEvaluation"]["errors"] == [{"code": "NOT_FOUND"}]
    r = await api.client.get(f"/evaluations/{mine['evaluation']['id']}/mismatches.jsonl",
                             headers={"Authorization": f"Bearer {api.admin_token}", "X-Tenant-Id": elsewhere})
    assert r.status_code == 404


async def test_the_held_out_part_of_a_fine_tune_file_is_evaluated(api: ApiHarness, world: dict[str, str]) -> None:
    from aigc_admin.domain.evaluations.split import held_out

    w = world
    train = await upload(api, w["tenant"], "fine-tune", [chat_line(f"echo:{i}", str(i)) for i in range(40)])
    created = await create(api, w, fileId=train, holdoutPercent=25, holdoutSeed=3)
    expected = [i for i in range(40) if held_out(i, percent=25, seed=3)]
    assert created["evaluation"]["total"] == len(expected)
    await run(api, w, created["evaluation"]["id"])
    rows = await samples(api, w, created["evaluation"]["id"])
    assert [r["line"] - 1 for r in rows] == expected and all(r["reference"] == r["output"] for r in rows)


async def test_the_gate_grants_only_when_the_evaluation_passes(api: ApiHarness, world: dict[str, str],
                                                              upstream: str) -> None:
    """Training done (the job recorded as succeeded, the fine-tuned model registered): the gate's evaluations run
    on the held-out split against the scripted models, and only a passing gate grants the model to the channel."""
    from aigc_admin.domain.evaluations.gate import Gate

    w = world
    platform = api.services()
    tenant = int(w["tenant"])
    lines = [chat_line(f"echo:fact {i}", f"fact {i}") for i in range(30)]
    file_id = await upload(api, w["tenant"], "fine-tune", lines)
    base_name = unique("baseline-base")  # answers like the baseline: badly
    await model(api, w["tenant"], base_name, upstream)

    async def job_with(gate: Gate, tuned_prefix: str) -> int:
        tuned = await model(api, w["tenant"], unique(tuned_prefix), upstream)
        row = await m.FineTuningTrainJob.create(
            job_id=unique("ftjob"), tenant_id=tenant, base_model=base_name, file_url=file_id,
            train_status="SUCCEEDED", channel_id=int(w["channel"]), holdout_percent=20, holdout_seed=1,
            gate=gate.to_json(), gate_status="PENDING")
        job = await platform.finetunes.repo.get(row.id)
        await platform.gates.start(job, int(tuned))
        await api.run_job(f"gate:{row.id}")
        return row.id

    gate = Gate(metric="exact_match", threshold=0.5, min_improvement=0.5)
    passing = await job_with(gate, "answerer-tuned")  # answers right: 1.0 against the base's 0.0
    failing = await job_with(gate, "baseline-tuned")  # no better than its base
    query = ("query($id: ID!) { fineTuningJob(id: $id) { gate { status reason threshold evaluations "
             "{ id gateRole status results { metric mean } } } } }")
    granted = set(await m.ChatChannel.filter(id=int(w["channel"])).values_list("models__id", flat=True))
    for job_id, status, mean in ((passing, "PASSED", 1.0), (failing, "FAILED", 0.0)):
        shown = (await ok(api, query, {"id": str(job_id)}, tenant=w["tenant"]))["fineTuningJob"]["gate"]
        assert shown["status"] == status, shown
        roles = {e["gateRole"]: e for e in shown["evaluations"]}
        assert set(roles) == {"candidate", "base"} and all(e["status"] == "SUCCEEDED" for e in roles.values())
        assert roles["candidate"]["results"][0]["mean"] == mean and roles["base"]["results"][0]["mean"] == 0.0
        candidate = await m.LLMEvalResult.get(id=int(roles["candidate"]["id"]))
        assert (candidate.model_id in granted) == (status == "PASSED")  # type: ignore[attr-defined]
    assert "interval" in shown["reason"] and "threshold 0.5" in shown["reason"]


async def test_a_repeating_evaluation_runs_again_on_the_same_samples_and_shows_a_regression(
        api: ApiHarness, world: dict[str, str]) -> None:
    from datetime import UTC, datetime, timedelta

    from aigc_admin.workers.runner import JobContext
    from aigc_admin.workers.tasks.evaluations import schedule

    w = world
    questions = [f"echo:{unique('s')}" for _ in range(12)]
    file_id = await upload(api, w["tenant"], "fine-tune-eval", [chat_line(q, q[5:]) for q in questions])
    created = await create(api, w, fileId=file_id, repeatHours=6)
    root = created["evaluation"]["id"]
    assert (await run(api, w, root))["status"] == "SUCCEEDED"
    platform = api.services()
    assert (await schedule(JobContext(platform)))["scheduled"] == []  # not due yet
    await m.LLMEvalResult.filter(id=int(root)).update(completed_at=datetime.now(UTC) - timedelta(hours=7))
    await m.File.filter(file_id=file_id).delete()  # the runs repeat the stored samples, not the file
    DEGRADED.update(questions[:8])  # "after a redeploy", most answers are wrong now
    due = await schedule(JobContext(platform))
    assert len(due["scheduled"]) == 1
    second = str(due["scheduled"][0])
    assert (await schedule(JobContext(platform)))["scheduled"] == []  # one run at a time
    await api.run_job(f"evaluation:{second}")
    body = await ok(api, f'{{ evaluation(id: "{second}") {{ scheduleId previousId repeatHours total done '
                         "vsPrevious { previousId regressed differences { metric mean high } } } }",
                    tenant=w["tenant"])
    shown = body["evaluation"]
    assert (shown["scheduleId"], shown["previousId"], shown["repeatHours"]) == (root, root, 0)
    assert shown["total"] == 12 and shown["vsPrevious"]["regressed"] == ["EXACT_MATCH"]
    assert shown["vsPrevious"]["differences"][0]["mean"] < 0


async def test_a_run_whose_job_was_lost_is_resumed_with_what_is_left(api: ApiHarness, world: dict[str, str]) -> None:
    from aigc_admin.workers.runner import JobContext
    from aigc_admin.workers.tasks.evaluations import schedule

    w = world
    platform = api.services()
    file_id = await upload(api, w["tenant"], "fine-tune-eval", [chat_line(f"echo:r{i}", f"r{i}") for i in range(6)])
    created = await create(api, w, fileId=file_id)
    pk = int(created["evaluation"]["id"])
    assert pk not in (await schedule(JobContext(platform)))["resumed"]  # its job is queued: left alone
    # a worker killed mid-run: two samples scored, the evaluation RUNNING, its job gone from the queue
    job = platform.jobs.fetch(f"evaluation:{pk}")
    platform.jobs.queue().remove(job)
    job.delete()
    first = await m.LLMEvalSample.filter(evaluation_id=pk, idx__in=[0, 1])
    for row in first:
        row.status, row.output, row.score_exact_match = "done", "kept", 0.25  # not what a new run would score
        await row.save()
    await m.LLMEvalResult.filter(id=pk).update(status="RUNNING", done_count=2)
    assert pk in (await schedule(JobContext(platform)))["resumed"]
    await api.run_job(f"evaluation:{pk}")
    ev = await ok(api, f'{{ evaluation(id: "{pk}") {{ status done results {{ metric mean n }} }} }}',
                  tenant=w["tenant"])
    assert ev["evaluation"]["status"] == "SUCCEEDED" and ev["evaluation"]["done"] == 6
    assert ev["evaluation"]["results"][0]["mean"] == pytest.approx((0.25 * 2 + 4) / 6)  # the two kept as they were


async def test_a_deleted_channel_is_refused_from_the_next_call(api: ApiHarness, world: dict[str, str]) -> None:
    """The model-call port remembers a channel's key between calls (an evaluation makes hundreds a second); a
    channel deleted meanwhile is still refused at once."""
    from aigc_admin.domain.model_calls import ModelCallError, ModelCallErrorCode

    w = world
    calls = api.services().model_calls
    await api.services().gateway.routes.refresh()
    channel_id = await channel(api, w["tenant"], [w["answerer"]])
    name = (await m.LLMModel.get(id=int(w["answerer"]))).model_name
    body = {"model": name, "messages": [{"role": "user", "content": "echo:hi"}], "max_tokens": 4}
    first = await calls.chat(body, tenant_id=int(w["tenant"]), channel_id=int(channel_id))
    assert first.content == "hi"
    with pytest.raises(ModelCallError) as other_tenant:  # the remembered key is not another tenant's way in
        await calls.chat(body, tenant_id=int(w["tenant"]) + 100_000, channel_id=int(channel_id))
    assert other_tenant.value.code == ModelCallErrorCode.NOT_FOUND
    await ok(api, f'mutation {{ deleteChannel(id: "{channel_id}") {{ errors {{ code }} }} }}', tenant=w["tenant"])
    for _ in range(100):  # the invalidation arrives over Redis
        try:
            await calls.chat(body, tenant_id=int(w["tenant"]), channel_id=int(channel_id))
        except ModelCallError as e:
            assert e.code == ModelCallErrorCode.NOT_FOUND
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("a deleted channel still answered")
