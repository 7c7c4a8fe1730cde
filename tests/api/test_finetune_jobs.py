"""createFineTuningJob's validation through GraphQL: every refusal names its field, and nothing is created."""

from __future__ import annotations

import json
from pathlib import Path

from aigc_admin.adapters.db import models as m
from tests.api.test_files import http_upload
from tests.support.api import ApiHarness, unique

CREATE = ("mutation($i: CreateFineTuneJobInput!) { createFineTuningJob(input: $i) { job { id status } "
          "errors { code field message } } }")
CHAT = "\n".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                          {"role": "assistant", "content": f"a{i}"}]}) for i in range(3)).encode()


async def test_create_validates_every_input_and_creates_nothing_on_refusal(api: ApiHarness) -> None:
    tenant = await api.create_tenant(unique("ftv"))
    other = await api.create_tenant(unique("ftv"))
    _, token = await api.create_user(unique("m"), {tenant: "maintainer"})
    _, other_token = await api.create_user(unique("m"), {other: "maintainer"})
    model = await api.ok("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                         {"i": {"name": unique("base"), "modelPath": "/models/tiny", "tenantIds": [tenant]}},
                         token=api.admin_token)
    base = model["createModel"]["model"]["id"]
    mine = (await http_upload(api, CHAT, "t.jsonl", token=token, tenant=tenant)).json()["file"]["id"]
    theirs = (await http_upload(api, CHAT + b"\n", "t.jsonl", token=other_token, tenant=other)).json()["file"]["id"]
    capacity = api.settings.runtime_gpu_num
    before = await m.FineTuningTrainJob.all().count()
    cases = [
        ({"learningRate": 2.0}, "INVALID", "learningRate"),
        ({"epochs": 0}, "INVALID", "epochs"),
        ({"procPerNode": capacity + 1}, "INVALID", "procPerNode"),  # could never start, would block the queue
        ({"suffix": "no spaces"}, "INVALID", "suffix"),
        ({"fileId": theirs}, "NOT_FOUND", None),  # another tenant's file looks missing
        ({"baseModelId": "999999"}, "NOT_FOUND", None),
    ]
    for fields, code, field in cases:
        body = await api.ok(CREATE, {"i": {"baseModelId": base, "fileId": mine, **fields}}, token=token, tenant=tenant)
        result = body["createFineTuningJob"]
        assert result["job"] is None and result["errors"][0]["code"] == code, (fields, result)
        if field:
            assert result["errors"][0]["field"] == field, (fields, result)
    assert await m.FineTuningTrainJob.all().count() == before
    ok = await api.ok(CREATE, {"i": {"baseModelId": base, "fileId": mine, "procPerNode": capacity}},
                      token=token, tenant=tenant)
    assert ok["createFineTuningJob"]["errors"] == [] and ok["createFineTuningJob"]["job"]["status"] == "WAITING"


async def test_a_held_out_split_and_a_gate_are_checked_and_the_split_written(api: ApiHarness) -> None:
    from aigc_admin.domain.evaluations.split import held_out

    tenant = await api.create_tenant(unique("fth"))
    _, token = await api.create_user(unique("m"), {tenant: "maintainer"})
    created = await api.ok("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                           {"i": {"name": unique("base"), "modelPath": "/models/tiny", "tenantIds": [tenant]}},
                           token=api.admin_token)
    base = created["createModel"]["model"]["id"]
    judge = (await api.ok("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                          {"i": {"name": unique("judge"), "provider": "EXTERNAL", "baseUrl": "http://127.0.0.1:9/v1",
                                 "tenantIds": [tenant]}}, token=api.admin_token))["createModel"]["model"]["id"]
    lines = [json.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]})
             for i in range(40)]
    file_id = (await http_upload(api, "\n".join(lines).encode(), "t.jsonl", token=token,
                                 tenant=tenant)).json()["file"]["id"]
    tiny = (await http_upload(api, CHAT, "small.jsonl", token=token, tenant=tenant)).json()["file"]["id"]
    channel = (await api.ok("mutation { createChannel(input: {}) { channel { id } } }", token=token,
                            tenant=tenant))["createChannel"]["channel"]["id"]
    gate = {"metric": "ROUGE_L", "threshold": 0.2}
    before = await m.FineTuningTrainJob.all().count()
    cases = [
        ({"holdoutPercent": 100}, "INVALID", "holdoutPercent"),
        ({"holdoutPercent": -1}, "INVALID", "holdoutPercent"),
        ({"fileId": tiny, "holdoutPercent": 0.01}, "INVALID", "holdoutPercent"),  # 3 samples: none held out
        ({"holdoutPercent": 10, "gate": gate}, "INVALID", "channelId"),  # the grant goes to a channel
        ({"channelId": channel, "gate": gate}, "INVALID", "gate.fileId"),  # nothing to evaluate on
        ({"channelId": channel, "holdoutPercent": 10, "gate": {"metric": "ROUGE_L"}}, "INVALID", "gate.threshold"),
        ({"channelId": channel, "holdoutPercent": 10, "gate": {"metric": "JUDGE", "threshold": 0.5}},
         "INVALID", "gate.judgeModelId"),
        ({"channelId": channel, "holdoutPercent": 10,
          "gate": {"metric": "JUDGE", "threshold": 0.5, "judgeModelId": judge}}, "NOT_ALLOWED", "gate.judgeModelId"),
        ({"channelId": channel, "gate": {**gate, "fileId": file_id}}, "INVALID", "gate.fileId"),  # not fine-tune-eval
    ]
    for fields, code, field in cases:
        body = await api.ok(CREATE, {"i": {"baseModelId": base, "fileId": file_id, **fields}}, token=token,
                            tenant=tenant)
        result = body["createFineTuningJob"]
        assert result["job"] is None and (result["errors"][0]["code"], result["errors"][0]["field"]) == (code, field), \
            (fields, result)
    assert await m.FineTuningTrainJob.all().count() == before

    body = await api.ok(CREATE, {"i": {"baseModelId": base, "fileId": file_id, "channelId": channel,
                                       "holdoutPercent": 20, "holdoutSeed": 4, "gate": gate}},
                        token=token, tenant=tenant)
    assert body["createFineTuningJob"]["errors"] == []
    row = await m.FineTuningTrainJob.get(id=int(body["createFineTuningJob"]["job"]["id"]))
    kept = [x for i, x in enumerate(lines) if not held_out(i, percent=20, seed=4)]
    assert row.data_path.endswith("/train.jsonl") and Path(row.data_path).read_text().splitlines() == kept
    assert 0 < len(kept) < 40 and row.holdout_percent == 20 and json.loads(row.gate)["metric"] == "rouge_l"
