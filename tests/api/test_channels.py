"""Channels over GraphQL: keys shown once and stored hashed, allowed models, limits, tenancy, rotation."""

from __future__ import annotations

from aigc_admin.adapters.db import models as m
from tests.support.api import ApiHarness, unique

CREATE = ("mutation($i: ChannelInput!) { createChannel(input: $i) { key channel { id alias keyPrefix quota "
          "rpmLimit tpmLimit enabled modelIds models { name } } errors { field code message } } }")


async def setup(api: ApiHarness) -> tuple[str, str, str]:
    tenant = await api.create_tenant(unique("ct"))
    _, token = await api.create_user(unique("maint"), {tenant: "maintainer"})
    data = await api.ok("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                        {"i": {"name": unique("cm"), "modelPath": "/m", "tenantIds": [tenant]}}, token=api.admin_token)
    return tenant, token, data["createModel"]["model"]["id"]


async def test_key_is_shown_once_and_stored_hashed(api: ApiHarness) -> None:
    tenant, token, model_id = await setup(api)
    body = await api.ok(CREATE, {"i": {"alias": "app", "quota": 1000, "rpmLimit": 60, "tpmLimit": 5000,
                                       "modelIds": [model_id]}}, token=token, tenant=tenant)
    created = body["createChannel"]
    key = created["key"]
    assert created["errors"] == [] and key.startswith("sk-") and len(key) == 51
    channel = created["channel"]
    assert channel["keyPrefix"] == key[:7] and channel["quota"] == 1000 and channel["modelIds"] == [model_id]
    assert len(channel["models"]) == 1
    row = await m.ChatChannel.get(id=int(channel["id"]))
    assert key not in row.api_key_hash and len(row.api_key_hash) == 64  # a keyed hash, not the key
    listed = await api.ok("{ channels { items { id keyPrefix } } }", token=token, tenant=tenant)
    assert "key" not in str(listed).replace("keyPrefix", "")  # the key is never listed again

    rotated = (await api.ok(f'mutation {{ rotateChannelKey(id: "{channel["id"]}") {{ key channel {{ keyPrefix }} '
                            "errors { code } } }", token=token, tenant=tenant))["rotateChannelKey"]
    assert rotated["key"] != key and rotated["channel"]["keyPrefix"] == rotated["key"][:7]
    assert (await m.ChatChannel.get(id=int(channel["id"]))).api_key_hash != row.api_key_hash


async def test_validation_tenancy_and_delete(api: ApiHarness) -> None:
    tenant, token, model_id = await setup(api)
    other_tenant, other_token, other_model = await setup(api)
    before = await m.ChatChannel.all().count()
    for fields, code, field in [
        ({"modelIds": [other_model]}, "NOT_FOUND", "modelIds"),  # another tenant's model
        ({"quota": -1}, "INVALID", "quota"),
        ({"rpmLimit": 0}, "INVALID", "rpmLimit"),
        ({"email": "not-an-email"}, "INVALID", "email"),
        ({"alias": ""}, "INVALID", "alias"),
        ({"expiresAt": "2030-01-01T00:00:00"}, "INVALID", "expiresAt"),
    ]:
        result = (await api.ok(CREATE, {"i": fields}, token=token, tenant=tenant))["createChannel"]
        assert result["channel"] is None and result["key"] is None, fields
        assert (result["errors"][0]["code"], result["errors"][0]["field"]) == (code, field), result
    assert await m.ChatChannel.all().count() == before

    created = (await api.ok(CREATE, {"i": {"modelIds": [model_id]}}, token=token, tenant=tenant))["createChannel"]
    channel_id = created["channel"]["id"]
    hidden = await api.ok(f'{{ channel(id: "{channel_id}") {{ id }} }}', token=other_token, tenant=other_tenant)
    assert hidden["channel"] is None
    foreign = await api.ok(f'mutation {{ deleteChannel(id: "{channel_id}") {{ errors {{ code }} }} }}',
                           token=other_token, tenant=other_tenant)
    assert foreign["deleteChannel"]["errors"][0]["code"] == "NOT_FOUND"
    _, member = await api.create_user(unique("member"), {tenant: "member"})
    denied = await api.gql(CREATE, {"i": {}}, token=member, tenant=tenant)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    update = await api.ok("mutation($i: UpdateChannelInput!) { updateChannel(input: $i) { channel { quota "
                          "enabled expiresAt } errors { code } } }",
                          {"i": {"id": channel_id, "unlimitedQuota": True, "enabled": False,
                                 "expiresAt": "2030-01-01T00:00:00+00:00"}}, token=token, tenant=tenant)
    assert update["updateChannel"]["channel"]["quota"] is None
    assert update["updateChannel"]["channel"]["enabled"] is False
    limits = "mutation($i: UpdateChannelInput!) { updateChannel(input: $i) { channel { rpmLimit tpmLimit } } }"
    set_ = await api.ok(limits, {"i": {"id": channel_id, "rpmLimit": 10, "tpmLimit": 1000}}, token=token, tenant=tenant)
    assert set_["updateChannel"]["channel"] == {"rpmLimit": 10, "tpmLimit": 1000}
    kept = await api.ok(limits, {"i": {"id": channel_id, "rpmLimit": None}}, token=token, tenant=tenant)
    assert kept["updateChannel"]["channel"] == {"rpmLimit": 10, "tpmLimit": 1000}  # null: unchanged
    cleared = await api.ok(limits, {"i": {"id": channel_id, "unlimitedRpm": True, "unlimitedTpm": True}},
                           token=token, tenant=tenant)
    assert cleared["updateChannel"]["channel"] == {"rpmLimit": None, "tpmLimit": None}
    deleted = await api.ok(f'mutation {{ deleteChannel(id: "{channel_id}") {{ errors {{ code }} }} }}',
                           token=token, tenant=tenant)
    assert deleted["deleteChannel"]["errors"] == []
    assert not await m.ChatChannel.filter(id=int(channel_id)).exists()
