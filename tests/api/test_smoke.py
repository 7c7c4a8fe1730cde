from tests.support.api import ApiHarness, unique


async def test_admin_sees_me_and_creates_tenant(api: ApiHarness) -> None:
    data = await api.ok("{ me { account { username isPlatformAdmin } } }", token=api.admin_token)
    assert data["me"]["account"] == {"username": "admin", "isPlatformAdmin": True}
    tid = await api.create_tenant(unique("t"))
    _, token = await api.create_user(unique("u"), {tid: "member"})
    me = await api.ok("{ me { memberships { tenantId role tenant { code } } } }", token=token)
    assert me["me"]["memberships"][0]["tenantId"] == tid
    assert me["me"]["memberships"][0]["role"] == "MEMBER"
