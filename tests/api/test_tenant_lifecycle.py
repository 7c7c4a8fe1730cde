"""Tenants and the accounts that run the platform: a tenant id that names nothing is refused, deleting a tenant
removes everything it owns (rows, files on disk, workloads on the runtime, keys), and no administrator can lock
the platform out."""

from __future__ import annotations

import uuid
from pathlib import Path

from aigc_admin.adapters.db import models as m
from aigc_admin.domain.runtime import OWNER_LABEL, WorkloadHandle, WorkloadKind, WorkloadSpec, WorkloadState
from tests.support.api import ApiHarness, unique

UPDATE_ACCOUNT = "mutation($i: UpdateAccountInput!) { updateAccount(input: $i) { errors { field code message } } }"
DELETE_ACCOUNT = "mutation($id: ID!) { deleteAccount(id: $id) { ok errors { field code message } } }"
CHAT = '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}'


async def test_an_x_tenant_id_that_names_no_tenant_is_refused(api: ApiHarness) -> None:
    for query in ("{ deployments { totalCount } }", "{ models { totalCount } }"):
        body = await api.gql(query, token=api.admin_token, tenant="987654321")
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert "names no tenant" in body["errors"][0]["message"]
    # what failed with an integrity error (internal) or a false DUPLICATE before
    created = await api.gql('mutation { createChannel(input: {alias: "x"}) { key errors { code } } }',
                            token=api.admin_token, tenant="987654321")
    assert created["errors"][0]["extensions"]["code"] == "FORBIDDEN" and created["data"] is None
    r = await api.client.post("/files?purpose=fine-tune", content=CHAT.encode(),
                              headers={"Authorization": f"Bearer {api.admin_token}", "X-Tenant-Id": "987654321"})
    assert r.status_code == 403 and "names no tenant" in r.json()["error"]["message"]


async def test_an_expiry_in_the_past_is_refused_when_the_channel_is_created(api: ApiHarness) -> None:
    tenant = await api.create_tenant(unique("exp"))
    body = await api.ok('mutation { createChannel(input: {expiresAt: "2020-01-01T00:00:00+00:00"}) '
                        "{ key errors { field code message } } }", token=api.admin_token, tenant=tenant)
    assert body["createChannel"]["key"] is None
    assert body["createChannel"]["errors"] == [{"field": "expiresAt", "code": "INVALID",
                                                "message": "expiresAt is in the past"}]


async def test_no_administrator_locks_themselves_out(api: ApiHarness) -> None:
    """Disabling, demoting or deleting oneself is refused (the last enabled administrator is also kept: a domain
    test covers it, since through the API the one who could remove the last administrator is that one)."""
    me = (await api.ok("{ me { account { id } } }", token=api.admin_token))["me"]["account"]["id"]
    for change in ({"enabled": False}, {"isPlatformAdmin": False}):
        body = await api.ok(UPDATE_ACCOUNT, {"i": {"id": me, **change}}, token=api.admin_token)
        assert [(e["field"], e["code"]) for e in body["updateAccount"]["errors"]] == [("id", "INVALID")], body
        assert "your own account" in body["updateAccount"]["errors"][0]["message"]
    assert (await api.ok(DELETE_ACCOUNT, {"id": me}, token=api.admin_token))["deleteAccount"]["ok"] is False
    assert (await api.ok("{ me { account { enabled isPlatformAdmin } } }", token=api.admin_token))["me"] == {
        "account": {"enabled": True, "isPlatformAdmin": True}}
    other_id, _other = await api.create_user(unique("adm"), admin=True)  # another administrator may
    assert (await api.ok(UPDATE_ACCOUNT, {"i": {"id": other_id, "enabled": False}},
                         token=api.admin_token))["updateAccount"]["errors"] == []


async def test_deleting_a_tenant_removes_everything_it_owns(api: ApiHarness) -> None:
    """deleteTenant: members are out at once; the job stops the tenant's workloads on the runtime, revokes its keys
    and deletes its files (from the disk too), datasets, jobs and rows. Checked on the disk and the runtime."""
    platform = api.services()
    storage = Path(api.settings.server_storage_path)
    tenant = await api.create_tenant(unique("gone"))
    other = await api.create_tenant(unique("stays"))
    _, token = await api.create_user(unique("m"), {tenant: "maintainer"})

    uploaded = await api.client.post("/files?purpose=fine-tune&filename=a.jsonl", content=CHAT.encode(),
                                     headers={"Authorization": f"Bearer {token}", "X-Tenant-Id": tenant})
    assert uploaded.status_code == 201, uploaded.text
    assert any((storage / "files" / tenant).iterdir())
    dataset = await api.ok('mutation { createDataset(input: {name: "d"}) { dataset { id } } }', token=token,
                           tenant=tenant)
    await api.ok("mutation($i: CreateDatasetSampleInput!) { createDatasetSample(input: $i) { errors { code } } }",
                 {"i": {"datasetId": dataset["createDataset"]["dataset"]["id"], "instruction": "q", "output": "a"}},
                 token=token, tenant=tenant)
    key = (await api.ok('mutation { createChannel(input: {alias: "k"}) { key } }', token=token,
                        tenant=tenant))["createChannel"]["key"]
    assert (await api.client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})).status_code == 200

    # a deployment and a training job, each with a real workload on the (local) runtime
    owner = {OWNER_LABEL: api.settings.redis_prefix}
    served = await platform.runtime.start(WorkloadSpec(name=f"aigc-deploy-t{uuid.uuid4().hex[:6]}",
                                                       command=["sleep", "300"], labels=owner))
    training = await platform.runtime.start(WorkloadSpec(name=f"aigc-ft-t{uuid.uuid4().hex[:6]}",
                                                         command=["sleep", "300"], labels=owner,
                                                         kind=WorkloadKind.JOB))
    shared = await m.LLMModel.create(model_name=unique("base"), provider_name="local", model_path="/m")
    await shared.tenants.add(*await m.Tenant.filter(id__in=[int(tenant), int(other)]))
    await m.ModelDeploy.create(model_id=shared.id, tenant_id=int(tenant), status="RUNNING", replicas=1,
                               runtime_backend="local", runtime_handle=served.to_json())
    job_id = f"ftjob-{uuid.uuid4().hex[:12]}"
    tuned = await m.LLMModel.create(model_name=unique("tuned"), provider_name="local", model_path="/o",
                                    is_fine_tuning=True)
    await tuned.tenants.add(await m.Tenant.get(id=int(tenant)))
    await m.FineTuningTrainJob.create(job_id=job_id, tenant_id=int(tenant), base_model=shared.model_name,
                                      train_status="RUNNING", runtime_handle=training.to_json(),
                                      fine_tuned_model=tuned.model_name)
    (storage / "finetunes" / job_id / "output").mkdir(parents=True)
    (storage / "finetunes" / job_id / "output" / "model.safetensors").write_bytes(b"w" * 1000)

    deleted = await api.ok('mutation($id: ID!) { deleteTenant(id: $id) { ok errors { code } } }', {"id": tenant},
                           token=api.admin_token)
    assert deleted["deleteTenant"] == {"ok": True, "errors": []}
    # at once: the members are out, the tenant shows it is being deleted and cannot be acted in
    refused = await api.gql("{ deployments { totalCount } }", token=token, tenant=tenant)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    refused = await api.gql("{ deployments { totalCount } }", token=api.admin_token, tenant=tenant)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    shown = await api.ok("query($id: ID!) { tenant(id: $id) { deleting } }", {"id": tenant}, token=api.admin_token)
    assert shown["tenant"] == {"deleting": True}

    result = await api.run_job(f"tenant.delete:{tenant}")
    assert result["removed"] == {"deployments": 1, "channels": 1, "evaluations": 0, "training_jobs": 1,
                                 "datasets": 1, "files": 1}

    for handle in (served, training):  # the runtime: nothing of the tenant runs any more
        state = (await platform.runtime.status(WorkloadHandle.from_json(handle.to_json()))).state
        assert state in (WorkloadState.STOPPED, WorkloadState.MISSING), state
    assert not (storage / "files" / tenant).exists()  # the disk
    assert not (storage / "finetunes" / job_id).exists()
    r = await api.client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})  # the key
    assert r.status_code == 401
    assert not await m.Tenant.filter(id=int(tenant)).exists()  # the rows
    for table in (m.ChatChannel, m.File, m.Dataset, m.FineTuningTrainJob, m.ModelDeploy):
        assert not await table.filter(tenant_id=int(tenant)).exists(), table
    assert not await m.LLMModel.filter(id=tuned.id).exists()  # fine-tuned for it alone: gone
    assert [t.id for t in await shared.tenants.all()] == [int(other)]  # shared: only the grant went
    again = await api.ok('mutation($id: ID!) { deleteTenant(id: $id) { errors { code } } }', {"id": tenant},
                         token=api.admin_token)
    assert again["deleteTenant"]["errors"] == [{"code": "NOT_FOUND"}]
