"""The function RQ executes for every platform job, and the context handed to each task.

``JobQueue.enqueue("pkg.module:func", job_id=..., **kwargs)`` makes a worker call
``run("pkg.module:func", **kwargs)``, which loads settings from the environment, opens the platform
(bootstrap: Tortoise, Redis, the services) in a fresh event loop, awaits ``func(ctx, **kwargs)`` and closes
everything again.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rq import get_current_job

from aigc_admin.adapters import metrics as pm
from aigc_admin.adapters import tracing
from aigc_admin.adapters.queue import META_ID, TRACE_META
from aigc_admin.adapters.redis_conn import RedisEndpoint
from aigc_admin.bootstrap import Platform, open_platform
from aigc_admin.settings import Settings, load_settings

log = logging.getLogger(__name__)


@dataclass
class JobContext:
    """What a task gets: the platform (every service, built on first use) and its job id."""

    platform: Platform
    job_id: str | None = None

    @property
    def settings(self) -> Settings:
        return self.platform.settings


def open_endpoint(settings: Settings, *, allow_embedded: bool = False) -> RedisEndpoint:
    """The Redis a job talks to. A job never starts the embedded server: it would be a private one."""
    if settings.redis_embedded and not allow_embedded:
        raise RuntimeError(
            "redis.hosts is 'embedded', but a job cannot start its own Redis: give worker processes the "
            "URL of the running server, e.g. AIGC_REDIS_HOSTS=redis://127.0.0.1:PORT/0")
    return RedisEndpoint.open(settings)


def import_function(func_path: str) -> Callable[..., Any]:
    """``pkg.module:func`` or ``pkg.module.func`` → the function."""
    module_name, sep, attr = func_path.partition(":")
    if not sep:
        module_name, _, attr = func_path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"not a dotted function path: {func_path!r}")
    fn = getattr(importlib.import_module(module_name), attr)
    if not callable(fn):
        raise TypeError(f"{func_path} is not callable")
    return fn


async def execute(settings: Settings, func_path: str, kwargs: dict[str, Any], *, job_id: str | None = None,
                  allow_embedded: bool = False) -> Any:
    """Open the platform (database, Redis), await ``func(ctx, **kwargs)``, close it whatever happens."""
    fn = import_function(func_path)
    endpoint = open_endpoint(settings, allow_embedded=allow_embedded)
    try:
        async with open_platform(settings, endpoint=endpoint) as platform:
            result = fn(JobContext(platform, job_id), **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result
    finally:
        endpoint.close()


def run(func_path: str, /, **kwargs: Any) -> Any:
    """RQ's entry point for every platform job (settings come from the worker's environment)."""
    job = get_current_job()
    job_id = str(job.meta.get(META_ID, job.id)) if job is not None else None
    log.debug("job %s: %s", job_id, func_path)
    task = func_path.rsplit(".tasks.", 1)[-1].replace(":", ".")  # e.g. tenants.delete
    settings = load_settings()
    traced = tracing.setup(settings, "job")
    started = time.perf_counter()
    status = "failed"
    try:
        with tracing.job_span(f"job {task}", job.meta.get(TRACE_META) if traced and job is not None else None) \
                as span:
            span.set_attribute("aigc.job.id", job_id or "")
            try:
                result = asyncio.run(execute(settings, func_path, kwargs, job_id=job_id))
            except BaseException as e:
                tracing.failed(span, e)
                raise
        status = "finished"
        return result
    finally:
        pm.child(pm.JOB_DURATION, task, status).observe(time.perf_counter() - started)
        tracing.flush()
