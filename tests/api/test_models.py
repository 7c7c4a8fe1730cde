"""Model registry over GraphQL: CRUD, validation, tenant visibility, encrypted upstream credentials."""

from __future__ import annotations

from aigc_admin.adapters.db import models as m
from tests.support.api import ApiHarness, unique

CREATE = ("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id name provider modelType "
          "hasCredentials baseUrl tenantIds } errors { field code message } } }")


async def create(api: ApiHarness, **fields: object) -> dict:
    data = await api.ok(CREATE, {"i": fields}, token=api.admin_token)
    return dict(data["createModel"])


async def test_registry_crud_visibility_and_secrets(api: ApiHarness) -> None:
    a, b = await api.create_tenant(unique("ma")), await api.create_tenant(unique("mb"))
    _, alice = await api.create_user(unique("alice"), {a: "member"})
    _, bob = await api.create_user(unique("bob"), {b: "maintainer"})
    local = await create(api, name=unique("tiny"), provider="LOCAL", modelType="CHAT", tenantIds=[a],
                         modelPath="/models/tiny")
    assert not local["errors"] and local["model"]["tenantIds"] == [a]
    ext = await create(api, name=unique("gpt"), provider="EXTERNAL", baseUrl="https://api.example.com/v1",
                       credentials="sk-upstream-secret", tenantIds=[a, b])
    assert ext["model"]["hasCredentials"] is True
    row = await m.LLMModel.get(id=int(ext["model"]["id"]))
    assert row.upstream_secret and "sk-upstream-secret" not in row.upstream_secret  # encrypted at rest
    assert await api.services().models.credentials(row.id) == "sk-upstream-secret"

    q = "{ models(pagination: {limit: 100}) { totalCount items { id name } } }"
    seen_a = {x["id"] for x in (await api.ok(q, token=alice, tenant=a))["models"]["items"]}
    seen_b = {x["id"] for x in (await api.ok(q, token=bob, tenant=b))["models"]["items"]}
    assert local["model"]["id"] in seen_a and ext["model"]["id"] in seen_a
    assert local["model"]["id"] not in seen_b and ext["model"]["id"] in seen_b
    other = await api.ok("query($id: ID!) { model(id: $id) { id } }", {"id": local["model"]["id"]}, token=bob,
                         tenant=b)
    assert other["model"] is None  # another tenant's model looks missing
    no_tenant = await api.gql(q, token=alice)
    assert no_tenant["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    denied = await api.gql(CREATE, {"i": {"name": unique("x")}}, token=alice, tenant=a)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    upd = await api.ok("mutation($i: UpdateModelInput!) { updateModel(input: $i) { model { tenantIds maxTokens } "
                       "errors { code } } }", {"i": {"id": local["model"]["id"], "tenantIds": [b], "maxTokens": 4096}},
                       token=api.admin_token)
    assert upd["updateModel"]["model"] == {"tenantIds": [b], "maxTokens": 4096}
    seen_b = {x["id"] for x in (await api.ok(q, token=bob, tenant=b))["models"]["items"]}
    assert local["model"]["id"] in seen_b


async def test_registry_validation_and_delete(api: ApiHarness) -> None:
    name = unique("dup")
    assert not (await create(api, name=name))["errors"]
    cases = [
        ({"name": name}, "DUPLICATE", "name"),
        ({"name": "bad name with spaces"}, "INVALID", "name"),
        ({"name": unique("e"), "provider": "EXTERNAL"}, "INVALID", "baseUrl"),
        ({"name": unique("e"), "provider": "EXTERNAL", "baseUrl": "ftp://x"}, "INVALID", "baseUrl"),
        ({"name": unique("l"), "credentials": "sk-x"}, "INVALID", "baseUrl"),
        ({"name": unique("n"), "maxTokens": 0}, "INVALID", "maxTokens"),
        ({"name": unique("t"), "tenantIds": ["999999"]}, "NOT_FOUND", "tenantIds"),
    ]
    before = await m.LLMModel.all().count()
    for fields, code, field in cases:
        result = await create(api, **fields)
        assert result["model"] is None and result["errors"][0]["code"] == code, (fields, result)
        assert result["errors"][0]["field"] == field
    assert await m.LLMModel.all().count() == before  # nothing half-created

    target = await create(api, name=unique("del"))
    model_id = int(target["model"]["id"])
    await m.ModelDeploy.create(model_id=model_id, status="RUNNING")
    delete = "mutation($id: ID!) { deleteModel(id: $id) { errors { code } } }"
    in_use = await api.ok(delete, {"id": str(model_id)}, token=api.admin_token)
    assert in_use["deleteModel"]["errors"][0]["code"] == "IN_USE"
    await m.ModelDeploy.filter(model_id=model_id).update(status="STOPPED")
    assert (await api.ok(delete, {"id": str(model_id)}, token=api.admin_token))["deleteModel"]["errors"] == []
    assert not await m.LLMModel.filter(id=model_id).exists()
    missing = await api.ok(delete, {"id": str(model_id)}, token=api.admin_token)
    assert missing["deleteModel"]["errors"][0]["code"] == "NOT_FOUND"
