"""Events over Redis pub/sub: a publisher, and a per-process hub that fans one Redis
subscription per topic out to any number of local subscribers (GraphQL subscriptions).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from aigc_admin.adapters import metrics as pm
from aigc_admin.domain import events as topics

log = logging.getLogger(__name__)
SUBSCRIBER_BUFFER = 10_000


class SubscriberOverflow(Exception):
    """A subscriber fell too far behind; it is closed rather than silently skipping events."""


class EventPublisher:
    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self._r = client
        self._prefix = prefix

    def channel(self, topic: str) -> str:
        return f"{self._prefix}:events:{topic}"

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        await self._r.publish(self.channel(topic), json.dumps(payload, default=str, separators=(",", ":")))
        pm.child(pm.EVENTS_PUBLISHED, topic.split(":", 1)[0]).inc()  # the kind, not the id: a bounded label


class _Subscription:
    """One local subscriber of a channel: the events not yet taken, and the reader's wake-up future.

    Deliberately small (no ``asyncio.Queue``: four deques, ~3 KB, per subscriber); it is both the
    async iterator handed to the subscriber and its registration in the hub.
    """

    __slots__ = ("_waiter", "items", "overflowed")

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.overflowed = False
        self._waiter: asyncio.Future[None] | None = None

    def push(self, payload: dict[str, Any]) -> None:
        if self.overflowed:
            return
        if len(self.items) >= SUBSCRIBER_BUFFER:
            self.overflowed = True  # what is queued is still delivered, then the iterator raises
        else:
            self.items.append(payload)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while not self.items:
            if self.overflowed:
                raise SubscriberOverflow("subscriber too slow; events were not all delivered")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.items.pop(0)  # a reader keeps up: this list holds an event or two, not thousands


class EventHub:
    """One Redis connection and one subscription per topic for the whole process."""

    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self._r = client
        self._publisher = EventPublisher(client, prefix=prefix)
        self._subs: dict[str, set[_Subscription]] = {}
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def _ensure_reader(self) -> None:
        if self._pubsub is None:
            self._pubsub = self._r.pubsub(ignore_subscribe_messages=True)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="event-hub-reader")

    async def _read(self) -> None:
        while True:
            try:
                if not self._pubsub.subscribed:
                    await asyncio.sleep(0.05)
                    continue
                msg = await self._pubsub.get_message(timeout=1.0)
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                log.warning("event hub lost Redis (%s); reconnecting", e)
                await asyncio.sleep(0.5)
                await self._resubscribe()
                continue
            if msg is None or msg.get("type") != "message":
                continue
            channel = msg["channel"].decode() if isinstance(msg["channel"], bytes) else msg["channel"]
            try:
                payload = json.loads(msg["data"])
            except (TypeError, ValueError):
                log.error("event hub: undecodable message on %s", channel)
                continue
            # the same decoded payload object goes to every local subscriber (never copied per subscriber)
            for sub in tuple(self._subs.get(channel, ())):
                sub.push(payload)

    async def _resubscribe(self) -> None:
        channels = list(self._subs)
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        self._pubsub = self._r.pubsub(ignore_subscribe_messages=True)
        if channels:
            try:
                await self._pubsub.subscribe(*channels)
            except (RedisConnectionError, OSError):
                log.debug("resubscribe failed; will retry", exc_info=True)

    def subscribe(self, topic: str) -> _Topic:
        """``async with hub.subscribe(topic) as events``: an async iterator of this topic's events (the same
        payload object for every local subscriber); unsubscribes on exit. Redis is subscribed once per topic."""
        return _Topic(self, self._publisher.channel(topic))

    async def _add(self, channel: str, sub: _Subscription) -> None:
        async with self._lock:
            await self._ensure_reader()
            first = channel not in self._subs
            self._subs.setdefault(channel, set()).add(sub)
            if first:
                await self._pubsub.subscribe(channel)

    async def _remove(self, channel: str, sub: _Subscription) -> None:
        async with self._lock:
            subs = self._subs.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[channel]
                    with contextlib.suppress(Exception):
                        await self._pubsub.unsubscribe(channel)

    def local_subscribers(self, topic: str) -> int:
        """How many local subscribers this process has on ``topic`` (all share one Redis subscription)."""
        return len(self._subs.get(self._publisher.channel(topic), ()))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        self._subs.clear()


class _Topic:
    """The async context manager returned by ``EventHub.subscribe`` (a class, not a generator-based
    context manager: a live subscription holds no suspended generator frame)."""

    __slots__ = ("_channel", "_hub", "_sub")

    def __init__(self, hub: EventHub, channel: str) -> None:
        self._hub, self._channel = hub, channel
        self._sub: _Subscription | None = None

    async def __aenter__(self) -> _Subscription:
        sub = _Subscription()
        await self._hub._add(self._channel, sub)
        self._sub = sub
        return sub

    async def __aexit__(self, *exc: object) -> None:
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await self._hub._remove(self._channel, sub)


class AuditEventPublisher:
    """Publishes each written audit row on the 'audit' topic (feeds the auditLogAdded subscription)."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._pub = publisher

    async def audit_added(self, entry: Any) -> None:
        data = dict(entry.__dict__)
        data["created_at"] = entry.created_at.isoformat() if entry.created_at else None
        try:
            await self._pub.publish(topics.AUDIT, data)
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            # the row is stored; only the live feed misses it
            log.warning("audit row %s stored but not published: %s", entry.id, e)


class DeploymentEventPublisher:
    """Publishes a deployment's new state on its own topic and on its tenant's topic."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._pub = publisher

    async def deployment_changed(self, deployment: Any) -> None:
        data = {k: v for k, v in deployment.__dict__.items() if k not in ("runtime_handle",)}
        data["worker_addresses"] = list(deployment.worker_addresses)
        data["engine_options"] = deployment.engine_options.to_dict()
        for topic in (topics.deployment(deployment.id), topics.tenant_deployments(deployment.tenant_id)):
            try:
                await self._pub.publish(topic, data)
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                log.warning("deployment %s changed but the event was not published: %s", deployment.id, e)


class FineTuneLogPublisher:
    """Publishes each batch of a job's log lines (after they are persisted) with the job's status."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._pub = publisher

    async def lines(self, job_pk: int, batch: list[Any], status: Any) -> None:
        payload = {"status": str(status), "lines": [{"seq": x.seq, "line": x.line} for x in batch]}
        try:
            await self._pub.publish(topics.finetune(job_pk), payload)
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            # persisted already: a subscriber resumes from its cursor and reads them from the database
            log.warning("log lines of fine-tuning job %s stored but not published: %s", job_pk, e)


class EvaluationProgressPublisher:
    """Publishes an evaluation's progress after each batch of results is written (and when its status changes)."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._pub = publisher

    async def progress(self, evaluation: Any) -> None:
        try:
            await self._pub.publish(topics.evaluation(evaluation.id), evaluation.progress_payload())
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            # written already: a subscriber that comes back reads the state from the database
            log.warning("progress of evaluation %s stored but not published: %s", evaluation.id, e)
