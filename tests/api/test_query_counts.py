"""Pinned SQL statement counts of list queries: relations go through per-request dataloaders, so the number
of statements of a request does not grow with the number of rows (no N+1).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

from tests.support.api import ApiHarness, unique

TENANTS_WITH_MEMBERS = """
query($s: String) {
  tenants(pagination: {limit: 100}, search: $s) { totalCount items { id code members { username role } } }
}"""
MY_TENANTS = "{ me { account { username } memberships { role tenant { code } } } }"
# Authentication (account + memberships), the page and its count, one batch for all members.
TENANTS_QUERY_BOUND = 5
# Authentication (account + memberships), the account again for `me`, one batch for all tenants.
ME_QUERY_BOUND = 4


# Set while a measured block runs: statements of the app's background tasks (the gateway's routing table is
# rebuilt every 2 s) run in contexts made before it and are not counted; the request's own tasks
# (dataloader batches) are created inside it and inherit the flag.
_MEASURING: contextvars.ContextVar[bool] = contextvars.ContextVar("measuring_sql", default=False)


class StatementLog(logging.Handler):
    """Collects what Tortoise's client logger reports: one record per SQL statement it executes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if _MEASURING.get():
            self.statements.append(record.getMessage())


@contextlib.contextmanager
def sql_statements() -> Iterator[list[str]]:
    logger = logging.getLogger("tortoise.db_client")
    handler = StatementLog()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    token = _MEASURING.set(True)
    try:
        yield handler.statements
    finally:
        _MEASURING.reset(token)
        logger.removeHandler(handler)
        logger.setLevel(previous)


async def tenants_with_members(api: ApiHarness, n: int) -> str:
    """``n`` tenants whose codes share a fresh prefix, each with a maintainer and a member; returns the prefix."""
    prefix = unique("qc")
    tenant_ids = [await api.create_tenant(f"{prefix}-{i}") for i in range(n)]
    for role in ("maintainer", "member"):
        await api.create_user(unique(f"qc-{role}"), dict.fromkeys(tenant_ids, role))
    return prefix


async def count_tenant_list(api: ApiHarness, n: int) -> int:
    prefix = await tenants_with_members(api, n)
    with sql_statements() as statements:
        data = await api.ok(TENANTS_WITH_MEMBERS, {"s": prefix}, token=api.admin_token)
    items = data["tenants"]["items"]
    assert len(items) == data["tenants"]["totalCount"] == n
    assert all(sorted(m["role"] for m in t["members"]) == ["MAINTAINER", "MEMBER"] for t in items), items
    assert statements, "no SQL statement was logged: is the tortoise.db_client logger still the right one?"
    return len(statements)


async def test_tenant_list_with_members_is_constant(api: ApiHarness) -> None:
    few = await count_tenant_list(api, 3)
    many = await count_tenant_list(api, 12)
    assert few == many
    assert many <= TENANTS_QUERY_BOUND


async def count_my_tenants(api: ApiHarness, n: int) -> int:
    tenant_ids = [await api.create_tenant(unique(f"me{n}")) for _ in range(n)]
    _, token = await api.create_user(unique("me"), dict.fromkeys(tenant_ids, "member"))
    with sql_statements() as statements:
        data = await api.ok(MY_TENANTS, token=token)
    memberships = data["me"]["memberships"]
    assert len(memberships) == n
    assert all(m["tenant"]["code"].startswith(f"me{n}-") for m in memberships), memberships
    assert statements
    return len(statements)


async def test_my_memberships_are_constant(api: ApiHarness) -> None:
    one = await count_my_tenants(api, 1)
    five = await count_my_tenants(api, 5)
    assert one == five
    assert five <= ME_QUERY_BOUND


def test_counter_counts_every_statement_and_restores_the_logger() -> None:
    logger = logging.getLogger("tortoise.db_client")
    before = logger.level
    with sql_statements() as statements:
        for i in range(3):
            logger.debug("SELECT %s", i)
    assert statements == ["SELECT 0", "SELECT 1", "SELECT 2"]
    assert logger.level == before


async def test_routing_table_rebuild_is_constant_in_external_models(api: ApiHarness) -> None:
    """The gateway rebuilds its routing table every 2 s: its statements must not grow with the models."""
    from aigc_admin.gateway.routing import load_routes

    async def external(n: int) -> None:
        for _ in range(n):
            await api.ok("mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                         {"i": {"name": unique("ext"), "provider": "EXTERNAL", "baseUrl": "http://127.0.0.1:9/v1",
                                "credentials": "sk-upstream"}}, token=api.admin_token)

    async def count() -> tuple[int, dict[str, str]]:
        with sql_statements() as statements:
            routes = await load_routes(api.services().models, api.services().deployments)
        return len(statements), {name: r.credentials for name, r in routes.items() if not r.local}

    await external(1)
    few, _ = await count()
    await external(6)
    many, credentials = await count()
    assert few == many
    assert len(credentials) >= 7 and set(credentials.values()) == {"sk-upstream"}  # decrypted, one query


ASSISTANTS_WITH_TOOLS = "{ assistants(pagination: {limit: 100}) { totalCount items { name tools { name } } } }"
# Authentication (account + memberships, the tenant header), the page and its count, the tool ids of the page's
# assistants in one query, one batch for all their tools.
ASSISTANTS_QUERY_BOUND = 8


async def count_assistant_list(api: ApiHarness, n: int) -> int:
    """``n`` assistants with two tools each in a fresh tenant; the statements of listing them with their tools."""
    tenant = await api.create_tenant(unique(f"asq{n}"))
    model = await api.ok("mutation($i: CreateModelInput!) { createModel(input: $i) { model { name } } }",
                         {"i": {"name": unique("m"), "provider": "EXTERNAL", "baseUrl": "https://api.example.com/v1",
                                "tenantIds": [tenant]}}, token=api.admin_token)
    tool_ids = []
    for i in range(2):
        made = await api.ok("mutation($i: ToolInput!) { createTool(input: $i) { tool { id } } }",
                            {"i": {"name": f"t{i}", "http": {"url": "https://api.example.com/x"}}},
                            token=api.admin_token, tenant=tenant)
        tool_ids.append(made["createTool"]["tool"]["id"])
    for i in range(n):
        await api.ok("mutation($i: AssistantInput!) { createAssistant(input: $i) { errors { message } } }",
                     {"i": {"name": f"a{i}", "modelName": model["createModel"]["model"]["name"], "toolIds": tool_ids}},
                     token=api.admin_token, tenant=tenant)
    with sql_statements() as statements:
        data = await api.ok(ASSISTANTS_WITH_TOOLS, token=api.admin_token, tenant=tenant)
    items = data["assistants"]["items"]
    assert len(items) == n and all(sorted(t["name"] for t in a["tools"]) == ["t0", "t1"] for a in items)
    return len(statements)


async def test_assistant_list_with_tools_is_constant(api: ApiHarness) -> None:
    few = await count_assistant_list(api, 2)
    many = await count_assistant_list(api, 10)
    assert few == many
    assert many <= ASSISTANTS_QUERY_BOUND
