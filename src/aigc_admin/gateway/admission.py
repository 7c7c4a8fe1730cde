"""Admission control for local models: each request goes to the replica with the shortest queue, and when every
replica's queue is at the threshold the request waits, with a per-channel fair share, for a bounded time — then it
is refused with 429 and Retry-After instead of piling onto a saturated worker.

A replica's queue is what its worker last reported (``worker_get_status``: running plus waiting requests, polled
every ``refresh`` seconds by every API process) with this process's own requests since then counted live: the
others' share comes from the poll, ours is exact. Waiters are served round-robin across channels (the oldest
request of the next channel in turn), so a channel sending ten times more gets no more of the freed slots than a
small one that is waiting too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

QueueProbe = Callable[[str], Awaitable[int | None]]  # a worker's reported queue length (None: no answer)


class AdmissionRefused(Exception):
    """Every replica is busy and the wait ran out (or the waiting room is full)."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason  # "timeout" | "full"
        self.retry_after = retry_after


@dataclass
class AdmissionStats:
    admitted: int = 0  # at once
    held: int = 0  # waited, then admitted
    shed: dict[str, int] = field(default_factory=dict)  # refused, by reason


@dataclass
class _Room:
    """The requests waiting for one model's replicas: per channel, oldest first, and whose turn is next.

    Channels that joined the line and were not served since come first, in the order they joined; then the
    channels already served and still waiting, in turn. So a channel sending one request at a time gets the next
    free slot even beside a neighbour with a long backlog (max-min fairness: a channel asking for less than its
    share gets what it asks for), and a backlogged channel still gets every other slot."""

    by_channel: dict[int, deque[asyncio.Future[str]]] = field(default_factory=dict)
    fresh: deque[int] = field(default_factory=deque)  # joined, not served since
    turn: deque[int] = field(default_factory=deque)  # served, still waiting

    def add(self, channel: int, waiter: asyncio.Future[str]) -> None:
        if channel not in self.by_channel:
            self.by_channel[channel] = deque()
            self.fresh.append(channel)
        self.by_channel[channel].append(waiter)

    def next(self) -> asyncio.Future[str] | None:
        """The oldest live waiter of the channel whose turn it is; that channel goes to the back of the line."""
        while self.fresh or self.turn:
            channel = self.fresh.popleft() if self.fresh else self.turn.popleft()
            waiters = self.by_channel[channel]
            while waiters and waiters[0].done():
                waiters.popleft()
            if not waiters:
                del self.by_channel[channel]
                continue
            waiter = waiters.popleft()
            if waiters:
                self.turn.append(channel)
            else:
                del self.by_channel[channel]
            return waiter
        return None

    def __len__(self) -> int:
        return sum(sum(1 for w in q if not w.done()) for q in self.by_channel.values())


class Admission:
    def __init__(self, *, queue_limit: int, wait: float, max_waiting: int, refresh: float = 0.5,
                 probe: QueueProbe | None = None, count: Callable[[str], None] = lambda outcome: None) -> None:
        self.queue_limit = queue_limit  # per replica; 0: admission control is off
        self.wait = wait
        self.max_waiting = max_waiting
        self.refresh = refresh
        self.probe = probe
        self.inflight: dict[str, int] = {}  # worker → this process's requests on it now
        self._reported: dict[str, int] = {}  # worker → its last reported queue length
        self._own_at_report: dict[str, int] = {}  # worker → our in-flight count when it reported
        self._rooms: dict[str, _Room] = {}  # model → its waiting room
        self._workers: dict[str, tuple[str, ...]] = {}  # model → its replicas (as last asked for)
        self.stats = AdmissionStats()
        self._count = count  # metrics: one call per outcome

    @property
    def enabled(self) -> bool:
        return self.queue_limit > 0

    def load(self, worker: str) -> int:
        """The worker's queue as best known: the others' share from its last report, ours live."""
        own = self.inflight.get(worker, 0)
        others = max(0, self._reported.get(worker, 0) - self._own_at_report.get(worker, 0))
        return others + own

    def report(self, worker: str, queue_length: int, own_when_asked: int | None = None) -> None:
        """A worker's queue length. Our requests that started or ended while it was being asked may or may not be
        in it: the larger of our count when asked and now is taken as ours, so neither becomes a phantom
        "other" request that keeps the replica looking full until the next report."""
        own = self.inflight.get(worker, 0)
        self._reported[worker] = queue_length
        self._own_at_report[worker] = own if own_when_asked is None else max(own, own_when_asked)

    def order(self, workers: Iterable[str]) -> list[str]:
        """Replicas by queue, shortest first (the first is where a request goes; the rest are retry targets)."""
        return sorted(workers, key=self.load)

    def waiting(self, model: str) -> int:
        room = self._rooms.get(model)
        return len(room) if room else 0

    def _free(self, workers: tuple[str, ...]) -> str | None:
        best = min(workers, key=self.load, default=None)
        return best if best is not None and self.load(best) < self.queue_limit else None

    def _take(self, worker: str) -> str:
        self.inflight[worker] = self.inflight.get(worker, 0) + 1
        return worker

    async def acquire(self, model: str, workers: tuple[str, ...], channel: int) -> str:
        """A replica for one request of ``channel`` (call ``release`` with it when the request is done)."""
        self._workers[model] = workers
        room = self._rooms.get(model)
        if not self.enabled:
            return self._take(self.order(workers)[0])
        free = self._free(workers)
        if free is not None and not room:  # nobody waits: no one is overtaken
            self.stats.admitted += 1
            self._count("admitted")
            return self._take(free)
        if room is not None and len(room) >= self.max_waiting:
            self._shed("full")
            raise AdmissionRefused("full", self._retry_after())
        room = self._rooms.setdefault(model, _Room())
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        room.add(channel, waiter)
        self._dispatch(model)  # a slot may be free with others waiting: the first in turn gets it
        try:
            worker = await asyncio.wait_for(asyncio.shield(waiter), timeout=self.wait)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():  # granted at the last moment: keep it
                self._held()
                return waiter.result()
            waiter.cancel()
            self._shed("timeout")
            raise AdmissionRefused("timeout", self._retry_after()) from None
        except asyncio.CancelledError:  # the client went away while waiting
            if waiter.done() and not waiter.cancelled():
                self.release(model, waiter.result())
            waiter.cancel()
            raise
        self._held()
        return worker

    def _held(self) -> None:
        self.stats.held += 1
        self._count("held")

    def release(self, model: str, worker: str) -> None:
        left = self.inflight.get(worker, 0) - 1
        if left > 0:
            self.inflight[worker] = left
        else:
            self.inflight.pop(worker, None)
        self._dispatch(model)

    def _dispatch(self, model: str) -> None:
        room = self._rooms.get(model)
        workers = self._workers.get(model, ())
        while room and workers:
            free = self._free(workers)
            if free is None:
                return
            waiter = room.next()
            if waiter is None:
                break
            waiter.set_result(self._take(free))
        if room is not None and not room.by_channel:
            self._rooms.pop(model, None)

    def _retry_after(self) -> int:
        return max(1, round(self.wait))

    def _shed(self, reason: str) -> None:
        self.stats.shed[reason] = self.stats.shed.get(reason, 0) + 1
        self._count(f"shed_{reason}")

    async def poll_once(self, workers: Iterable[str]) -> None:
        """Ask each replica for its queue; a slot freed by another process lets a waiter in."""
        if self.probe is None:
            return
        unique = list(dict.fromkeys(workers))
        asked = {w: self.inflight.get(w, 0) for w in unique}
        lengths = await asyncio.gather(*(self.probe(w) for w in unique), return_exceptions=True)
        for worker, length in zip(unique, lengths, strict=True):
            if isinstance(length, int):
                self.report(worker, length, asked[worker])
        for model in list(self._rooms):
            self._dispatch(model)

    async def run(self, workers: Callable[[], Iterable[str]], stop: asyncio.Event) -> None:
        """Poll every ``refresh`` seconds until ``stop`` (only while admission control is on)."""
        if not self.enabled or self.probe is None:
            return
        while not stop.is_set():
            try:
                await self.poll_once(workers())
            except Exception:
                log.exception("admission: polling the workers' queues failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.refresh)
