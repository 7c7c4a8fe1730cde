"""Deployment requests over GraphQL: validation, tenancy, idempotency, capacity; a dead runtime → FAILED."""

from __future__ import annotations

from aigc_admin.adapters.db import models as m
from aigc_admin.adapters.runtime.docker import DockerRuntime
from aigc_admin.domain.deployments.entities import ACTIVE_STATUSES, DeploymentStatus
from tests.support.api import ApiHarness, unique

DEPLOY = ("mutation($i: DeployModelInput!) { deployModel(input: $i) { deployment { id status replicas "
          "gpusPerReplica modelName } errors { field code message } } }")


async def setup(api: ApiHarness) -> tuple[str, str, str, str]:
    """A tenant with a maintainer and a local model granted to it; returns (tenant, token, model id, name)."""
    tenant = await api.create_tenant(unique("dt"))
    _, token = await api.create_user(unique("maint"), {tenant: "maintainer"})
    name = unique("m")
    data = await api.ok("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                        {"i": {"name": name, "modelPath": "/models/x", "tenantIds": [tenant]}}, token=api.admin_token)
    return tenant, token, data["createModel"]["model"]["id"], name


async def test_deploy_validation_and_idempotency(api: ApiHarness) -> None:
    tenant, token, model_id, name = await setup(api)
    other_tenant, other_token, other_model, _ = await setup(api)
    _, member = await api.create_user(unique("member"), {tenant: "member"})
    before = await m.ModelDeploy.all().count()
    cases = [
        ({"modelId": model_id, "replicas": 0}, "INVALID", "replicas"),
        ({"modelId": model_id, "replicas": 17}, "INVALID", "replicas"),
        ({"modelId": model_id, "gpusPerReplica": -1}, "INVALID", "gpusPerReplica"),
        ({"modelId": model_id, "label": "bad label!"}, "INVALID", "label"),
        ({"modelId": model_id, "quantization": "3bit"}, "INVALID", "quantization"),
        ({"modelId": "999999"}, "NOT_FOUND", "id"),
        ({"modelId": other_model}, "NOT_FOUND", "id"),  # another tenant's model looks missing
        ({"modelId": model_id, "gpusPerReplica": 8, "replicas": 2}, "INSUFFICIENT_CAPACITY", "gpusPerReplica"),
    ]
    for fields, code, field in cases:
        body = await api.ok(DEPLOY, {"i": fields}, token=token, tenant=tenant)
        result = body["deployModel"]
        assert result["deployment"] is None and result["errors"][0]["code"] == code, (fields, result)
        assert result["errors"][0]["field"] == field
    assert await m.ModelDeploy.all().count() == before  # nothing half-created

    denied = await api.gql(DEPLOY, {"i": {"modelId": model_id}}, token=member, tenant=tenant)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # members may look, not deploy
    cross = await api.gql(DEPLOY, {"i": {"modelId": model_id}}, token=other_token, tenant=tenant)
    assert cross["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    ok = (await api.ok(DEPLOY, {"i": {"modelId": model_id, "replicas": 2}}, token=token, tenant=tenant))["deployModel"]
    assert ok["errors"] == [] and ok["deployment"]["status"] == "PENDING" and ok["deployment"]["modelName"] == name
    twice = (await api.ok(DEPLOY, {"i": {"modelId": model_id}}, token=token, tenant=tenant))["deployModel"]
    assert twice["errors"][0]["code"] == "ALREADY_DEPLOYED"
    assert await m.ModelDeploy.all().count() == before + 1

    dep_id = ok["deployment"]["id"]
    listed = await api.ok("{ deployments { totalCount items { id status } } }", token=member, tenant=tenant)
    assert [d["id"] for d in listed["deployments"]["items"]] == [dep_id]
    hidden = await api.ok(f'{{ deployment(id: "{dep_id}") {{ id }} }}', token=other_token, tenant=other_tenant)
    assert hidden["deployment"] is None

    undeploy = f'mutation {{ undeployModel(id: "{dep_id}") {{ deployment {{ status }} errors {{ code }} }} }}'
    assert (await api.ok(undeploy, token=token, tenant=tenant))["undeployModel"]["deployment"]["status"] == "STOPPING"
    assert (await api.ok(undeploy, token=token, tenant=tenant))["undeployModel"]["deployment"]["status"] == "STOPPING"
    foreign = await api.ok(undeploy, token=other_token, tenant=other_tenant)
    assert foreign["undeployModel"]["errors"][0]["code"] == "NOT_FOUND"


async def test_external_models_are_not_deployed(api: ApiHarness) -> None:
    tenant, token, _, _ = await setup(api)
    ext = await api.ok("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                       {"i": {"name": unique("ext"), "provider": "EXTERNAL", "baseUrl": "https://u.example/v1",
                              "tenantIds": [tenant]}}, token=api.admin_token)
    body = await api.ok(DEPLOY, {"i": {"modelId": ext["createModel"]["model"]["id"]}}, token=token, tenant=tenant)
    assert body["deployModel"]["errors"][0]["code"] == "NOT_DEPLOYABLE"


async def test_a_dead_runtime_fails_the_deployment_with_a_reason(api: ApiHarness) -> None:
    tenant, token, model_id, _ = await setup(api)
    body = await api.ok(DEPLOY, {"i": {"modelId": model_id}}, token=token, tenant=tenant)
    dep_id = int(body["deployModel"]["deployment"]["id"])
    dead = DockerRuntime(base_url="unix:///nonexistent/docker.sock", owner="test")
    result = await api.services().deployment_runner_on(dead).deploy(dep_id)
    assert result.status == DeploymentStatus.FAILED and "runtime unavailable" in result.reason
    row = await m.ModelDeploy.get(id=dep_id)
    assert row.status == "FAILED" and row.runtime_handle == ""  # nothing half-started



async def test_inference_templates_are_admin_only_and_validated(api: ApiHarness) -> None:
    listed = await api.ok("{ inferenceTemplates { name engine } }", token=api.admin_token)
    assert {"name": "fastchat-model-worker", "engine": "model_worker"} in listed["inferenceTemplates"]
    assert {"name": "aigc-finetune", "engine": "finetune"} in listed["inferenceTemplates"]  # the training template
    create = ("mutation($i: CreateInferenceTemplateInput!) { createInferenceTemplate(input: $i) "
              "{ template { id name } errors { field code message } } }")
    bad = await api.ok(create, {"i": {"name": unique("t"), "engine": "model_worker",
                                      "content": '{"command": ["${HOME}"]}'}}, token=api.admin_token)
    assert bad["createInferenceTemplate"]["errors"][0]["code"] == "INVALID"
    assert "unknown variable" in bad["createInferenceTemplate"]["errors"][0]["message"]
    good = await api.ok(create, {"i": {"name": unique("t"), "engine": "vllm_worker",
                                       "content": '{"command": ["${python}", "-m", "x"]}'}}, token=api.admin_token)
    assert good["createInferenceTemplate"]["errors"] == []
    training = await api.ok(create, {"i": {"name": unique("t"), "engine": "finetune",
                                           "content": '{"command": ["${python}", "${program}", "${model_name}"]}'}},
                            token=api.admin_token)
    assert "unknown variable ${model_name}" in training["createInferenceTemplate"]["errors"][0]["message"]
    tenant = await api.create_tenant(unique("tt"))
    _, maintainer = await api.create_user(unique("m"), {tenant: "maintainer"})
    denied = await api.gql(create, {"i": {"name": "x", "engine": "model_worker", "content": "{}"}},
                           token=maintainer, tenant=tenant)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # templates decide what runs: admins only


async def test_running_training_jobs_hold_gpus_of_the_same_capacity(api: ApiHarness) -> None:
    """Deployments and training share runtime.gpu.num: a training job's GPUs are not handed out twice."""
    tenant, token, model_id, _ = await setup(api)
    active = [s.value for s in ACTIVE_STATUSES]
    held = sum(d.replicas * d.gpus_per_replica for d in await m.ModelDeploy.filter(status__in=active))
    free = api.settings.runtime_gpu_num - held
    assert free >= 1
    job = await m.FineTuningTrainJob.create(job_id=f"ftjob-{unique('gpu')}", tenant_id=int(tenant), base_model="tiny",
                                            train_status="RUNNING", proc_per_node=free, runtime_handle="")
    try:
        body = await api.ok(DEPLOY, {"i": {"modelId": model_id, "gpusPerReplica": 1}}, token=token, tenant=tenant)
        assert body["deployModel"]["errors"][0]["code"] == "INSUFFICIENT_CAPACITY", body
        assert f"0 of {api.settings.runtime_gpu_num} free" in body["deployModel"]["errors"][0]["message"]
    finally:
        await job.delete()
    body = await api.ok(DEPLOY, {"i": {"modelId": model_id, "gpusPerReplica": 1}}, token=token, tenant=tenant)
    assert body["deployModel"]["errors"] == [] and body["deployModel"]["deployment"]["id"]
