"""A walk over the whole schema: every root field except login refuses an anonymous caller and a member of
another tenant. Operations are generated from the schema, so a field added later is covered without editing
this file. Also data-level isolation between tenants (lists, lookups, audit rows).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import graphql
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    get_named_type,
    is_leaf_type,
    is_required_argument,
    is_required_input_field,
)

from aigc_admin.resolvers.root import build_schema
from tests.support.api import ApiHarness, unique
from tests.support.live import LiveServer, expect_ack, first_error, live_server, subscribe, ws_session
from tests.support.redis_server import RedisServer

PUBLIC_FIELDS = {"login"}
STRAWBERRY_SCHEMA = build_schema()
SCHEMA = graphql.build_schema(STRAWBERRY_SCHEMA.as_str())
# Literals for scalars; a new custom scalar used by a required argument must be added here.
SCALAR_LITERALS = {
    "ID": '"1"', "String": '"x"', "Int": "1", "Float": "1.0", "Boolean": "true",
    "DateTime": '"2024-01-01T00:00:00+00:00"', "Date": '"2024-01-01"', "Time": '"00:00:00"',
    "JSON": "{}", "UUID": '"00000000-0000-0000-0000-000000000001"', "Decimal": '"1"',
    "Upload": '"x"',  # the caller is refused before the value matters
}


def dummy_literal(type_: GraphQLInputType) -> str:
    """A GraphQL literal of ``type_``: required input fields filled in recursively, optional ones left out."""
    if isinstance(type_, GraphQLNonNull):
        return dummy_literal(type_.of_type)
    if isinstance(type_, GraphQLList):
        return f"[{dummy_literal(type_.of_type)}]"
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        fields = [f"{name}: {dummy_literal(f.type)}" for name, f in type_.fields.items() if is_required_input_field(f)]
        return "{" + ", ".join(fields) + "}"
    if isinstance(type_, GraphQLScalarType):
        if type_.name not in SCALAR_LITERALS:
            raise AssertionError(f"add a literal for the scalar {type_.name} to SCALAR_LITERALS")
        return SCALAR_LITERALS[type_.name]
    raise AssertionError(f"unexpected input type {type_}")


def root_type(operation: str) -> GraphQLObjectType:
    found = {"query": SCHEMA.query_type, "mutation": SCHEMA.mutation_type,
             "subscription": SCHEMA.subscription_type}[operation]
    assert found is not None, operation
    return found


def minimal_operation(operation: str, name: str) -> str:
    """``operation { name(required args) { __typename } }``: the smallest valid document for a root field."""
    field = root_type(operation).fields[name]
    args = [f"{arg}: {dummy_literal(a.type)}" for arg, a in field.args.items() if is_required_argument(a)]
    arguments = f"({', '.join(args)})" if args else ""
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    return f"{operation} {{ {name}{arguments}{selection} }}"


def root_fields(*operations: str) -> list[tuple[str, str]]:
    return [(op, name) for op in operations for name in root_type(op).fields]


GUARDED = [(op, name) for op, name in root_fields("query", "mutation") if name not in PUBLIC_FIELDS]
SUBSCRIPTIONS = root_fields("subscription")


def field_id(param: tuple[str, str]) -> str:
    return f"{param[0]}.{param[1]}"


def codes(body: dict[str, Any]) -> list[str | None]:
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


def assert_refused(body: dict[str, Any], name: str, code: str) -> None:
    assert codes(body) == [code], body
    assert body["errors"][0]["path"] == [name], body
    assert body["errors"][0]["message"], body
    assert (body.get("data") or {}).get(name) is None, body


# --- the walk itself ----------------------------------------------------------------------------
def test_generated_operations_are_valid_documents() -> None:
    """The walk is only as good as its documents: each must pass GraphQL validation against the schema."""
    for operation, name in root_fields("query", "mutation", "subscription"):
        document = minimal_operation(operation, name)
        assert graphql.validate(SCHEMA, graphql.parse(document)) == [], document


def test_every_field_but_login_declares_permissions() -> None:
    public: set[str] = set()
    for type_name in ("Query", "Mutation", "Subscription"):
        definition = STRAWBERRY_SCHEMA.get_type_by_name(type_name)
        assert definition is not None and hasattr(definition, "fields"), type_name
        for field in definition.fields:
            if not field.permission_classes:
                public.add(STRAWBERRY_SCHEMA.config.name_converter.get_graphql_name(field))
    assert public == PUBLIC_FIELDS


def test_the_walk_covers_every_root_field() -> None:
    walked = {name for _, name in GUARDED + SUBSCRIPTIONS} | PUBLIC_FIELDS
    every = {name for op in ("query", "mutation", "subscription") for name in root_type(op).fields}
    assert walked == every
    assert {"me", "tenants", "createTenant", "auditLogAdded"} <= walked  # the walk sees real fields


@pytest.mark.parametrize("field", GUARDED, ids=field_id)
async def test_anonymous_caller_is_unauthenticated(api: ApiHarness, field: tuple[str, str]) -> None:
    operation, name = field
    body = await api.gql(minimal_operation(operation, name))
    assert_refused(body, name, "UNAUTHENTICATED")


async def test_login_is_open_to_anonymous_callers(api: ApiHarness) -> None:
    body = await api.gql(minimal_operation("mutation", "login").replace("__typename", "__typename errors { code }"))
    assert "errors" not in body, body
    assert body["data"]["login"]["errors"][0]["code"] == "INVALID_CREDENTIALS"


@dataclass
class Tenants:
    a: str
    b: str
    b_member: str  # token
    b_maintainer: str  # token


@pytest.fixture(scope="module")
async def tenants(api: ApiHarness) -> Tenants:
    a = await api.create_tenant(unique("walk-a"))
    b = await api.create_tenant(unique("walk-b"))
    _, member = await api.create_user(unique("walk-member"), {b: "member"})
    _, maintainer = await api.create_user(unique("walk-maint"), {b: "maintainer"})
    return Tenants(a, b, member, maintainer)


@pytest.mark.parametrize("field", GUARDED, ids=field_id)
@pytest.mark.parametrize("role", ["member", "maintainer"])
async def test_other_tenants_member_is_forbidden(api: ApiHarness, tenants: Tenants, role: str,
                                                 field: tuple[str, str]) -> None:
    operation, name = field
    token = tenants.b_member if role == "member" else tenants.b_maintainer
    body = await api.gql(minimal_operation(operation, name), token=token, tenant=tenants.a)
    assert_refused(body, name, "FORBIDDEN")


# --- subscriptions over a real WebSocket ---------------------------------------------------------
@pytest.fixture(scope="module")
def live(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("walk-live"), redis_server.url) as server:
        yield server


@pytest.mark.parametrize("field", SUBSCRIPTIONS, ids=field_id)
async def test_anonymous_subscription_is_unauthenticated(live: LiveServer, field: tuple[str, str]) -> None:
    operation, name = field
    async with ws_session(live) as ws:
        await expect_ack(ws)
        op_id = await subscribe(ws, minimal_operation(operation, name))
        message = await first_error(ws, op_id)
        assert [(e.get("extensions") or {}).get("code") for e in message["payload"]] == ["UNAUTHENTICATED"]


# --- data-level isolation -----------------------------------------------------------------------
async def test_member_lists_only_own_tenants(api: ApiHarness, tenants: Tenants) -> None:
    data = await api.ok("{ tenants(pagination: {limit: 100}) { totalCount items { id } } }", token=tenants.b_member)
    ids = [t["id"] for t in data["tenants"]["items"]]
    assert ids == [tenants.b]
    assert data["tenants"]["totalCount"] == 1
    everything = await api.ok("{ tenants(pagination: {limit: 100}) { items { id } } }", token=api.admin_token)
    assert tenants.a in [t["id"] for t in everything["tenants"]["items"]]


async def test_other_tenant_looks_missing(api: ApiHarness, tenants: Tenants) -> None:
    query = "query($id: ID!) { tenant(id: $id) { id code } }"
    other = await api.ok(query, {"id": tenants.a}, token=tenants.b_member)
    assert other["tenant"] is None
    own = await api.ok(query, {"id": tenants.b}, token=tenants.b_member)
    assert own["tenant"]["id"] == tenants.b


async def test_maintainer_sees_only_own_tenants_audit_rows(api: ApiHarness, tenants: Tenants) -> None:
    update = "mutation($i: UpdateTenantInput!) { updateTenant(input: $i) { errors { code } } }"
    marker_a, marker_b = unique("audit-a"), unique("audit-b")
    for tenant, marker in ((tenants.a, marker_a), (tenants.b, marker_b)):
        done = await api.ok(update, {"i": {"id": tenant, "remark": marker}}, token=api.admin_token, tenant=tenant)
        assert done["updateTenant"]["errors"] == []

    logs = ("query($f: AuditLogFilter) { auditLogs(filter: $f, pagination: {limit: 100}) "
            "{ totalCount items { tenantId operation variables } } }")
    seen = await api.ok(logs, {"f": {"operation": "updateTenant"}}, token=tenants.b_maintainer, tenant=tenants.b)
    items = seen["auditLogs"]["items"]
    assert {row["tenantId"] for row in items} == {tenants.b}
    assert marker_b in json.dumps(items)
    assert marker_a not in json.dumps(items)

    # asking for tenant A's rows explicitly does not widen what B's maintainer sees
    asked = await api.ok(logs, {"f": {"tenantId": tenants.a}}, token=tenants.b_maintainer, tenant=tenants.b)
    assert asked["auditLogs"] == {"totalCount": 0, "items": []}

    # the admin sees tenant A's row: it was written, with tenant A
    admin = await api.ok(logs, {"f": {"tenantId": tenants.a, "operation": "updateTenant"}}, token=api.admin_token)
    assert marker_a in json.dumps(admin["auditLogs"]["items"])

    # a plain member of B is not allowed to read B's audit log
    member = await api.gql(logs, {"f": None}, token=tenants.b_member, tenant=tenants.b)
    assert codes(member) == ["FORBIDDEN"]
