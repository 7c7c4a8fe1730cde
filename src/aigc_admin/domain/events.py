"""Events: topics that the workers and loops publish on and subscriptions listen to (Redis pub/sub behind the
ports; a process holds one Redis subscription per topic and hands each event to its local subscribers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

AUDIT = "audit"  # every audit row as it is written
FASTCHAT_HEALTH = "fastchat:health"  # the controller's liveness and every worker's probe, each round


def deployment(deployment_id: int) -> str:
    """One deployment's state, as it changes."""
    return f"deployment:{deployment_id}"


def tenant_deployments(tenant_id: int | None) -> str:
    """Every deployment of a tenant, as they change."""
    return f"deployments:tenant:{tenant_id if tenant_id is not None else 'none'}"


def finetune(job_pk: int) -> str:
    """A fine-tuning job's log lines (after they are persisted) and status."""
    return f"finetune:{job_pk}"


def evaluation(evaluation_pk: int) -> str:
    """An evaluation's progress (done/total, running means, ETA) after each batch is written, and its status."""
    return f"evaluation:{evaluation_pk}"


class Publisher(Protocol):
    async def publish(self, topic: str, payload: dict[str, Any]) -> None: ...


class EventSource(Protocol):
    def subscribe(self, topic: str) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]: ...
