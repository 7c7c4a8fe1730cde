"""Model registry over GraphQL: CRUD, validation, tenant visibility, encrypted upstream credentials."""

from __future__ import annotations

import json

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


async def test_a_models_conversation_template(api: ApiHarness) -> None:
    """Registering a local model reads its own chat template from its files; a FastChat template name can be set
    (or cleared) as an override."""
    from aigc_admin.adapters.db.templates import TemplateRepo
    from aigc_admin.domain.deployments.templates import LEGACY
    from tests.support.engine import tiny_model_path

    create = ("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id conversationTemplate "
              "hasChatTemplate } errors { field code } } }")
    own = await api.ok(create, {"i": {"name": unique("tiny"), "modelPath": str(tiny_model_path())}},
                       token=api.admin_token)
    assert own["createModel"]["model"]["hasChatTemplate"] is True
    assert own["createModel"]["model"]["conversationTemplate"] == ""
    none = await api.ok(create, {"i": {"name": unique("bare"), "modelPath": "/no/such/dir"}}, token=api.admin_token)
    assert none["createModel"]["model"]["hasChatTemplate"] is False  # unreadable here: chosen by name
    bad = await api.ok(create, {"i": {"name": unique("x"), "conversationTemplate": "rm -rf /"}}, token=api.admin_token)
    assert bad["createModel"]["errors"] == [{"field": "conversationTemplate", "code": "INVALID"}]
    update = ("mutation($i: UpdateModelInput!) { updateModel(input: $i) { model { conversationTemplate } "
              "errors { code } } }")
    model_id = own["createModel"]["model"]["id"]
    set_ = await api.ok(update, {"i": {"id": model_id, "conversationTemplate": "vicuna_v1.1"}}, token=api.admin_token)
    assert set_["updateModel"]["model"]["conversationTemplate"] == "vicuna_v1.1"
    cleared = await api.ok(update, {"i": {"id": model_id, "conversationTemplate": ""}}, token=api.admin_token)
    assert cleared["updateModel"]["model"]["conversationTemplate"] == ""

    # an installation from before: its untouched built-in template pinned Vicuna's for every model; brought up to date
    row = await m.FineTuningTemplate.get(name="fastchat-model-worker")
    await m.FineTuningTemplate.filter(id=row.id).update(content=json.dumps(LEGACY["fastchat-model-worker"]))
    await TemplateRepo().ensure_builtin()
    assert "vicuna_v1.1" not in (await m.FineTuningTemplate.get(id=row.id)).content
