"""An in-process API (lifespan running) with a small GraphQL client and seeding helpers."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from aigc_admin.settings import Settings, load_settings
from aigc_admin.web.app import create_app

ADMIN_PASSWORD = "admin-pass-1234"
USER_PASSWORD = "user-pass-1234"


class GraphQLFailure(AssertionError):
    pass


@dataclass
class ApiHarness:
    settings: Settings
    app: Any
    client: httpx.AsyncClient
    admin_token: str = ""
    _ids: dict[str, str] = field(default_factory=dict)

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, *, storage: Path, redis_url: str, extra: dict[str, object] | None = None,
                      ) -> AsyncIterator[ApiHarness]:
        flags: dict[str, object] = {
            "server.storage.path": str(storage), "redis.hosts": redis_url,
            "redis.prefix": f"t{uuid.uuid4().hex[:8]}", "server.admin.pass": ADMIN_PASSWORD,
            "health.interval": 0,  # tests that need the monitor turn it on
            "finetune.interval": 0,  # likewise the training scheduler
            **(extra or {}),
        }
        settings = load_settings(flags, environ={})
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                harness = cls(settings, app, client)
                harness.admin_token = await harness.login("admin", ADMIN_PASSWORD)
                yield harness

    def services(self) -> Any:
        """The app's domain services (for assertions that need more than GraphQL shows)."""
        return self.app.state.platform

    async def run_job(self, job_id: str) -> Any:
        """Run one enqueued job here, on this app's platform, as a worker would (the harness runs no worker);
        the job leaves the queue. Returns its result."""
        from aigc_admin.adapters.queue import META_ID
        from aigc_admin.workers.runner import JobContext, import_function

        platform = self.services()
        job = platform.jobs.fetch(job_id)
        assert job is not None and job.meta.get(META_ID) == job_id, f"no job {job_id} was enqueued"
        func_path, kwargs = job.args[0], job.kwargs
        platform.jobs.queue().remove(job)
        job.delete()
        return await import_function(func_path)(JobContext(platform, job_id), **kwargs)

    async def post(self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None,
                   tenant: object | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        if tenant is not None:
            h["X-Tenant-Id"] = str(tenant)
        return await self.client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=h)

    async def gql(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """The JSON body of a GraphQL request (status must be 200)."""
        r = await self.post(query, variables, **kw)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def ok(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """``data`` of a request that must have no top-level errors."""
        body = await self.gql(query, variables, **kw)
        if body.get("errors"):
            raise GraphQLFailure(str(body["errors"]))
        return dict(body["data"])

    async def login(self, username: str, password: str) -> str:
        data = await self.ok("mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
                             "{ token errors { code message } } }", {"u": username, "p": password})
        if data["login"]["errors"]:
            raise GraphQLFailure(str(data["login"]["errors"]))
        return str(data["login"]["token"])

    async def create_tenant(self, code: str, name: str | None = None) -> str:
        data = await self.ok("mutation($i: CreateTenantInput!) { createTenant(input: $i) { tenant { id } "
                             "errors { code message } } }", {"i": {"name": name or code.upper(), "code": code}},
                             token=self.admin_token)
        assert not data["createTenant"]["errors"], data
        return str(data["createTenant"]["tenant"]["id"])

    async def create_user(self, username: str, memberships: dict[str, str] | None = None,
                          password: str = USER_PASSWORD, admin: bool = False) -> tuple[str, str]:
        """Create a local account with {tenant id: role}; returns (account id, token)."""
        data = await self.ok("mutation($i: CreateAccountInput!) { createAccount(input: $i) { account { id } "
                             "errors { code message } } }",
                             {"i": {"username": username, "password": password, "isPlatformAdmin": admin}},
                             token=self.admin_token)
        assert not data["createAccount"]["errors"], data
        account_id = str(data["createAccount"]["account"]["id"])
        for tenant_id, role in (memberships or {}).items():
            d = await self.ok("mutation($i: SetMembershipInput!) "
                              "{ setTenantMembership(input: $i) { errors { code } } }",
                              {"i": {"tenantId": tenant_id, "accountId": account_id, "role": role.upper()}},
                              token=self.admin_token)
            assert not d["setTenantMembership"]["errors"], d
        return account_id, await self.login(username, password)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
