"""Datasets over GraphQL (and the streamed export route): CRUD, tenancy, names, samples, import, export."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from aigc_admin.adapters.db import models as m
from tests.support.api import ApiHarness, unique

DATASET = "dataset { id name remark type format sampleCount creatorEmail }"
ERRORS = "errors { field code message }"
CREATE = f"mutation($i: CreateDatasetInput!) {{ createDataset(input: $i) {{ {DATASET} {ERRORS} }} }}"
UPDATE = f"mutation($i: UpdateDatasetInput!) {{ updateDataset(input: $i) {{ {DATASET} {ERRORS} }} }}"
SAMPLE = "sample { id datasetId title system instruction input output turns label conversations { role content } }"
CREATE_SAMPLE = (f"mutation($i: CreateDatasetSampleInput!) {{ createDatasetSample(input: $i) {{ {SAMPLE} "
                 "errors { field code message } } }")
UPDATE_SAMPLE = (f"mutation($i: UpdateDatasetSampleInput!) {{ updateDatasetSample(input: $i) {{ {SAMPLE} "
                 "errors { field code message } } }")
IMPORT = ("mutation($d: ID!, $f: ID!) { importDatasetFile(datasetId: $d, fileId: $f) { imported "
          "dataset { id sampleCount } errors { field code message line } } }")
EXPORT = "query($id: ID!, $f: DatasetFormat) { exportDataset(id: $id, format: $f) }"

MESSAGES = {"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "2+2?"},
                         {"role": "assistant", "content": "4"}]}
ALPACA = {"instruction": "Translate", "input": "cheese", "output": "fromage"}
SHAREGPT = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"},
                              {"from": "human", "value": "bye"}, {"from": "gpt", "value": "ciao"}]}


async def setup(api: ApiHarness) -> tuple[str, str]:
    tenant = await api.create_tenant(unique("dt"))
    _, token = await api.create_user(unique("dmaint"), {tenant: "maintainer"})
    return tenant, token


async def create(api: ApiHarness, token: str, tenant: str, **fields: Any) -> dict[str, Any]:
    body = await api.ok(CREATE, {"i": {"name": unique("ds"), **fields}}, token=token, tenant=tenant)
    return dict(body["createDataset"])


async def upload(api: ApiHarness, tenant: str, lines: list[str]) -> str:
    """A File row and its file on disk, as the upload API would leave them."""
    content = "".join(line + "\n" for line in lines).encode()
    file_id = f"file-{uuid.uuid4().hex[:24]}"
    relative = f"files/{tenant}/{file_id}.jsonl"
    path = api.settings.storage_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    await m.File.create(file_id=file_id, tenant_id=int(tenant), name="train.jsonl", purpose="fine-tune",
                        size=len(content), storage_path=relative, sha256=hashlib.sha256(content).hexdigest(),
                        line_count=len(lines))
    return file_id


async def test_dataset_crud_names_and_tenancy(api: ApiHarness) -> None:
    tenant, token = await setup(api)
    other_tenant, other_token = await setup(api)
    created = await create(api, token, tenant, name="chat-v1", remark="first", format="ALPACA")
    assert created["errors"] == []
    ds = created["dataset"]
    assert (ds["name"], ds["remark"], ds["type"], ds["format"], ds["sampleCount"]) == (
        "chat-v1", "first", "text", "ALPACA", 0)
    assert ds["creatorEmail"]  # the creator's e-mail, or username when the account has none

    dup = await create(api, token, tenant, name="chat-v1")
    assert dup["dataset"] is None and (dup["errors"][0]["code"], dup["errors"][0]["field"]) == ("DUPLICATE", "name")
    assert (await create(api, other_token, other_tenant, name="chat-v1"))["errors"] == []  # names are per tenant
    for bad in ({"name": " "}, {"name": "x" * 65}, {"remark": "r" * 501}):
        result = await create(api, token, tenant, **bad)
        assert result["errors"][0]["code"] == "INVALID", bad

    second = (await create(api, token, tenant, name="chat-v2"))["dataset"]
    renamed = (await api.ok(UPDATE, {"i": {"id": second["id"], "name": "chat-v1"}}, token=token, tenant=tenant))
    assert renamed["updateDataset"]["errors"][0]["code"] == "DUPLICATE"
    updated = (await api.ok(UPDATE, {"i": {"id": second["id"], "name": "chat-v3", "remark": "r", "format": "SHAREGPT"}},
                            token=token, tenant=tenant))["updateDataset"]
    assert updated["errors"] == [] and (updated["dataset"]["name"], updated["dataset"]["format"]) == (
        "chat-v3", "SHAREGPT")

    listed = await api.ok("{ datasets(pagination: {limit: 1}) { totalCount items { name } } }",
                          token=token, tenant=tenant)
    assert listed["datasets"]["totalCount"] == 2 and listed["datasets"]["items"] == [{"name": "chat-v3"}]
    searched = await api.ok('{ datasets(search: "v1") { totalCount } }', token=token, tenant=tenant)
    assert searched["datasets"]["totalCount"] == 1

    # another tenant's dataset looks missing
    hidden = await api.ok(f'{{ dataset(id: "{ds["id"]}") {{ id }} }}', token=other_token, tenant=other_tenant)
    assert hidden["dataset"] is None
    foreign = await api.ok(UPDATE, {"i": {"id": ds["id"], "remark": "mine"}}, token=other_token, tenant=other_tenant)
    assert foreign["updateDataset"]["errors"][0]["code"] == "NOT_FOUND"
    gone = await api.ok(f'mutation {{ deleteDataset(id: "{ds["id"]}") {{ errors {{ code }} }} }}',
                        token=other_token, tenant=other_tenant)
    assert gone["deleteDataset"]["errors"][0]["code"] == "NOT_FOUND"
    # members read, maintainers write
    _, member = await api.create_user(unique("dmember"), {tenant: "member"})
    seen = await api.ok(f'{{ dataset(id: "{ds["id"]}") {{ name }} }}', token=member, tenant=tenant)
    assert seen["dataset"] == {"name": "chat-v1"}
    denied = await api.gql(CREATE, {"i": {"name": "nope"}}, token=member, tenant=tenant)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    deleted = await api.ok(f'mutation {{ deleteDataset(id: "{ds["id"]}") {{ errors {{ code }} }} }}',
                           token=token, tenant=tenant)
    assert deleted["deleteDataset"]["errors"] == []
    assert not await m.Dataset.filter(id=int(ds["id"])).exists()


async def test_samples_crud_and_counts(api: ApiHarness) -> None:
    tenant, token = await setup(api)
    other_tenant, other_token = await setup(api)
    ds = (await create(api, token, tenant, format="ALPACA"))["dataset"]

    async def add(fields: dict[str, Any]) -> dict[str, Any]:
        body = await api.ok(CREATE_SAMPLE, {"i": {"datasetId": ds["id"], **fields}}, token=token, tenant=tenant)
        return dict(body["createDatasetSample"])

    alpaca = await add({"instruction": "Translate", "input": "cheese", "output": "fromage", "label": "fr",
                        "history": [["hi", "hello"]], "system": "Be brief."})
    assert alpaca["errors"] == []
    s = alpaca["sample"]
    assert (s["title"], s["system"], s["instruction"], s["input"], s["output"], s["turns"], s["label"]) == (
        "hi", "Be brief.", "Translate", "cheese", "fromage", 2, "fr")
    assert s["conversations"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"}, {"role": "user", "content": "Translate\ncheese"},
        {"role": "assistant", "content": "fromage"}]
    chat = await add({"title": "math", "conversations": [{"role": "user", "content": "2+2?"},
                                                         {"role": "assistant", "content": "4"}]})
    assert chat["errors"] == [] and chat["sample"]["instruction"] == "2+2?" and chat["sample"]["output"] == "4"
    # an alpaca dataset's samples must end with the assistant's answer
    bad = await add({"conversations": [{"role": "user", "content": "q"}]})
    assert (bad["errors"][0]["code"], bad["errors"][0]["field"]) == ("INVALID", "conversations")
    assert "assistant" in bad["errors"][0]["message"]
    assert (await add({"conversations": [{"role": "robot", "content": "q"}]}))["errors"][0]["code"] == "INVALID"
    assert (await add({}))["errors"][0]["code"] == "INVALID"

    count = await api.ok(f'{{ dataset(id: "{ds["id"]}") {{ sampleCount }} }}', token=token, tenant=tenant)
    assert count["dataset"]["sampleCount"] == 2

    edit = await api.ok(UPDATE_SAMPLE, {"i": {"id": s["id"], "output": "le fromage", "input": ""}},
                        token=token, tenant=tenant)
    edited = edit["updateDatasetSample"]["sample"]
    assert (edited["instruction"], edited["input"], edited["output"], edited["turns"]) == (
        "Translate", "", "le fromage", 2)
    assert edited["conversations"][-2:] == [{"role": "user", "content": "Translate"},
                                            {"role": "assistant", "content": "le fromage"}]
    conversation = [{"role": "system", "content": "S"}, {"role": "user", "content": "3+3?"},
                    {"role": "assistant", "content": "6"}]
    replaced = await api.ok(UPDATE_SAMPLE, {"i": {"id": chat["sample"]["id"], "remark": "checked",
                                                  "conversations": conversation}}, token=token, tenant=tenant)
    assert replaced["updateDatasetSample"]["sample"]["system"] == "S"
    assert replaced["updateDatasetSample"]["sample"]["output"] == "6"

    foreign = await api.ok(UPDATE_SAMPLE, {"i": {"id": s["id"], "title": "x"}}, token=other_token,
                           tenant=other_tenant)
    assert foreign["updateDatasetSample"]["errors"][0]["code"] == "NOT_FOUND"
    hidden = await api.ok(f'{{ datasetSamples(datasetId: "{ds["id"]}") {{ totalCount }} }}', token=other_token,
                          tenant=other_tenant)
    assert hidden["datasetSamples"]["totalCount"] == 0

    page = await api.ok(f'{{ datasetSamples(datasetId: "{ds["id"]}", pagination: {{limit: 1, offset: 1}}) '
                        "{ totalCount items { title } } }", token=token, tenant=tenant)
    assert page["datasetSamples"] == {"totalCount": 2, "items": [{"title": "math"}]}

    removed = await api.ok(f'mutation {{ deleteDatasetSample(id: "{s["id"]}") {{ errors {{ code }} }} }}',
                           token=token, tenant=tenant)
    assert removed["deleteDatasetSample"]["errors"] == []
    assert (await m.Dataset.get(id=int(ds["id"]))).sample_count == 1


async def test_import_is_all_or_nothing_with_line_numbers(api: ApiHarness) -> None:
    tenant, token = await setup(api)
    other_tenant, other_token = await setup(api)
    ds = (await create(api, token, tenant, format="MESSAGES"))["dataset"]

    bad = await upload(api, tenant, [json.dumps(MESSAGES), "{not json", "", json.dumps({"prompt": "x"}),
                                     json.dumps(ALPACA), json.dumps({"messages": [{"role": "user", "content": "q"}]})])
    result = (await api.ok(IMPORT, {"d": ds["id"], "f": bad}, token=token, tenant=tenant))["importDatasetFile"]
    assert result["imported"] == 0 and result["dataset"] is None
    assert [(e["line"], e["code"]) for e in result["errors"]] == [(2, "INVALID"), (4, "INVALID"), (6, "INVALID")]
    assert "JSON" in result["errors"][0]["message"] and "unknown record" in result["errors"][1]["message"]
    assert "assistant" in result["errors"][2]["message"]
    assert await m.DatasetSample.filter(dataset_id=int(ds["id"])).count() == 0

    good = await upload(api, tenant, [json.dumps(MESSAGES), "", json.dumps(ALPACA), json.dumps(SHAREGPT)] * 300)
    result = (await api.ok(IMPORT, {"d": ds["id"], "f": good}, token=token, tenant=tenant))["importDatasetFile"]
    assert result["errors"] == [] and result["imported"] == 900 and result["dataset"]["sampleCount"] == 900
    first = await m.DatasetSample.filter(dataset_id=int(ds["id"])).order_by("id").limit(3)
    assert [(r.system, r.instruction, r.input, r.output, r.turns) for r in first] == [
        ("Be terse.", "2+2?", "", "4", 1), ("", "Translate", "cheese", "fromage", 1), ("", "bye", "", "ciao", 2)]
    assert json.loads(first[2].conversations) == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"}, {"role": "assistant", "content": "ciao"}]

    # an alpaca dataset refuses what alpaca cannot hold
    alpaca_ds = (await create(api, token, tenant, format="ALPACA"))["dataset"]
    starts_with_assistant = {"messages": [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "?"},
                                          {"role": "assistant", "content": "!"}]}
    odd = await upload(api, tenant, [json.dumps(ALPACA), json.dumps(starts_with_assistant)])
    result = (await api.ok(IMPORT, {"d": alpaca_ds["id"], "f": odd}, token=token, tenant=tenant))["importDatasetFile"]
    assert [e["line"] for e in result["errors"]] == [2]

    # another tenant's file, and an unknown one, look missing; so does another tenant's dataset
    theirs = await upload(api, other_tenant, [json.dumps(MESSAGES)])
    for file_id in (theirs, "file-missing"):
        result = (await api.ok(IMPORT, {"d": ds["id"], "f": file_id}, token=token, tenant=tenant))["importDatasetFile"]
        assert (result["errors"][0]["code"], result["errors"][0]["field"]) == ("NOT_FOUND", "fileId")
    result = (await api.ok(IMPORT, {"d": ds["id"], "f": theirs}, token=other_token,
                           tenant=other_tenant))["importDatasetFile"]
    assert result["errors"][0]["code"] == "NOT_FOUND"
    empty = await upload(api, tenant, ["", "  "])
    result = (await api.ok(IMPORT, {"d": ds["id"], "f": empty}, token=token, tenant=tenant))["importDatasetFile"]
    assert result["errors"][0]["code"] == "INVALID" and "no records" in result["errors"][0]["message"]
    assert (await m.Dataset.get(id=int(ds["id"]))).sample_count == 900

    # limits: rows per import, bytes per line (both checked before anything is stored)
    service = api.services().datasets
    service.max_import_rows, service.max_line_bytes = 3, 200
    try:
        many = await upload(api, tenant, [json.dumps(ALPACA)] * 4)
        result = (await api.ok(IMPORT, {"d": ds["id"], "f": many}, token=token, tenant=tenant))["importDatasetFile"]
        assert result["errors"][0]["code"] == "TOO_LARGE" and "more than 3 records" in result["errors"][0]["message"]
        long = await upload(api, tenant, [json.dumps(ALPACA), json.dumps({**ALPACA, "output": "x" * 300})])
        result = (await api.ok(IMPORT, {"d": ds["id"], "f": long}, token=token, tenant=tenant))["importDatasetFile"]
        assert [(e["line"], "longer than 200 bytes" in e["message"]) for e in result["errors"]] == [(2, True)]
    finally:
        service.max_import_rows, service.max_line_bytes = 100_000, 4 * 1024 * 1024
    assert (await m.Dataset.get(id=int(ds["id"]))).sample_count == 900


async def test_export_in_each_format(api: ApiHarness) -> None:
    tenant, token = await setup(api)
    other_tenant, other_token = await setup(api)
    ds = (await create(api, token, tenant, name="exp", format="SHAREGPT"))["dataset"]
    file_id = await upload(api, tenant, [json.dumps(MESSAGES), json.dumps(ALPACA), json.dumps(SHAREGPT)])
    assert (await api.ok(IMPORT, {"d": ds["id"], "f": file_id}, token=token, tenant=tenant))[
        "importDatasetFile"]["imported"] == 3

    def lines(text: str) -> list[dict[str, Any]]:
        assert text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]

    as_messages = lines((await api.ok(EXPORT, {"id": ds["id"], "f": "MESSAGES"}, token=token, tenant=tenant))[
        "exportDataset"])
    assert as_messages[0] == MESSAGES
    assert as_messages[1] == {"messages": [{"role": "user", "content": "Translate\ncheese"},
                                           {"role": "assistant", "content": "fromage"}]}
    as_alpaca = lines((await api.ok(EXPORT, {"id": ds["id"], "f": "ALPACA"}, token=token, tenant=tenant))[
        "exportDataset"])
    assert as_alpaca == [{"instruction": "2+2?", "input": "", "output": "4", "system": "Be terse."}, ALPACA,
                         {"instruction": "bye", "input": "", "output": "ciao", "history": [["hi", "hello"]]}]
    default = lines((await api.ok(EXPORT, {"id": ds["id"]}, token=token, tenant=tenant))["exportDataset"])
    assert default[2] == SHAREGPT and default[0]["conversations"][0] == {"from": "system", "value": "Be terse."}

    # a sample alpaca cannot hold makes an alpaca export fail before anything is sent
    twice = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
             {"role": "assistant", "content": "c"}]
    await api.ok(CREATE_SAMPLE, {"i": {"datasetId": ds["id"], "conversations": twice}}, token=token, tenant=tenant)
    failed = await api.gql(EXPORT, {"id": ds["id"], "f": "ALPACA"}, token=token, tenant=tenant)
    assert failed["errors"][0]["extensions"]["code"] == "INVALID" and "message 3" in failed["errors"][0]["message"]
    hidden = await api.gql(EXPORT, {"id": ds["id"]}, token=other_token, tenant=other_tenant)
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    # the streamed route: same answer, same authentication
    headers = {"Authorization": f"Bearer {token}", "X-Tenant-Id": tenant}
    r = await api.client.get(f"/datasets/{ds['id']}/export", params={"format": "messages"}, headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    assert "exp.messages.jsonl" in r.headers["content-disposition"]
    assert lines(r.text)[:3] == as_messages
    r = await api.client.get(f"/datasets/{ds['id']}/export", headers=headers)
    assert lines(r.text)[:3] == default
    assert (await api.client.get(f"/datasets/{ds['id']}/export", params={"format": "alpaca"},
                                 headers=headers)).status_code == 400
    assert (await api.client.get(f"/datasets/{ds['id']}/export", params={"format": "csv"},
                                 headers=headers)).status_code == 400
    assert (await api.client.get(f"/datasets/{ds['id']}/export")).status_code == 401
    assert (await api.client.get(f"/datasets/{ds['id']}/export", headers={
        "Authorization": f"Bearer {other_token}", "X-Tenant-Id": tenant})).status_code == 403
    assert (await api.client.get(f"/datasets/{ds['id']}/export", headers={
        "Authorization": f"Bearer {other_token}", "X-Tenant-Id": other_tenant})).status_code == 404
