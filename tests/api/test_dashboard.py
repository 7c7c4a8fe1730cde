"""The dashboard's overview: the tenant's deployments by status, the GPU pool, gateway requests by status — each
tenant sees its own."""

from __future__ import annotations

from aigc_admin.adapters import metrics as pm
from aigc_admin.adapters.db import models as m
from tests.support.api import ApiHarness, unique

DASHBOARD = "{ dashboard { deployments { status count } gpuTotal gpuInUse gatewayRequests { model status requests } } }"


async def tenant_with_model(api: ApiHarness) -> tuple[str, str, str]:
    tenant = await api.create_tenant(unique("dash"))
    _, token = await api.create_user(unique("dm"), {tenant: "member"})
    name = unique("dashm")
    data = await api.ok("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                        {"i": {"name": name, "modelPath": "/models/x", "tenantIds": [tenant]}}, token=api.admin_token)
    model_id = int(data["createModel"]["model"]["id"])
    for status, replicas in (("RUNNING", 2), ("RUNNING", 1), ("FAILED", 1)):
        await m.ModelDeploy.create(model_id=model_id, tenant_id=int(tenant), status=status, engine="model_worker",
                                   replicas=replicas, gpus_per_replica=0)
    return tenant, token, name


async def test_overview_is_the_tenants_own(api: ApiHarness) -> None:
    tenant_a, token_a, model_a = await tenant_with_model(api)
    tenant_b, token_b, model_b = await tenant_with_model(api)
    pm.GATEWAY.request("chat", model_a, "200", "")
    pm.GATEWAY.request("chat", model_a, "200", "")
    pm.GATEWAY.request("chat", model_a, "502", "upstream")
    pm.GATEWAY.request("chat", model_b, "429", "rate_limit")

    a = (await api.ok(DASHBOARD, token=token_a, tenant=tenant_a))["dashboard"]
    assert {d["status"]: d["count"] for d in a["deployments"]} == {"RUNNING": 2, "FAILED": 1}
    assert a["gpuTotal"] == api.settings.runtime_gpu_num and a["gpuInUse"] >= 0
    assert {(r["model"], r["status"]): r["requests"] for r in a["gatewayRequests"]} == {
        (model_a, "200"): 2, (model_a, "502"): 1}  # B's model is not A's business

    b = (await api.ok(DASHBOARD, token=token_b, tenant=tenant_b))["dashboard"]
    assert [(r["model"], r["status"]) for r in b["gatewayRequests"]] == [(model_b, "429")]

    denied = await api.gql(DASHBOARD, token=token_b, tenant=tenant_a)  # not a member of A
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    admin = (await api.ok(DASHBOARD, token=api.admin_token, tenant=tenant_b))["dashboard"]  # admins: any tenant
    assert {d["status"]: d["count"] for d in admin["deployments"]} == {"RUNNING": 2, "FAILED": 1}


async def test_deployments_of_some_models(api: ApiHarness) -> None:
    """The models page asks for its own models' deployments (not the newest page of all of them)."""
    tenant, token, _ = await tenant_with_model(api)
    _, _, other_name = await tenant_with_model(api)
    mine = await m.ModelDeploy.filter(tenant_id=int(tenant)).values_list("model_id", flat=True)
    model_id = str(mine[0])
    query = "query($m: [ID!]) { deployments(modelIds: $m) { totalCount items { modelId status } } }"
    page = (await api.ok(query, {"m": [model_id]}, token=token, tenant=tenant))["deployments"]
    assert page["totalCount"] == 3 and {d["modelId"] for d in page["items"]} == {model_id}
    assert (await api.ok(query, {"m": []}, token=token, tenant=tenant))["deployments"]["totalCount"] == 0
    other_model = await m.ModelDeploy.filter(model__model_name=other_name).first()
    assert other_model is not None
    other = await api.ok(query, {"m": [str(other_model.model_id)]}, token=token, tenant=tenant)
    assert other["deployments"]["totalCount"] == 0  # another tenant's model: nothing
    bad = await api.gql(query, {"m": ["x"]}, token=token, tenant=tenant)
    assert bad["errors"][0]["extensions"]["code"] == "INVALID"
