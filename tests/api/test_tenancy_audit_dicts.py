"""Tenants, accounts, memberships, the audit log and the system dictionary, through the GraphQL API."""

from __future__ import annotations

import json
from typing import Any

from aigc_admin.adapters.db.models import SysAudit
from tests.support.api import USER_PASSWORD, ApiHarness, unique

TENANT_FIELDS = "tenant { id name code remark members { accountId username role } } errors { field code message }"
CREATE_TENANT = f"mutation($i: CreateTenantInput!) {{ createTenant(input: $i) {{ {TENANT_FIELDS} }} }}"
UPDATE_TENANT = f"mutation($i: UpdateTenantInput!) {{ updateTenant(input: $i) {{ {TENANT_FIELDS} }} }}"
DELETE_TENANT = "mutation($id: ID!) { deleteTenant(id: $id) { ok errors { field code message } } }"
SET_MEMBER = f"mutation($i: SetMembershipInput!) {{ setTenantMembership(input: $i) {{ {TENANT_FIELDS} }} }}"
REMOVE_MEMBER = f"mutation($i: RemoveMembershipInput!) {{ removeTenantMembership(input: $i) {{ {TENANT_FIELDS} }} }}"
TENANT = "query($id: ID!) { tenant(id: $id) { id code members { accountId username role } } }"

ACCOUNT_FIELDS = "account { id username email nickname enabled isPlatformAdmin } errors { field code message }"
CREATE_ACCOUNT = f"mutation($i: CreateAccountInput!) {{ createAccount(input: $i) {{ {ACCOUNT_FIELDS} }} }}"
UPDATE_ACCOUNT = f"mutation($i: UpdateAccountInput!) {{ updateAccount(input: $i) {{ {ACCOUNT_FIELDS} }} }}"
DELETE_ACCOUNT = "mutation($id: ID!) { deleteAccount(id: $id) { ok errors { field code message } } }"
ACCOUNTS = """query($s: String, $p: Pagination) {
  accounts(search: $s, pagination: $p) { totalCount offset limit items { id username } } }"""

AUDIT_LOGS = """query($f: AuditLogFilter, $p: Pagination) {
  auditLogs(filter: $f, pagination: $p) {
    totalCount
    items { id traceId operator tenantId operation variables durationMs success error createdAt }
  }
}"""

DICT_FIELDS = "entry { id parentId code dictValue dictLabel dictType sort } errors { field code message }"
CREATE_DICT = f"mutation($i: CreateDictInput!) {{ createDict(input: $i) {{ {DICT_FIELDS} }} }}"
UPDATE_DICT = f"mutation($i: UpdateDictInput!) {{ updateDict(input: $i) {{ {DICT_FIELDS} }} }}"
DELETE_DICT = "mutation($id: ID!) { deleteDict(id: $id) { ok errors { field code message } } }"
DICTS = """query($f: DictFilter, $p: Pagination) {
  dicts(filter: $f, pagination: $p) { totalCount items { id parentId code dictLabel sort } } }"""


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


def without_nones(value: Any) -> Any:
    """Audit variables minus the inputs' unset optional fields (recorded as null)."""
    if isinstance(value, dict):
        return {k: without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nones(v) for v in value]
    return value


def top_level_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


async def mutate(api: ApiHarness, query: str, variables: dict[str, Any], field: str, **kw: Any) -> dict[str, Any]:
    """The payload of one mutation field, as the admin unless a token is given."""
    kw.setdefault("token", api.admin_token)
    return dict((await api.ok(query, variables, **kw))[field])


async def audit_rows(api: ApiHarness, flt: dict[str, Any], *, token: str | None = None, tenant: object = None,
                     offset: int = 0, limit: int = 100) -> tuple[int, list[dict[str, Any]]]:
    data = await api.ok(AUDIT_LOGS, {"f": flt, "p": {"offset": offset, "limit": limit}},
                        token=token or api.admin_token, tenant=tenant)
    return data["auditLogs"]["totalCount"], data["auditLogs"]["items"]


async def account_id_of_admin(api: ApiHarness) -> str:
    return str((await api.ok("{ me { account { id } } }", token=api.admin_token))["me"]["account"]["id"])


# --- tenants ----------------------------------------------------------------------------------
async def test_tenant_create_update_delete(api: ApiHarness) -> None:
    code = unique("t")
    created = await mutate(api, CREATE_TENANT, {"i": {"name": "Team", "code": code, "remark": "r1"}}, "createTenant")
    assert created["errors"] == []
    tenant = created["tenant"]
    assert (tenant["name"], tenant["code"], tenant["remark"], tenant["members"]) == ("Team", code, "r1", [])

    updated = await mutate(api, UPDATE_TENANT, {"i": {"id": tenant["id"], "name": "Renamed"}}, "updateTenant")
    assert updated["errors"] == []
    assert (updated["tenant"]["name"], updated["tenant"]["remark"]) == ("Renamed", "r1")  # remark untouched

    deleted = await mutate(api, DELETE_TENANT, {"id": tenant["id"]}, "deleteTenant")
    assert deleted == {"ok": True, "errors": []}
    await api.run_job(f"tenant.delete:{tenant['id']}")  # the cascade runs as a job
    assert (await api.ok(TENANT, {"id": tenant["id"]}, token=api.admin_token))["tenant"] is None
    again = await mutate(api, DELETE_TENANT, {"id": tenant["id"]}, "deleteTenant")
    assert again["ok"] is False and codes(again) == ["NOT_FOUND"]


async def test_tenant_typed_errors(api: ApiHarness) -> None:
    code = unique("t")
    await api.create_tenant(code)
    duplicate = await mutate(api, CREATE_TENANT, {"i": {"name": "X", "code": code}}, "createTenant")
    assert duplicate["tenant"] is None
    assert [(e["field"], e["code"]) for e in duplicate["errors"]] == [("code", "DUPLICATE")]

    for bad_code in ("Upper", "has space", "", "-lead"):
        bad = await mutate(api, CREATE_TENANT, {"i": {"name": "X", "code": bad_code}}, "createTenant")
        assert [(e["field"], e["code"]) for e in bad["errors"]] == [("code", "INVALID")], bad_code
    no_name = await mutate(api, CREATE_TENANT, {"i": {"name": "  ", "code": unique("t")}}, "createTenant")
    assert [(e["field"], e["code"]) for e in no_name["errors"]] == [("name", "INVALID")]

    missing = await mutate(api, UPDATE_TENANT, {"i": {"id": "987654321", "name": "Y"}}, "updateTenant")
    assert codes(missing) == ["NOT_FOUND"]
    not_numeric = await mutate(api, UPDATE_TENANT, {"i": {"id": "abc", "name": "Y"}}, "updateTenant")
    assert codes(not_numeric) == ["INVALID"]


async def test_member_sees_only_their_tenants(api: ApiHarness) -> None:
    mine_a, mine_b, other = [await api.create_tenant(unique("t")) for _ in range(3)]
    _, token = await api.create_user(unique("u"), {mine_a: "member", mine_b: "maintainer"})

    data = await api.ok("{ tenants { totalCount items { id } } }", token=token)
    assert data["tenants"]["totalCount"] == 2
    assert {t["id"] for t in data["tenants"]["items"]} == {mine_a, mine_b}
    assert (await api.ok(TENANT, {"id": other}, token=token))["tenant"] is None
    assert (await api.ok(TENANT, {"id": mine_a}, token=token))["tenant"]["id"] == mine_a

    everything = await api.ok("{ tenants(pagination: {limit: 100}) { totalCount items { id } } }",
                              token=api.admin_token)
    assert {mine_a, mine_b, other} <= {t["id"] for t in everything["tenants"]["items"]}
    assert everything["tenants"]["totalCount"] >= 3


# --- accounts ---------------------------------------------------------------------------------
async def test_account_create_update_delete(api: ApiHarness) -> None:
    name = unique("acc")
    created = await mutate(api, CREATE_ACCOUNT, {"i": {"username": name, "password": USER_PASSWORD,
                                                       "email": f"{name}@example.org"}}, "createAccount")
    assert created["errors"] == []
    account = created["account"]
    assert account["username"] == name and account["nickname"] == name  # nickname defaults to the username
    assert (account["enabled"], account["isPlatformAdmin"]) == (True, False)

    updated = await mutate(api, UPDATE_ACCOUNT, {"i": {"id": account["id"], "nickname": "Nick"}}, "updateAccount")
    assert updated["errors"] == []
    assert (updated["account"]["nickname"], updated["account"]["email"]) == ("Nick", f"{name}@example.org")

    assert codes(await mutate(api, CREATE_ACCOUNT, {"i": {"username": name, "password": USER_PASSWORD}},
                              "createAccount")) == ["DUPLICATE"]
    assert codes(await mutate(api, CREATE_ACCOUNT, {"i": {"username": unique("acc"), "password": "short"}},
                              "createAccount")) == ["WEAK_PASSWORD"]
    assert codes(await mutate(api, UPDATE_ACCOUNT, {"i": {"id": account["id"], "password": "short"}},
                              "updateAccount")) == ["WEAK_PASSWORD"]
    assert codes(await mutate(api, UPDATE_ACCOUNT, {"i": {"id": "987654321", "nickname": "x"}},
                              "updateAccount")) == ["NOT_FOUND"]

    token = await api.login(name, USER_PASSWORD)
    deleted = await mutate(api, DELETE_ACCOUNT, {"id": account["id"]}, "deleteAccount")
    assert deleted == {"ok": True, "errors": []}
    assert (await api.ok("query($id: ID!) { account(id: $id) { id } }", {"id": account["id"]},
                         token=api.admin_token))["account"] is None
    assert top_level_codes(await api.gql("{ me { account { id } } }", token=token)) == ["UNAUTHENTICATED"]
    assert codes(await mutate(api, DELETE_ACCOUNT, {"id": account["id"]}, "deleteAccount")) == ["NOT_FOUND"]


async def test_deleting_yourself_is_invalid(api: ApiHarness) -> None:
    admin_id = await account_id_of_admin(api)
    result = await mutate(api, DELETE_ACCOUNT, {"id": admin_id}, "deleteAccount")
    assert result["ok"] is False
    assert [(e["field"], e["code"]) for e in result["errors"]] == [("id", "INVALID")]
    assert (await api.ok("{ me { account { id } } }", token=api.admin_token))["me"]["account"]["id"] == admin_id


async def test_accounts_search_and_pagination(api: ApiHarness) -> None:
    prefix = unique("page")
    ids = [(await api.create_user(f"{prefix}-{n}"))[0] for n in range(3)]
    by_email = unique("mail")
    await mutate(api, CREATE_ACCOUNT, {"i": {"username": unique("other"), "password": USER_PASSWORD,
                                             "email": f"{by_email}@example.org"}}, "createAccount")

    everything = (await api.ok(ACCOUNTS, {"s": prefix}, token=api.admin_token))["accounts"]
    assert everything["totalCount"] == 3
    assert [a["id"] for a in everything["items"]] == ids  # oldest first

    first = (await api.ok(ACCOUNTS, {"s": prefix, "p": {"offset": 0, "limit": 2}}, token=api.admin_token))["accounts"]
    rest = (await api.ok(ACCOUNTS, {"s": prefix, "p": {"offset": 2, "limit": 2}}, token=api.admin_token))["accounts"]
    assert (first["totalCount"], first["offset"], first["limit"]) == (3, 0, 2)
    assert [a["id"] for a in first["items"]] + [a["id"] for a in rest["items"]] == ids
    assert rest["totalCount"] == 3 and len(rest["items"]) == 1

    assert (await api.ok(ACCOUNTS, {"s": by_email}, token=api.admin_token))["accounts"]["totalCount"] == 1
    assert (await api.ok(ACCOUNTS, {"s": unique("none")}, token=api.admin_token))["accounts"]["totalCount"] == 0
    # A page never exceeds 100 items, whatever is asked.
    huge = (await api.ok(ACCOUNTS, {"p": {"limit": 1000}}, token=api.admin_token))["accounts"]
    assert huge["limit"] == 100


# --- memberships ------------------------------------------------------------------------------
async def test_memberships_set_change_remove(api: ApiHarness) -> None:
    tenant_id = await api.create_tenant(unique("t"))
    name = unique("u")
    account_id, token = await api.create_user(name)
    membership = {"tenantId": tenant_id, "accountId": account_id}

    added = await mutate(api, SET_MEMBER, {"i": {**membership, "role": "MEMBER"}}, "setTenantMembership")
    assert added["errors"] == []
    assert added["tenant"]["members"] == [{"accountId": account_id, "username": name, "role": "MEMBER"}]

    changed = await mutate(api, SET_MEMBER, {"i": {**membership, "role": "MAINTAINER"}}, "setTenantMembership")
    assert changed["tenant"]["members"] == [{"accountId": account_id, "username": name, "role": "MAINTAINER"}]
    me = await api.ok("{ me { memberships { tenantId role } } }", token=token)
    assert me["me"]["memberships"] == [{"tenantId": tenant_id, "role": "MAINTAINER"}]

    removed = await mutate(api, REMOVE_MEMBER, {"i": membership}, "removeTenantMembership")
    assert removed["errors"] == [] and removed["tenant"]["members"] == []
    assert (await api.ok("{ me { memberships { tenantId } } }", token=token))["me"]["memberships"] == []

    again = await mutate(api, REMOVE_MEMBER, {"i": membership}, "removeTenantMembership")
    assert [(e["field"], e["code"]) for e in again["errors"]] == [("accountId", "NOT_FOUND")]
    no_tenant = await mutate(api, SET_MEMBER, {"i": {**membership, "tenantId": "987654321", "role": "MEMBER"}},
                             "setTenantMembership")
    assert codes(no_tenant) == ["NOT_FOUND"]
    no_account = await mutate(api, SET_MEMBER, {"i": {**membership, "accountId": "987654321", "role": "MEMBER"}},
                              "setTenantMembership")
    assert codes(no_account) == ["NOT_FOUND"]


async def test_deleting_a_tenant_removes_its_memberships(api: ApiHarness) -> None:
    tenant_id = await api.create_tenant(unique("t"))
    _, token = await api.create_user(unique("u"), {tenant_id: "member"})
    assert (await mutate(api, DELETE_TENANT, {"id": tenant_id}, "deleteTenant"))["ok"] is True
    assert (await api.ok("{ me { memberships { tenantId } } }", token=token))["me"]["memberships"] == []


async def test_non_admins_cannot_call_admin_mutations(api: ApiHarness) -> None:
    tenant_id = await api.create_tenant(unique("t"))
    account_id, token = await api.create_user(unique("u"), {tenant_id: "maintainer"})
    attempts: list[tuple[str, dict[str, Any]]] = [
        (CREATE_TENANT, {"i": {"name": "X", "code": unique("t")}}),
        (UPDATE_TENANT, {"i": {"id": tenant_id, "name": "Hijacked"}}),
        (DELETE_TENANT, {"id": tenant_id}),
        (CREATE_ACCOUNT, {"i": {"username": unique("u"), "password": USER_PASSWORD}}),
        (UPDATE_ACCOUNT, {"i": {"id": account_id, "isPlatformAdmin": True}}),
        (DELETE_ACCOUNT, {"id": await account_id_of_admin(api)}),
        (SET_MEMBER, {"i": {"tenantId": tenant_id, "accountId": account_id, "role": "MAINTAINER"}}),
        (REMOVE_MEMBER, {"i": {"tenantId": tenant_id, "accountId": account_id}}),
        (CREATE_DICT, {"i": {"code": unique("d"), "dictValue": "v", "dictLabel": "l"}}),
    ]
    for query, variables in attempts:
        body = await api.gql(query, variables, token=token, tenant=tenant_id)
        assert body["data"] is None, query
        assert top_level_codes(body) == ["FORBIDDEN"], query
        anonymous = await api.gql(query, variables)
        assert top_level_codes(anonymous) == ["UNAUTHENTICATED"], query

    # Nothing changed.
    me = await api.ok("{ me { account { isPlatformAdmin } memberships { role } } }", token=token)
    assert me["me"] == {"account": {"isPlatformAdmin": False}, "memberships": [{"role": "MAINTAINER"}]}
    tenant = (await api.ok("query($id: ID!) { tenant(id: $id) { name } }", {"id": tenant_id},
                           token=api.admin_token))["tenant"]
    assert tenant["name"] != "Hijacked"


# --- audit log --------------------------------------------------------------------------------
async def test_each_mutation_writes_one_audit_row(api: ApiHarness) -> None:
    tenant_id = await api.create_tenant(unique("t"))
    r = await api.post(UPDATE_TENANT, {"i": {"id": tenant_id, "remark": "audited"}}, token=api.admin_token,
                       tenant=tenant_id)
    assert r.status_code == 200 and r.json()["data"]["updateTenant"]["errors"] == []
    trace_id = r.headers["X-Trace-Id"]

    total, rows = await audit_rows(api, {"traceId": trace_id})
    assert total == 1
    row = rows[0]
    assert row["traceId"] == trace_id
    assert (row["operator"], row["tenantId"], row["operation"]) == ("admin", tenant_id, "updateTenant")
    assert (row["success"], row["error"]) == (True, "")
    assert without_nones(row["variables"]) == {"updateTenant": {"input": {"id": tenant_id, "remark": "audited"}}}
    assert row["durationMs"] >= 0 and row["createdAt"]


async def test_queries_write_no_audit_row(api: ApiHarness) -> None:
    r = await api.post("{ me { account { id } } }", token=api.admin_token)
    assert await audit_rows(api, {"traceId": r.headers["X-Trace-Id"]}) == (0, [])


async def test_one_row_names_every_root_field(api: ApiHarness) -> None:
    code = unique("t")
    r = await api.post(
        """mutation($t: CreateTenantInput!, $d: CreateDictInput!) {
             first: createTenant(input: $t) { errors { code } }
             second: createDict(input: $d) { errors { code } } }""",
        {"t": {"name": "X", "code": code}, "d": {"code": unique("d"), "dictValue": "v", "dictLabel": "l"}},
        token=api.admin_token)
    total, rows = await audit_rows(api, {"traceId": r.headers["X-Trace-Id"]})
    assert total == 1
    assert rows[0]["operation"] == "createTenant,createDict"
    assert set(rows[0]["variables"]) == {"createTenant", "createDict"}


async def test_failed_mutations_are_audited_with_their_error(api: ApiHarness) -> None:
    code = unique("t")
    tenant_id = await api.create_tenant(code)
    name = unique("u")
    _, token = await api.create_user(name, {tenant_id: "member"})

    typed = await api.post(CREATE_TENANT, {"i": {"name": "X", "code": code}}, token=api.admin_token)
    _, rows = await audit_rows(api, {"traceId": typed.headers["X-Trace-Id"]})
    assert [(r["success"], r["operation"]) for r in rows] == [(False, "createTenant")]
    assert "DUPLICATE" in rows[0]["error"] and code in rows[0]["error"]

    forbidden = await api.post(CREATE_TENANT, {"i": {"name": "X", "code": unique("t")}}, token=token,
                               tenant=tenant_id)
    _, rows = await audit_rows(api, {"traceId": forbidden.headers["X-Trace-Id"]})
    assert [(r["success"], r["operator"], r["tenantId"]) for r in rows] == [(False, name, tenant_id)]
    assert "administrator" in rows[0]["error"]

    anonymous = await api.post(CREATE_TENANT, {"i": {"name": "X", "code": unique("t")}})
    _, rows = await audit_rows(api, {"traceId": anonymous.headers["X-Trace-Id"]})
    assert [(r["success"], r["operator"], r["tenantId"]) for r in rows] == [(False, "anonymous", None)]

    bad_login = await api.post("mutation { login(input: {username: \"nobody-x\", password: \"wrong-pass\"}) "
                               "{ token errors { code } } }")
    _, rows = await audit_rows(api, {"traceId": bad_login.headers["X-Trace-Id"]})
    assert [(r["success"], r["operator"], r["operation"]) for r in rows] == [(False, "nobody-x", "login")]
    assert "INVALID_CREDENTIALS" in rows[0]["error"]


async def test_secrets_are_masked_inline_and_as_variables(api: ApiHarness) -> None:
    inline_secret, variable_secret, update_secret = (f"secret-{unique(k)}" for k in ("inline", "var", "upd"))
    name_inline, name_var = unique("u"), unique("u")
    inline = await api.post(
        f'mutation {{ createAccount(input: {{username: "{name_inline}", password: "{inline_secret}"}}) '
        "{ account { id } errors { code } } }", token=api.admin_token)
    account_id = inline.json()["data"]["createAccount"]["account"]["id"]
    by_variable = await api.post(CREATE_ACCOUNT, {"i": {"username": name_var, "password": variable_secret}},
                                 token=api.admin_token)
    update = await api.post(UPDATE_ACCOUNT, {"i": {"id": account_id, "password": update_secret, "nickname": "n"}},
                            token=api.admin_token)

    expected = {
        inline: {"createAccount": {"input": {"username": name_inline, "password": "***", "email": "",
                                             "nickname": "", "isPlatformAdmin": False}}},
        by_variable: {"createAccount": {"input": {"username": name_var, "password": "***", "email": "",
                                                  "nickname": "", "isPlatformAdmin": False}}},
        update: {"updateAccount": {"input": {"id": account_id, "password": "***", "nickname": "n"}}},
    }
    for response, variables in expected.items():
        _, rows = await audit_rows(api, {"traceId": response.headers["X-Trace-Id"]})
        assert [without_nones(r["variables"]) for r in rows] == [variables]

    stored = " ".join(json.dumps(v) for v in await SysAudit.all().values_list("variables", flat=True))
    for secret in (inline_secret, variable_secret, update_secret):
        assert secret not in stored


async def test_audit_filters_and_pagination(api: ApiHarness) -> None:
    tenant_id = await api.create_tenant(unique("t"))
    name = unique("auditor")
    _, token = await api.create_user(name, admin=True)  # row 1: login
    code = unique("t")
    ok = await api.post(CREATE_TENANT, {"i": {"name": "X", "code": code}}, token=token)  # row 2
    failed = await api.post(CREATE_TENANT, {"i": {"name": "X", "code": code}}, token=token)  # row 3
    in_tenant = await api.post(UPDATE_TENANT, {"i": {"id": tenant_id, "remark": "x"}}, token=token,
                               tenant=tenant_id)  # row 4
    assert ok.json()["data"]["createTenant"]["errors"] == []
    assert failed.json()["data"]["createTenant"]["errors"][0]["code"] == "DUPLICATE"

    total, rows = await audit_rows(api, {"operator": name})
    assert total == 4
    assert [r["operation"] for r in rows] == ["updateTenant", "createTenant", "createTenant", "login"]
    assert [int(r["id"]) for r in rows] == sorted((int(r["id"]) for r in rows), reverse=True)  # newest first
    login_row, newest = rows[-1], rows[0]

    def trace_ids(found: list[dict[str, Any]]) -> list[str]:
        return [r["traceId"] for r in found]

    assert trace_ids((await audit_rows(api, {"operator": name, "success": False}))[1]) == [
        failed.headers["X-Trace-Id"]]
    assert (await audit_rows(api, {"operator": name, "success": True}))[0] == 3
    assert (await audit_rows(api, {"operator": name, "operation": "createTenant"}))[0] == 2
    assert trace_ids((await audit_rows(api, {"operator": name, "tenantId": tenant_id}))[1]) == [
        in_tenant.headers["X-Trace-Id"]]
    assert trace_ids((await audit_rows(api, {"traceId": ok.headers["X-Trace-Id"]}))[1]) == [ok.headers["X-Trace-Id"]]
    assert (await audit_rows(api, {"operator": name, "minDurationMs": 0}))[0] == 4
    assert (await audit_rows(api, {"operator": name, "minDurationMs": 10**9}))[0] == 0
    assert (await audit_rows(api, {"operator": unique("nobody")}))[0] == 0

    # Time window: start is inclusive, end exclusive.
    assert (await audit_rows(api, {"operator": name, "start": "2000-01-01T00:00:00+00:00",
                                   "end": "2999-01-01T00:00:00+00:00"}))[0] == 4
    assert (await audit_rows(api, {"operator": name, "start": "2999-01-01T00:00:00+00:00"}))[0] == 0
    assert (await audit_rows(api, {"operator": name, "end": "2000-01-01T00:00:00+00:00"}))[0] == 0
    _, since_newest = await audit_rows(api, {"operator": name, "start": newest["createdAt"]})
    assert newest["id"] in {r["id"] for r in since_newest}
    assert login_row["id"] not in {r["id"] for r in since_newest}
    assert (await audit_rows(api, {"operator": name, "end": login_row["createdAt"]}))[0] == 0

    pages = [await audit_rows(api, {"operator": name}, offset=offset, limit=3) for offset in (0, 3, 6)]
    assert [total for total, _ in pages] == [4, 4, 4]
    assert [[r["id"] for r in page] for _, page in pages] == [[r["id"] for r in rows[:3]], [rows[3]["id"]], []]


async def test_maintainer_sees_only_their_tenants_rows_and_member_is_forbidden(api: ApiHarness) -> None:
    mine, other = await api.create_tenant(unique("t")), await api.create_tenant(unique("t"))
    _, maintainer = await api.create_user(unique("m"), {mine: "maintainer", other: "member"})
    _, member = await api.create_user(unique("u"), {mine: "member"})
    for tenant_id in (mine, other):
        await api.post(UPDATE_TENANT, {"i": {"id": tenant_id, "remark": "x"}}, token=api.admin_token,
                       tenant=tenant_id)

    total, rows = await audit_rows(api, {}, token=maintainer, tenant=mine)
    assert total >= 1
    assert {r["tenantId"] for r in rows} == {mine}
    assert any(r["operation"] == "updateTenant" for r in rows)
    # Membership changes name their tenant in the input, and are shown to that tenant's maintainers too.
    assert any(r["operation"] == "setTenantMembership" for r in rows)
    # Asking for another tenant's rows through the filter shows nothing.
    assert await audit_rows(api, {"tenantId": other}, token=maintainer, tenant=mine) == (0, [])

    pagination = {"p": {"limit": 5}}
    for who, tenant in ((maintainer, other), (maintainer, None), (member, mine)):
        body = await api.gql(AUDIT_LOGS, pagination, token=who, tenant=tenant)
        assert body["data"] is None
        assert top_level_codes(body) == ["FORBIDDEN"], tenant


# --- system dictionary ------------------------------------------------------------------------
async def create_dict(api: ApiHarness, **values: Any) -> dict[str, Any]:
    payload = await mutate(api, CREATE_DICT, {"i": values}, "createDict")
    assert payload["errors"] == [], payload
    return dict(payload["entry"])


async def test_tree_returns_nested_entries_sorted(api: ApiHarness) -> None:
    root = await create_dict(api, code="model_type", dictValue="model_type", dictLabel="Model type")
    chat = await create_dict(api, parentId=root["id"], code="model_type", dictValue="chat", dictLabel="Chat", sort=2)
    await create_dict(api, parentId=root["id"], code="model_type", dictValue="completion", dictLabel="Completion",
                      sort=3)
    await create_dict(api, parentId=root["id"], code="model_type", dictValue="embedding", dictLabel="Embedding",
                      sort=1)
    await create_dict(api, parentId=chat["id"], code="model_type", dictValue="chat-b", dictLabel="Chat B", sort=5)
    await create_dict(api, parentId=chat["id"], code="model_type", dictValue="chat-a", dictLabel="Chat A", sort=4)
    await create_dict(api, code=unique("other"), dictValue="x", dictLabel="Not asked for")

    data = await api.ok("""{ tree(codes: ["model_type"]) { id code dictLabel
                               children { dictLabel parentId children { dictLabel children { id } } } } }""",
                        token=api.admin_token)
    assert data["tree"] == [{
        "id": root["id"], "code": "model_type", "dictLabel": "Model type",
        "children": [
            {"dictLabel": "Embedding", "parentId": root["id"], "children": []},
            {"dictLabel": "Chat", "parentId": root["id"], "children": [
                {"dictLabel": "Chat A", "children": []}, {"dictLabel": "Chat B", "children": []}]},
            {"dictLabel": "Completion", "parentId": root["id"], "children": []},
        ],
    }]
    assert (await api.ok('{ tree(codes: ["no-such-code"]) { id } }', token=api.admin_token))["tree"] == []


async def test_dict_value_is_checked_against_its_type(api: ApiHarness) -> None:
    code = unique("d")
    bad_int = await mutate(api, CREATE_DICT, {"i": {"code": code, "dictValue": "abc", "dictLabel": "n",
                                                    "dictType": "INT"}}, "createDict")
    assert bad_int["entry"] is None
    assert [(e["field"], e["code"]) for e in bad_int["errors"]] == [("dictValue", "INVALID")]
    bad_bool = await mutate(api, CREATE_DICT, {"i": {"code": code, "dictValue": "maybe", "dictLabel": "b",
                                                     "dictType": "BOOL"}}, "createDict")
    assert codes(bad_bool) == ["INVALID"]

    entry = await create_dict(api, code=code, dictValue="42", dictLabel="n", dictType="INT")
    assert (entry["dictValue"], entry["dictType"]) == ("42", "INT")
    to_text = await mutate(api, UPDATE_DICT, {"i": {"id": entry["id"], "dictValue": "abc"}}, "updateDict")
    assert [(e["field"], e["code"]) for e in to_text["errors"]] == [("dictValue", "INVALID")]
    retyped = await mutate(api, UPDATE_DICT, {"i": {"id": entry["id"], "dictValue": "abc", "dictType": "STRING"}},
                           "updateDict")
    assert retyped["errors"] == []
    assert (retyped["entry"]["dictValue"], retyped["entry"]["dictType"]) == ("abc", "STRING")

    orphan = await mutate(api, CREATE_DICT, {"i": {"code": code, "dictValue": "v", "dictLabel": "l",
                                                   "parentId": "987654321"}}, "createDict")
    assert [(e["field"], e["code"]) for e in orphan["errors"]] == [("parentId", "NOT_FOUND")]


async def test_deleting_a_parent_deletes_its_descendants(api: ApiHarness) -> None:
    code = unique("d")
    root = await create_dict(api, code=code, dictValue="root", dictLabel="root")
    child = await create_dict(api, parentId=root["id"], code=code, dictValue="child", dictLabel="child")
    await create_dict(api, parentId=child["id"], code=code, dictValue="grandchild", dictLabel="grandchild")
    keeper = await create_dict(api, code=code, dictValue="keeper", dictLabel="keeper")
    assert (await api.ok(DICTS, {"f": {"code": code}}, token=api.admin_token))["dicts"]["totalCount"] == 4

    assert await mutate(api, DELETE_DICT, {"id": root["id"]}, "deleteDict") == {"ok": True, "errors": []}
    left = (await api.ok(DICTS, {"f": {"code": code}}, token=api.admin_token))["dicts"]
    assert [e["id"] for e in left["items"]] == [keeper["id"]]
    assert codes(await mutate(api, DELETE_DICT, {"id": root["id"]}, "deleteDict")) == ["NOT_FOUND"]


async def test_dicts_filters(api: ApiHarness) -> None:
    code, other_code = unique("d"), unique("d")
    root = await create_dict(api, code=code, dictValue="root", dictLabel="Root entry")
    second = await create_dict(api, parentId=root["id"], code=code, dictValue="b", dictLabel="Beta label", sort=2)
    first = await create_dict(api, parentId=root["id"], code=code, dictValue="a", dictLabel="Alpha label", sort=1)
    await create_dict(api, code=other_code, dictValue="x", dictLabel="Beta label elsewhere")

    def ids(data: dict[str, Any]) -> list[str]:
        return [e["id"] for e in data["dicts"]["items"]]

    by_code = await api.ok(DICTS, {"f": {"code": code}}, token=api.admin_token)
    assert by_code["dicts"]["totalCount"] == 3
    by_parent = await api.ok(DICTS, {"f": {"parentId": root["id"]}}, token=api.admin_token)
    assert ids(by_parent) == [first["id"], second["id"]]  # by sort
    by_label = await api.ok(DICTS, {"f": {"label": "beta label"}}, token=api.admin_token)
    assert second["id"] in ids(by_label) and first["id"] not in ids(by_label)
    both = await api.ok(DICTS, {"f": {"code": code, "label": "Beta"}}, token=api.admin_token)
    assert ids(both) == [second["id"]]
    paged = await api.ok(DICTS, {"f": {"code": code}, "p": {"offset": 1, "limit": 1}}, token=api.admin_token)
    assert paged["dicts"]["totalCount"] == 3 and len(paged["dicts"]["items"]) == 1

    # Any signed-in account may read the dictionary.
    _, token = await api.create_user(unique("u"))
    assert ids(await api.ok(DICTS, {"f": {"parentId": root["id"]}}, token=token)) == [first["id"], second["id"]]
