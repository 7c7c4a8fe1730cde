"""RQ enqueue by dotted path, with explicit job ids so that enqueueing twice is harmless.

Callers name jobs with readable ids such as ``deploy:42`` or ``periodic:audit.retention``. rq 3 accepts
only ``[A-Za-z0-9_-]`` in a job id (and splits ids on ``:`` when fetching), so the id stored in rq is
``rq_job_id(prefix, job_id)``: ``{prefix}:{job_id}`` with every other character escaped as ``_xx``
(hex of its UTF-8 bytes), e.g. ``aigc_3adeploy_3a42``. The prefix keeps platforms sharing a Redis apart.
The readable id is also kept in ``job.meta["aigc_job_id"]``.

Every job runs ``aigc_admin.workers.runner.run(func_path, **kwargs)``, which opens the database and
awaits the async function at ``func_path``. Keyword arguments must be JSON-friendly primitives
(str, int, float, bool, None, and lists/dicts of them): ids, not ORM objects or datetimes.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from aigc_admin.adapters import tracing
from aigc_admin.adapters.redis_conn import RedisEndpoint

RUNNER = "aigc_admin.workers.runner.run"
META_ID = "aigc_job_id"
# A job in one of these states will still run: enqueueing it again is a no-op.
ACTIVE = frozenset({
    JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED,
    JobStatus.RATE_LIMITED, JobStatus.READY_TO_ENQUEUE,
})


def rq_job_id(prefix: str, job_id: str) -> str:
    """The rq-safe, reversible form of ``{prefix}:{job_id}``."""
    out = []
    for ch in f"{prefix}:{job_id}":
        if ch.isascii() and (ch.isalnum() or ch == "-"):
            out.append(ch)
        else:
            out.extend(f"_{b:02x}" for b in ch.encode())
    return "".join(out)


def logical_job_id(prefix: str, rq_id: str) -> str | None:
    """The readable id behind an rq id made by ``rq_job_id``; None if it is not one of this prefix's."""
    raw, i = bytearray(), 0
    while i < len(rq_id):
        if rq_id[i] == "_":
            try:
                raw.append(int(rq_id[i + 1:i + 3], 16))
            except ValueError:
                return None
            i += 3
        else:
            raw.extend(rq_id[i].encode())
            i += 1
    text = raw.decode(errors="replace")
    head = f"{prefix}:"
    return text[len(head):] if text.startswith(head) else None


def _check_json(kwargs: dict[str, Any]) -> None:
    try:
        json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"job kwargs must be JSON-friendly primitives: {e}") from None


TRACE_META = "otel"  # the enqueuing operation's trace context: the job's span continues it


class JobQueue:
    """The platform's RQ queues (``{prefix}:{name}``) on one Redis endpoint."""

    def __init__(self, endpoint: RedisEndpoint, *, connection: redis.Redis | None = None) -> None:
        self.endpoint = endpoint
        self.connection = connection if connection is not None else endpoint.sync_client()

    def queue_name(self, name: str = "default") -> str:
        return f"{self.endpoint.prefix}:{name}"

    def queue(self, name: str = "default") -> Queue:
        return Queue(self.queue_name(name), connection=self.connection)

    def rq_id(self, job_id: str) -> str:
        return rq_job_id(self.endpoint.prefix, job_id)

    def fetch(self, job_id: str) -> Job | None:
        try:
            return Job.fetch(self.rq_id(job_id), connection=self.connection)
        except NoSuchJobError:
            return None

    def status(self, job_id: str) -> str | None:
        """rq's status of the job (``queued``, ``started``, ``finished``, ``failed``, …), None if unknown."""
        job = self.fetch(job_id)
        if job is None:
            return None
        status = job.get_status(refresh=False)
        return None if status is None else JobStatus(status).value

    def enqueue(self, func_path: str, *, job_id: str, queue: str = "default", timeout: int = 3600,
                **kwargs: Any) -> str:
        """Run ``await func_path(ctx, **kwargs)`` on a worker; returns ``job_id``.

        A job with this id that is still queued, started, scheduled or deferred is left alone; one
        that finished, failed or was stopped is replaced by a fresh run under the same id, unless it
        is a periodic task's cron registration (ValueError: run those with ``periodic.run_now``).
        """
        _check_json(kwargs)
        existing = self.fetch(job_id)
        if existing is not None:
            status = existing.get_status(refresh=False)
            if status == JobStatus.STARTED:
                # its worker may have died (kill -9, a lost machine): jobs no longer heart-beating are moved to
                # the failed registry (RQ's own maintenance does it only every few minutes)
                StartedJobRegistry(queue=self.queue(queue)).cleanup()
                status = existing.get_status(refresh=True)
            if status in ACTIVE:
                return job_id
            if "cron_string" in existing.meta:  # deleting it would silently end an rq-scheduler cron entry
                raise ValueError(f"job id {job_id!r} belongs to a periodic task's registration")
            try:
                existing.delete()
            except ValueError:  # RQ 3: an abandoned run's execution record expires before its index entry does
                self.connection.delete(existing.execution_registry.key)
                existing.delete()
        try:
            self.queue(queue).enqueue_call(
                RUNNER, args=(func_path,), kwargs=kwargs, timeout=timeout, job_id=self.rq_id(job_id),
                description=f"{job_id} {func_path}", meta={META_ID: job_id, TRACE_META: tracing.carrier()},
                unique=True,
            )
        except DuplicateJobError:
            pass  # another caller enqueued it between our check and now: that run counts
        return job_id

    def close(self) -> None:
        self.connection.close()
