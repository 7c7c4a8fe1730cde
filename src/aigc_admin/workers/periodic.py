"""Periodic tasks: the registry, their rq-scheduler registration, and the worker/scheduler loops.

``aigc-admin cronjob start [NAMES]`` → ``run_scheduler``; ``aigc-admin worker`` → ``run_worker``;
``aigc-admin job NAME`` → ``run_now``. rq-scheduler 0.14 evaluates cron strings in the scheduler
process's local time zone (whatever ``use_local_timezone`` says), like system cron: run it with TZ=UTC
for UTC schedules.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from rq import Queue, SimpleWorker, Worker
from rq.job import JobStatus
from rq_scheduler import Scheduler

from aigc_admin.adapters.queue import META_ID, RUNNER, JobQueue
from aigc_admin.adapters.redis_conn import RedisEndpoint
from aigc_admin.settings import Settings
from aigc_admin.workers.runner import execute, open_endpoint

log = logging.getLogger(__name__)
JOB_ID_PREFIX = "periodic:"


@dataclass(frozen=True)
class PeriodicTask:
    name: str
    func_path: str
    cron: str  # crontab syntax, the scheduler's local time
    description: str

    @property
    def job_id(self) -> str:
        return f"{JOB_ID_PREFIX}{self.name}"


PERIODIC_TASKS: dict[str, PeriodicTask] = {
    t.name: t
    for t in (
        PeriodicTask("audit.retention", "aigc_admin.workers.tasks.audit:retention", "17 3 * * *",
                     "Delete audit rows older than audit.retention.days (daily at 03:17)."),
        PeriodicTask("deployments.reconcile", "aigc_admin.workers.tasks.deployments:reconcile", "* * * * *",
                     "Repair drift between deployments, the runtime and the controller (every minute)."),
        PeriodicTask("evaluations.schedule", "aigc_admin.workers.tasks.evaluations:schedule", "*/5 * * * *",
                     "Start the re-evaluations that are due (repeatHours) and resume evaluations whose job was lost "
                     "(every 5 minutes)."),
    )
}


def get_task(name: str) -> PeriodicTask:
    try:
        return PERIODIC_TASKS[name]
    except KeyError:
        raise KeyError(f"unknown periodic task {name!r}; known: {', '.join(sorted(PERIODIC_TASKS))}") from None


class PlatformScheduler(Scheduler):
    """rq-scheduler whose Redis keys live under the platform prefix (its defaults are global ``rq:scheduler*``)."""

    def __init__(self, endpoint: RedisEndpoint, *, keep: list[str] | None = None, **kwargs: Any) -> None:
        self.keep = list(keep or [])  # periodic tasks registered again when Redis lost them
        self.jobs = JobQueue(endpoint, connection=kwargs.pop("connection", None))
        super().__init__(queue_name=self.jobs.queue_name("default"), connection=self.jobs.connection, **kwargs)
        prefix = endpoint.prefix
        self.redis_scheduler_namespace_prefix = f"{prefix}:rq:scheduler_instance:"
        self.scheduler_key = f"{prefix}:rq:scheduler"
        self.scheduler_lock_key = f"{prefix}:rq:scheduler_lock"
        self.scheduled_jobs_key = f"{prefix}:rq:scheduler:scheduled_jobs"

    def enqueue_jobs(self) -> Any:
        """Each round (under the schedulers' lock): the kept registrations first, if Redis lost them."""
        if self.keep:
            with self.connection.pipeline(transaction=False) as pipe:
                for name in self.keep:
                    pipe.zscore(self.scheduled_jobs_key, self.jobs.rq_id(get_task(name).job_id))
                if any(score is None for score in pipe.execute()):
                    log.warning("periodic task registrations are gone from Redis (it lost its data?): registering "
                                "them again")
                    register(self, self.keep)
        return super().enqueue_jobs()


def registered(scheduler: PlatformScheduler) -> list[str]:
    """Job ids (``periodic:NAME``) of the periodic tasks registered with this scheduler."""
    ids = (job.meta.get(META_ID, "") for job in scheduler.get_jobs())
    return sorted(i for i in ids if i.startswith(JOB_ID_PREFIX))


def register(target: PlatformScheduler | RedisEndpoint, names: list[str]) -> list[str]:
    """Make the named tasks exactly the registered periodic tasks (idempotent); returns their job ids."""
    tasks = [get_task(n) for n in dict.fromkeys(names)]  # unknown names fail before anything changes
    scheduler = target if isinstance(target, PlatformScheduler) else PlatformScheduler(target)
    for job in scheduler.get_jobs():
        if str(job.meta.get(META_ID, "")).startswith(JOB_ID_PREFIX):
            scheduler.cancel(job)
            if job.get_status(refresh=False) not in (JobStatus.QUEUED, JobStatus.STARTED):
                job.delete()  # cron entries keep their hash forever (result_ttl=-1); drop it unless it runs
    for task in tasks:
        scheduler.cron(
            task.cron, func=RUNNER, args=[task.func_path], id=scheduler.jobs.rq_id(task.job_id),
            queue_name=scheduler.jobs.queue_name("default"), timeout=3600, description=task.description,
            meta={META_ID: task.job_id}, use_local_timezone=False,
        )
        log.info("periodic task %s registered (%s)", task.name, task.cron)
    return [t.job_id for t in tasks]


def run_now(settings: Settings, name: str) -> Any:
    """Run one periodic task once in this process (its own event loop); returns its result."""
    task = get_task(name)
    return asyncio.run(execute(settings, task.func_path, {}, job_id=task.job_id, allow_embedded=True))


JOB_HEARTBEAT = 5  # seconds


def worker_name() -> str:
    """``host.pid.random``: which process runs a job (a job's ``worker_name``, `rq info`), unique across restarts."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


def run_worker(settings: Settings, *, burst: bool = False, queues: list[str] | None = None,
               endpoint: RedisEndpoint | None = None) -> None:
    """Work the platform's queues. Burst mode uses ``SimpleWorker`` (no fork) and returns when empty.

    Jobs read settings from this process's environment: with an embedded Redis, pass the running
    server's ``endpoint`` and set ``AIGC_REDIS_HOSTS`` to its URL.
    """
    endpoint = endpoint or open_endpoint(settings)
    connection = endpoint.sync_client()
    jobs = JobQueue(endpoint, connection=connection)
    rq_queues = [Queue(jobs.queue_name(q), connection=connection) for q in (queues or ["default"])]
    worker_class = SimpleWorker if burst else Worker
    try:
        while True:
            try:
                # a job's heart beat every few seconds: one whose worker died counts as abandoned 60 s after the
                # last one
                worker_class(rq_queues, connection=connection, name=worker_name(),
                             job_monitoring_interval=JOB_HEARTBEAT).work(burst=burst)
                return
            except (redis.ConnectionError, redis.TimeoutError) as e:  # RQ retries while working, not at start
                if burst:
                    raise
                log.warning("the worker cannot reach Redis (%s); trying again in 2 s", e)
                time.sleep(2)
    finally:
        connection.close()


def run_scheduler(settings: Settings, names: list[str], *, burst: bool = False, interval: int = 5,
                  endpoint: RedisEndpoint | None = None) -> None:
    """Register the named periodic tasks (all when none are named and cronjob.auto), then schedule."""
    if not names:
        if settings.cronjob_auto:
            names = list(PERIODIC_TASKS)
        else:
            log.warning("no periodic task named and cronjob.auto is off: none registered")
    endpoint = endpoint or open_endpoint(settings)
    while True:
        # a new instance (a new name) each time: the old one's registration may still look alive in Redis
        scheduler = PlatformScheduler(endpoint, interval=interval, keep=names)
        try:
            register(scheduler, names)
            scheduler.run(burst=burst)
            return
        except (redis.ConnectionError, redis.TimeoutError) as e:
            if burst:
                raise
            log.warning("the scheduler lost Redis (%s); trying again in 2 s", e)
            time.sleep(2)
        finally:
            scheduler.connection.close()
