"""createFineTuningJob's validation through GraphQL: every refusal names its field, and nothing is created."""

from __future__ import annotations

import json

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
