"""Bad input of every kind is answered with 200 or 400 and a clear JSON message, never a 500, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aigc_admin.adapters.security import JwtTokens
from tests.support.api import ApiHarness, unique
from tests.support.live import LiveServer, live_server
from tests.support.redis_server import start_redis

MAX_DEPTH = 15  # graphql.max.depth default
MAX_ALIASES = 30  # graphql.max.aliases default
MAX_TOKENS = 2000  # graphql.max.tokens default
ME = "{ me { account { username } } }"
COUNT_TENANTS = "{ tenants(pagination: {limit: 1}) { totalCount } }"
COUNT_ACCOUNTS = "{ accounts(pagination: {limit: 1}) { totalCount } }"
CREATE_TENANT = ("mutation($i: CreateTenantInput!) { createTenant(input: $i) "
                 "{ tenant { id } errors { field code message } } }")
UPDATE_TENANT = ("mutation($i: UpdateTenantInput!) { updateTenant(input: $i) "
                 "{ tenant { id } errors { field code message } } }")
CREATE_ACCOUNT = ("mutation($i: CreateAccountInput!) { createAccount(input: $i) "
                  "{ account { id } errors { field code message } } }")


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The checks every answer must pass: 200 or 400, JSON, and a non-empty message for each error."""
    assert response.status_code in (200, 400), (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    for error in body.get("errors") or []:
        assert isinstance(error.get("message"), str) and error["message"].strip(), body
        assert "Unexpected error" not in error["message"], body
    return body


def codes(body: dict[str, Any]) -> list[str | None]:
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


def messages(body: dict[str, Any]) -> str:
    return " | ".join(e["message"] for e in body.get("errors") or [])


async def count(api: ApiHarness, query: str) -> int:
    data = await api.ok(query, token=api.admin_token)
    return int(next(iter(data.values()))["totalCount"])


async def admin_post(api: ApiHarness, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return json_body(await api.post(query, variables, token=api.admin_token))


# --- malformed requests ---------------------------------------------------------------------------
@pytest.mark.parametrize(("content", "expected"), [
    (b'{"query": "{ me { account { id } } }"', "JSON"),
    (b"not json at all", "JSON"),
    (b'{"variables": {}}', "query"),
    (b"[1, 2]", "atch"),
])
async def test_unreadable_body_is_a_json_400(api: ApiHarness, content: bytes, expected: str) -> None:
    r = await api.client.post("/graphql", content=content, headers={"content-type": "application/json"})
    body = json_body(r)
    assert r.status_code == 400
    assert expected in messages(body)
    assert body.get("data") is None


@pytest.mark.parametrize(("query", "variables", "expected"), [
    ("{ me { ", {}, "Syntax Error"),
    ("mutation { createTenant(input: {name: \"x\" code: }) { errors { code } } }", {}, "Syntax Error"),
    ("{ nope }", {}, "Cannot query field 'nope'"),
    ("{ me { account { password } } }", {}, "Cannot query field 'password'"),
    ("query($id: ID!) { tenant(id: $id) { id } }", {}, "$id"),
    ("query($p: Pagination) { tenants(pagination: $p) { totalCount } }", {"p": {"limit": "abc"}}, "$p"),
    ("query($id: ID!) { tenant(id: $id) { id } }", {"id": {"nested": 1}}, "$id"),
    ("{ tenant(id: 12.5) { id } }", {}, "ID cannot represent"),
])
async def test_invalid_documents_are_explained(api: ApiHarness, query: str, variables: dict[str, Any],
                                               expected: str) -> None:
    before = await count(api, COUNT_TENANTS)
    body = await admin_post(api, query, variables)
    assert body.get("data") is None, body
    assert expected in messages(body), body
    assert await count(api, COUNT_TENANTS) == before


def nested_dicts(depth: int) -> str:
    """``dicts`` with ``items`` and ``children`` nested so that the deepest field sits at ``depth``."""
    inner = "code"
    for _ in range(depth - 3):
        inner = f"children {{ {inner} }}"
    return f"{{ dicts {{ items {{ {inner} }} }} }}"


async def test_depth_limit(api: ApiHarness) -> None:
    allowed = await admin_post(api, nested_dicts(MAX_DEPTH))
    assert "errors" not in allowed, allowed
    refused = await admin_post(api, nested_dicts(MAX_DEPTH + 2))
    assert refused.get("data") is None
    assert "depth" in messages(refused).lower(), refused


async def test_introspection_fields_count_toward_the_depth_limit(api: ApiHarness) -> None:
    from graphql import get_introspection_query

    from aigc_admin.resolvers.limits import INTROSPECTION_DEPTH

    assert INTROSPECTION_DEPTH <= MAX_DEPTH  # GraphiQL's own introspection query passes the default limit
    standard = await admin_post(api, get_introspection_query(descriptions=True))
    assert "errors" not in standard and standard["data"]["__schema"]["types"], standard
    inner = "name"
    for _ in range(MAX_DEPTH - 3):
        inner = f"ofType {{ {inner} }}"
    at_limit = "{ __schema { types { " + inner + " } } }"  # __schema, types, then ofType … name
    assert "errors" not in await admin_post(api, at_limit)
    refused = await admin_post(api, "{ __schema { types { ofType { " + inner + " } } } }")
    assert refused.get("data") is None and "depth" in messages(refused).lower(), refused


async def test_alias_limit(api: ApiHarness) -> None:
    def aliases(n: int) -> str:
        return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"

    allowed = await admin_post(api, aliases(MAX_ALIASES))
    assert "errors" not in allowed and len(allowed["data"]) == MAX_ALIASES, allowed
    refused = await admin_post(api, aliases(MAX_ALIASES + 1))
    assert refused.get("data") is None
    assert "alias" in messages(refused).lower(), refused


async def test_token_limit(api: ApiHarness) -> None:
    near_limit = '{ tree(codes: [' + '"no-such-code" ' * (MAX_TOKENS - 20) + ']) { code } }'
    allowed = await admin_post(api, near_limit)
    assert allowed == {"data": {"tree": []}}
    huge = "mutation { " + " ".join(f"t{i}: createTenant(input: {{name: \"n\", code: \"c{i}\"}}) {{ __typename }}"
                                    for i in range(400)) + " }"
    before = await count(api, COUNT_TENANTS)
    refused = await admin_post(api, huge)
    assert refused.get("data") is None
    assert "token" in messages(refused).lower(), refused
    assert await count(api, COUNT_TENANTS) == before


# --- ids and typed mutation errors ------------------------------------------------------------------
async def test_non_numeric_ids(api: ApiHarness) -> None:
    found = await admin_post(api, '{ tenant(id: "abc") { id } account(id: "abc") { id } }')
    assert found == {"data": {"tenant": None, "account": None}}
    updated = await admin_post(api, UPDATE_TENANT, {"i": {"id": "abc", "name": "renamed"}})
    assert updated["data"]["updateTenant"]["tenant"] is None
    assert updated["data"]["updateTenant"]["errors"] == [
        {"field": "id", "code": "INVALID", "message": "id must be a numeric id from 0 to 9223372036854775807"}]
    deleted = await admin_post(api, 'mutation { deleteTenant(id: "-1") { ok errors { field code } } }')
    assert deleted["data"]["deleteTenant"] == {"ok": False, "errors": [{"field": "id", "code": "INVALID"}]}


@pytest.mark.parametrize(("mutation", "payload"), [
    ('updateTenant(input: {id: "987654321", name: "x"}) { errors { field code message } }', "updateTenant"),
    ('deleteTenant(id: "987654321") { errors { field code message } }', "deleteTenant"),
    ('updateAccount(input: {id: "987654321", nickname: "x"}) { errors { field code message } }', "updateAccount"),
    ('deleteAccount(id: "987654321") { errors { field code message } }', "deleteAccount"),
    ('updateDict(input: {id: "987654321", code: "x"}) { errors { field code message } }', "updateDict"),
    ('deleteDict(id: "987654321") { errors { field code message } }', "deleteDict"),
    ('setTenantMembership(input: {tenantId: "987654321", accountId: "1", role: MEMBER}) '
     '{ errors { field code message } }', "setTenantMembership"),
])
async def test_unknown_ids_are_not_found(api: ApiHarness, mutation: str, payload: str) -> None:
    body = await admin_post(api, f"mutation {{ {mutation} }}")
    assert "errors" not in body, body
    errors = body["data"][payload]["errors"]
    assert [e["code"] for e in errors] == ["NOT_FOUND"], errors
    assert "987654321" in errors[0]["message"]


async def test_duplicate_and_invalid_tenant_codes_create_nothing(api: ApiHarness) -> None:
    code = unique("dup")
    await api.create_tenant(code)
    before = await count(api, COUNT_TENANTS)

    again = await admin_post(api, CREATE_TENANT, {"i": {"name": "Again", "code": code}})
    assert again["data"]["createTenant"]["tenant"] is None
    assert [(e["field"], e["code"]) for e in again["data"]["createTenant"]["errors"]] == [("code", "DUPLICATE")]

    for bad in ("Bad Code!", "", "-leading-dash", "x" * 65, "ÜMLAUT"):
        body = await admin_post(api, CREATE_TENANT, {"i": {"name": "Bad", "code": bad}})
        errors = body["data"]["createTenant"]["errors"]
        assert [(e["field"], e["code"]) for e in errors] == [("code", "INVALID")], (bad, errors)
        assert errors[0]["message"]
    empty_name = await admin_post(api, CREATE_TENANT, {"i": {"name": "  ", "code": unique("ok")}})
    assert [e["code"] for e in empty_name["data"]["createTenant"]["errors"]] == ["INVALID"]

    assert await count(api, COUNT_TENANTS) == before


async def test_weak_password_creates_no_account(api: ApiHarness) -> None:
    before = await count(api, COUNT_ACCOUNTS)
    username = unique("weak")
    body = await admin_post(api, CREATE_ACCOUNT, {"i": {"username": username, "password": "short"}})
    assert body["data"]["createAccount"]["account"] is None
    errors = body["data"]["createAccount"]["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("password", "WEAK_PASSWORD")]
    assert "short" not in errors[0]["message"]  # the password itself is never echoed
    assert await count(api, COUNT_ACCOUNTS) == before
    found = await api.ok("query($s: String) { accounts(search: $s) { totalCount } }", {"s": username},
                         token=api.admin_token)
    assert found["accounts"]["totalCount"] == 0


# --- credentials and tenant header -----------------------------------------------------------------
def bad_tokens(api: ApiHarness) -> dict[str, str]:
    s = api.settings
    return {
        "garbage": "garbage",
        "not-a-jwt-structure": "a.b.c",
        "expired": JwtTokens(s.jwt_secret(), issuer=s.server_name, ttl_seconds=-10).issue(1, "admin"),
        "forged": JwtTokens("another-secret-" + "y" * 32, issuer=s.server_name, ttl_seconds=600).issue(1, "admin"),
        "unknown-account": JwtTokens(s.jwt_secret(), issuer=s.server_name, ttl_seconds=600).issue(987654321, "ghost"),
    }


@pytest.mark.parametrize("kind", ["garbage", "not-a-jwt-structure", "expired", "forged", "unknown-account"])
async def test_bad_bearer_tokens_are_unauthenticated(api: ApiHarness, kind: str) -> None:
    token = bad_tokens(api)[kind]
    for headers in ({"Authorization": f"Bearer {token}"}, {"X-Token": token}):
        body = json_body(await api.post(ME, headers=headers))
        assert body["data"] is None
        assert codes(body) == ["UNAUTHENTICATED"], body
        assert messages(body)


async def test_bad_token_cannot_mutate(api: ApiHarness) -> None:
    before = await count(api, COUNT_TENANTS)
    body = json_body(await api.post(CREATE_TENANT, {"i": {"name": "X", "code": unique("nope")}},
                                    headers={"Authorization": "Bearer garbage"}))
    assert codes(body) == ["UNAUTHENTICATED"]
    assert await count(api, COUNT_TENANTS) == before


@pytest.mark.parametrize("header", ["abc", "1.5", "0x1", "-5", "0", "99999999999999999999999"])
@pytest.mark.parametrize("query", [ME, COUNT_ACCOUNTS])
async def test_malformed_tenant_header_is_forbidden(api: ApiHarness, header: str, query: str) -> None:
    """Even for a platform administrator, who may otherwise name any tenant, on any field."""
    body = json_body(await api.post(query, token=api.admin_token, headers={"X-Tenant-Id": header}))
    assert body["data"] is None
    assert codes(body) == ["FORBIDDEN"], body
    assert "X-Tenant-Id" in messages(body)


async def test_empty_tenant_header_names_no_tenant(api: ApiHarness) -> None:
    body = json_body(await api.post(ME, token=api.admin_token, headers={"X-Tenant-Id": ""}))
    assert body["data"]["me"]["account"]["username"] == "admin"


async def test_out_of_range_tenant_header_cannot_lose_the_audit_row(api: ApiHarness) -> None:
    """A mutation refused for its X-Tenant-Id is still audited (a BIGINT overflow once made the row vanish)."""
    marker = unique("range")
    body = json_body(await api.post(UPDATE_TENANT, {"i": {"id": "1", "remark": marker}}, token=api.admin_token,
                                    tenant="99999999999999999999999"))
    assert codes(body) == ["FORBIDDEN"]
    logs = await api.ok("{ auditLogs(filter: {operation: \"updateTenant\"}, pagination: {limit: 100}) "
                        "{ items { variables success tenantId } } }", token=api.admin_token)
    rows = [row for row in logs["auditLogs"]["items"] if marker in str(row["variables"])]
    assert [(row["success"], row["tenantId"]) for row in rows] == [(False, None)]


# --- masking of unexpected errors ------------------------------------------------------------------
async def test_unexpected_exception_is_masked_with_a_trace_id(api: ApiHarness,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail")

    services = api.services()
    monkeypatch.setattr(services.tenants, "list", boom)
    monkeypatch.setattr(services.tenants, "create", boom)

    for query, variables in ((COUNT_TENANTS, {}), (CREATE_TENANT, {"i": {"name": "X", "code": unique("m")}})):
        r = await api.post(query, variables, token=api.admin_token)
        assert r.status_code == 200, r.text
        assert "secret detail" not in r.text
        body = r.json()
        assert body["data"] is None
        [error] = body["errors"]
        assert error["message"].startswith("Unexpected error")
        trace_id = error["extensions"]["traceId"]
        assert trace_id and trace_id in error["message"]
        assert error["extensions"]["code"] == "INTERNAL_ERROR"
        assert r.headers["X-Trace-Id"] == trace_id


# --- readiness ----------------------------------------------------------------------------------------
@pytest.fixture
def private_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Any]]:
    """A server process with a Redis of its own (a subprocess: the in-process ``api`` app may be alive)."""
    redis = start_redis(tmp_path_factory.mktemp("ready-redis"))
    try:
        with live_server(tmp_path_factory.mktemp("ready-storage"), redis.url) as server:
            yield server, redis
    finally:
        redis.stop()


async def test_readyz_names_redis_while_it_is_down(private_redis_server: tuple[LiveServer, Any]) -> None:
    server, redis = private_redis_server
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        assert (await client.get("/readyz")).status_code == 200
        redis.stop()
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["status"] == "unavailable"
        assert set(down.json()["failing"]) == {"redis"}
        redis.restart()
        up = await client.get("/readyz")
        assert up.status_code == 200, up.text
        assert up.json()["status"] == "ready"
        assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_request_bodies_are_bounded_before_they_are_read(api: ApiHarness) -> None:
    """A body over server.max.body.bytes is refused with 413: at once when its Content-Length says so, and at the
    limit when it comes without one (the rest is never read)."""
    limit = api.settings.server_max_body_bytes
    sent = {"chunks": 0}

    async def endless() -> Any:
        while True:  # a client that would send forever
            sent["chunks"] += 1
            yield b" " * 65536

    big = await api.client.post("/graphql", content=b" " * (limit + 1),
                                headers={"content-type": "application/json"})
    assert big.status_code == 413 and big.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert big.headers["x-trace-id"]
    streamed = await api.client.post("/graphql", content=endless(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert sent["chunks"] <= limit // 65536 + 3  # reading stopped at the limit
    ok = await api.client.post("/graphql", json={"query": "{ __typename }"})
    assert ok.status_code == 200


# --- every ID and String argument of the schema, derived from the SDL (new fields are covered too) ---------------
def _value(gql_type: Any, bad: str) -> str | None:
    """A GraphQL literal for ``gql_type`` where every ID is ``bad`` and every String long; None when the type is
    an input object with a required field we cannot fill (never in this schema)."""
    import graphql

    named = graphql.get_named_type(gql_type)
    if isinstance(gql_type, graphql.GraphQLNonNull):
        gql_type = gql_type.of_type
    if isinstance(gql_type, graphql.GraphQLList):
        inner = _value(gql_type.of_type, bad)
        return None if inner is None else f"[{inner}]"
    if named.name == "ID":
        return json.dumps(bad)
    if named.name == "String":
        return json.dumps("s" * 10_000)
    if named.name in ("Int", "Float"):
        return "1"
    if named.name == "Boolean":
        return "true"
    if named.name in ("DateTime",):
        return '"2030-01-01T00:00:00+00:00"'
    if named.name == "Date":
        return '"2030-01-01"'
    if isinstance(named, graphql.GraphQLEnumType):
        return next(iter(named.values))
    if isinstance(named, graphql.GraphQLInputObjectType):
        parts = []
        for name, field in named.fields.items():
            v = _value(field.type, bad)
            if v is not None:
                parts.append(f"{name}: {v}")
        return "{" + ", ".join(parts) + "}"
    return None


def _documents(bad: str) -> list[str]:
    import graphql

    from aigc_admin.resolvers.root import export_sdl

    schema = graphql.build_schema(export_sdl())
    docs = []
    for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        assert root is not None
        for name, field in root.fields.items():
            if not field.args or name == "uploadFile":
                continue
            args = {a: _value(arg.type, bad) for a, arg in field.args.items()}
            if any(v is None for v in args.values()):
                continue
            docs.append(f"{kind} {{ {name}({', '.join(f'{a}: {v}' for a, v in args.items())}) {{ __typename }} }}")
    return docs


@pytest.mark.parametrize("bad", ["99999999999999999999", "-5", "0", "abc", "¹³", "1e3", " 12 "])
async def test_every_argument_takes_any_id_and_long_strings_without_an_internal_error(api: ApiHarness,
                                                                                      bad: str) -> None:
    tenant = await api.create_tenant(unique("args"))
    docs = _documents(bad)
    assert len(docs) > 60
    for doc in docs:
        r = await api.post(doc, token=api.admin_token, tenant=tenant)
        body = r.json()
        codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]
        assert r.status_code < 500 and "INTERNAL_ERROR" not in codes, (doc[:300], body)
