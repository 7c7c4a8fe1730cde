"""The original's default channel: created on first start with the operator's key, never a built-in one."""

from __future__ import annotations

from pathlib import Path

from aigc_admin.adapters.db import models as m
from aigc_admin.gateway.keys import new_key
from tests.support.api import ApiHarness
from tests.support.redis_server import RedisServer


async def test_default_channel_uses_the_configured_key(tmp_path: Path, redis_server: RedisServer) -> None:
    key = new_key()
    extra = {"server.aigc.channel.key": key}
    async with ApiHarness.running(storage=tmp_path, redis_url=redis_server.url, extra=extra) as api:
        channel = await m.ChatChannel.get(name="default")
        tenant = await m.Tenant.get(id=channel.tenant_id)
        assert tenant.code == "default" and channel.api_key_prefix == key[:7] and key not in channel.api_key_hash
        ok = await api.client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200 and ok.json() == {"object": "list", "data": []}  # no model granted yet
        bad = await api.client.get("/v1/models", headers={"Authorization": "Bearer sk-" + "0" * 48})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"
    # a second start finds it and creates nothing
    async with ApiHarness.running(storage=tmp_path, redis_url=redis_server.url, extra=extra):
        assert await m.ChatChannel.filter(name="default").count() == 1


async def test_no_default_channel_without_a_key(tmp_path: Path, redis_server: RedisServer) -> None:
    async with ApiHarness.running(storage=tmp_path, redis_url=redis_server.url):
        assert not await m.ChatChannel.filter(name="default").exists()
