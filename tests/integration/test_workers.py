"""JobQueue, the job runner, periodic tasks and a real rq worker, against a private redis-server and SQLite."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rq.job import JobStatus

from aigc_admin.adapters.db import close_db, init_db, migrate
from aigc_admin.adapters.db.models import SysAudit
from aigc_admin.adapters.queue import JobQueue
from aigc_admin.adapters.redis_conn import RedisEndpoint
from aigc_admin.settings import Settings, load_settings
from aigc_admin.workers.periodic import (
    PERIODIC_TASKS,
    PlatformScheduler,
    register,
    registered,
    run_now,
    run_scheduler,
)
from aigc_admin.workers.runner import open_endpoint
from tests.support.redis_server import RedisServer, start_redis

RETENTION = "aigc_admin.workers.tasks.audit:retention"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(Path(tmp_path_factory.mktemp("redis")))
    yield server
    server.stop()


def make_settings(tmp_path: Path, server: RedisServer, **flags: object) -> Settings:
    # a fresh prefix per test: queues, job ids and scheduler keys of one test never meet another's
    return load_settings({"server.storage.path": str(tmp_path), "redis.hosts": server.url,
                          "redis.prefix": f"t{uuid.uuid4().hex[:8]}", **flags}, environ={})


@pytest.fixture
async def settings(tmp_path: Path, redis_server: RedisServer) -> Settings:
    s = make_settings(tmp_path, redis_server)
    await migrate(s)
    return s


@pytest.fixture
def jobs(settings: Settings) -> Iterator[JobQueue]:
    q = JobQueue(RedisEndpoint.open(settings))
    yield q
    q.close()


async def seed_audit(settings: Settings) -> None:
    """Two rows older than the retention period, one recent row."""
    await init_db(settings)
    try:
        for op in ("old-1", "old-2", "recent"):
            await SysAudit.create(trace_id=op, operation=op)
        old = datetime.now(UTC) - timedelta(days=settings.audit_retention_days + 5)
        await SysAudit.filter(operation__startswith="old").update(created_at=old)
    finally:
        await close_db()


async def audit_operations(settings: Settings) -> list[str]:
    await init_db(settings)
    try:
        return sorted(await SysAudit.all().values_list("operation", flat=True))  # type: ignore[arg-type]
    finally:
        await close_db()


async def run_burst_worker(settings: Settings) -> None:
    """A real worker process, as `aigc-admin worker --burst` would run it (settings from its env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_")}
    env |= {"AIGC_REDIS_HOSTS": settings.redis_hosts, "AIGC_REDIS_PREFIX": settings.redis_prefix,
            "AIGC_ADMIN_SERVER_STORAGE_PATH": settings.server_storage_path}
    code = ("from aigc_admin.settings import load_settings\n"
            "from aigc_admin.workers.periodic import run_worker\n"
            "run_worker(load_settings(), burst=True)\n")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, out.decode(errors="replace")


async def test_enqueue_twice_queues_one_job(jobs: JobQueue) -> None:
    assert jobs.enqueue(RETENTION, job_id="audit:once") == "audit:once"
    assert jobs.enqueue(RETENTION, job_id="audit:once") == "audit:once"
    queue = jobs.queue()
    assert queue.name == f"{jobs.endpoint.prefix}:default"
    assert queue.count == 1
    assert jobs.status("audit:once") == "queued"
    assert jobs.status("audit:never") is None


async def test_kwargs_must_be_json_friendly(jobs: JobQueue) -> None:
    with pytest.raises(TypeError, match="JSON"):
        jobs.enqueue(RETENTION, job_id="bad", when=datetime.now(UTC))
    assert jobs.queue().count == 0


async def test_worker_runs_retention_and_done_jobs_can_run_again(settings: Settings, jobs: JobQueue) -> None:
    await seed_audit(settings)
    jobs.enqueue(RETENTION, job_id="audit:retention")
    jobs.enqueue("aigc_admin.workers.tasks.audit:no_such_task", job_id="broken")

    await run_burst_worker(settings)

    assert await audit_operations(settings) == ["recent"]
    assert jobs.status("audit:retention") == "finished"
    job = jobs.fetch("audit:retention")
    assert job is not None
    result = job.return_value()
    assert isinstance(result, dict)
    assert result["deleted"] == 2
    assert datetime.fromisoformat(result["cutoff"]) < datetime.now(UTC) - timedelta(days=89)
    assert jobs.status("broken") == "failed"

    # finished or failed: enqueueing again starts a fresh run under the same id
    jobs.enqueue(RETENTION, job_id="audit:retention")
    jobs.enqueue(RETENTION, job_id="broken")
    assert jobs.status("audit:retention") == "queued"
    assert jobs.status("broken") == "queued"
    assert jobs.queue().count == 2


async def test_run_now_deletes_old_rows_in_process(settings: Settings) -> None:
    await seed_audit(settings)
    # run_now calls asyncio.run and opens Tortoise itself: keep it out of the test's event loop
    result = await asyncio.to_thread(run_now, settings, "audit.retention")
    assert result["deleted"] == 2
    assert await audit_operations(settings) == ["recent"]


def test_run_now_unknown_task_names_the_known_ones(tmp_path: Path, redis_server: RedisServer) -> None:
    with pytest.raises(KeyError, match=r"audit\.retention"):
        run_now(make_settings(tmp_path, redis_server), "no.such.task")


def test_register_twice_keeps_one_registration(tmp_path: Path, redis_server: RedisServer) -> None:
    endpoint = RedisEndpoint.open(make_settings(tmp_path, redis_server))
    scheduler = PlatformScheduler(endpoint)
    try:
        assert register(endpoint, ["audit.retention"]) == ["periodic:audit.retention"]
        assert register(scheduler, ["audit.retention", "audit.retention"]) == ["periodic:audit.retention"]
        assert registered(scheduler) == ["periodic:audit.retention"]
        assert scheduler.count() == 1
        (job,) = scheduler.get_jobs()
        assert job.meta["cron_string"] == "17 3 * * *"
        assert job.origin == f"{endpoint.prefix}:default"
        assert job.args == ["aigc_admin.workers.tasks.audit:retention"]
        job.set_status(JobStatus.FINISHED)  # as after its first run
        with pytest.raises(ValueError, match="periodic"):
            JobQueue(endpoint).enqueue(RETENTION, job_id="periodic:audit.retention")
        assert registered(scheduler) == ["periodic:audit.retention"]
        register(endpoint, [])  # the registered set is exactly the named one
        assert registered(scheduler) == []
    finally:
        scheduler.connection.close()


def test_register_unknown_name_changes_nothing(tmp_path: Path, redis_server: RedisServer) -> None:
    endpoint = RedisEndpoint.open(make_settings(tmp_path, redis_server))
    register(endpoint, ["audit.retention"])
    with pytest.raises(KeyError, match=r"audit\.retention"):
        register(endpoint, ["nope"])
    assert registered(PlatformScheduler(endpoint)) == ["periodic:audit.retention"]


@pytest.mark.parametrize(("auto", "expected"), [
    (True, sorted(f"periodic:{name}" for name in PERIODIC_TASKS)), (False, [])])
def test_run_scheduler_registers_all_only_when_auto(tmp_path: Path, redis_server: RedisServer,
                                                    auto: bool, expected: list[str]) -> None:
    settings = make_settings(tmp_path, redis_server, **{"cronjob.auto": auto})
    run_scheduler(settings, [], burst=True)
    run_scheduler(settings, [], burst=True)
    assert registered(PlatformScheduler(RedisEndpoint.open(settings))) == expected


def test_jobs_refuse_to_start_an_embedded_redis(tmp_path: Path) -> None:
    settings = load_settings({"server.storage.path": str(tmp_path)}, environ={})
    assert settings.redis_embedded
    with pytest.raises(RuntimeError, match="AIGC_REDIS_HOSTS"):
        open_endpoint(settings)


async def test_a_job_whose_worker_is_killed_runs_again(settings: Settings, jobs: JobQueue, tmp_path: Path) -> None:
    """kill -9 of a worker (and its work horse) mid-job: the job stays 'started' while its heart beat is fresh
    (enqueueing it again changes nothing), then counts as abandoned and is enqueued again, and another worker
    runs it to the end. The deployment reconciler relies on this to re-drive a deploy whose worker died."""
    marker = tmp_path / "runs"
    jobs.enqueue("tests.support.slow_job:hang_first_time", job_id="slow:1", marker=str(marker))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_")} | settings.to_env()
    code = ("from aigc_admin.settings import load_settings\n"
            "from aigc_admin.workers.periodic import run_worker\n"
            "run_worker(load_settings())\n")
    worker = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, "the worker did not start the job"
            await asyncio.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its work horse, no clean-up of any kind
        worker.wait(timeout=10)
    assert jobs.status("slow:1") == "started"
    jobs.enqueue("tests.support.slow_job:hang_first_time", job_id="slow:1", marker=str(marker))
    assert jobs.queue().count == 0  # still counted as running: not queued twice
    killed = time.monotonic()
    while jobs.status("slow:1") != "queued":  # abandoned 60 s after the last heart beat (every 5 s)
        assert time.monotonic() - killed < 100, jobs.status("slow:1")
        await asyncio.sleep(2)
        jobs.enqueue("tests.support.slow_job:hang_first_time", job_id="slow:1", marker=str(marker))
    await run_burst_worker(settings)
    assert jobs.status("slow:1") == "finished"
    assert marker.read_text() == "xx"  # ran twice: the killed run and the one that finished


def test_two_schedulers_enqueue_each_job_once_and_survive_a_kill(tmp_path: Path, redis_server: RedisServer) -> None:
    """`cronjob start` twice: they take turns under rq-scheduler's lock, so a due job is enqueued once; kill -9
    one (even while it holds the lock: it expires) and the other goes on enqueueing."""
    settings = make_settings(tmp_path, redis_server)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AIGC_")}, **settings.to_env()}
    cli = [sys.executable, "-m", "aigc_admin.cli", "cronjob", "start"]
    schedulers = [subprocess.Popen(cli, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL) for _ in range(2)]
    endpoint = RedisEndpoint.open(settings)
    scheduler = PlatformScheduler(endpoint)
    queue = JobQueue(endpoint).queue("default")
    try:
        deadline = time.monotonic() + 30
        while len(scheduler.connection.keys(f"{scheduler.redis_scheduler_namespace_prefix}*")) < 2:
            assert time.monotonic() < deadline, "the two schedulers did not start"
            time.sleep(0.2)
        now = datetime.now(UTC)
        due = [scheduler.enqueue_at(now + timedelta(seconds=1 + i), print, f"job {i}") for i in range(6)]
        time.sleep(2)
        schedulers[0].kill()  # SIGKILL: no death registered, a lock it may hold stays until it expires
        schedulers[0].wait(timeout=10)
        deadline = time.monotonic() + 40  # the dead one's lock lives at most interval + 10 s
        while any(job.id not in queue.job_ids for job in due):
            assert time.monotonic() < deadline, f"not enqueued: {[j.id for j in due if j.id not in queue.job_ids]}"
            time.sleep(0.5)
        ids = queue.job_ids
        assert all(ids.count(job.id) == 1 for job in due), ids  # each once
        assert not any(job in scheduler for job in due)  # none left scheduled
        assert schedulers[1].poll() is None  # the other one is still running
    finally:
        for process in schedulers:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=15)
        scheduler.connection.close()
