"""Usage accounting off the hot path: aggregate in memory, write in batches.

``record`` adds one response's tokens to an in-memory aggregate keyed by (channel, model, UTC day): a
dict update, no I/O. A background task flushes every ``flush_interval`` seconds; a flush writes every
aggregate in ONE transaction: an upsert per batch of rows into ``channel_usage`` (``requests``, ``prompt_tokens``
and ``completion_tokens`` incremented in the database, so several gateway processes add up correctly) and
``chat_channels.used_tokens += prompt + completion`` per channel.

Failure handling: if the write fails, the batch is merged back into the pending aggregates, logged, and
written by the next flush; nothing is dropped silently. The one exception is usage of a channel deleted
in the meantime: it has no row to belong to, so it is logged (channel, model, day, counts) and dropped.
Delivery is at-least-once: a COMMIT whose acknowledgement is lost (the connection dies during it) is
counted as failed and written again. ``aclose`` stops the loop without interrupting a flush in progress and
flushes what is left; if that final flush fails, every aggregate still pending is logged at ERROR level
(so an operator can reconcile) and stays in ``pending``.

With a journal (``usage_journal.py``, the gateway's default), ``record`` puts the usage in a per-tick batch that
is appended to the process's part of a Redis journal; ``durable()`` waits until what was recorded so far is there
(the gateway awaits it before sending an answer), a flush *moves* the journal to the database exactly once, and
the process keeps a copy of each of its parts until the database has it (written by its own or another process's
move, or by itself if Redis lost the journal). When Redis cannot take a batch, it joins the in-memory aggregates
above and is written to the database directly (at-least-once: a batch whose acknowledgement was lost may then be
counted twice).

The gateway's quota counters live in Redis (``gateway.limits``); ``used_tokens`` here is the durable,
slightly trailing copy that seeds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol

from aigc_admin.domain.channels.service import UsageCounts, UsageKey
from aigc_admin.gateway.usage_journal import Generation, UsageJournal

log = logging.getLogger(__name__)

UsageAggregate = UsageCounts


class UsageStore(Protocol):
    async def write(self, batch: dict[UsageKey, UsageCounts], batch_id: str | None = None) -> int:
        """Write one flush's aggregates in one transaction; returns how many rows were written. With a
        ``batch_id``, the id is stored in the same transaction and a batch whose id is there already is not
        written again (returns 0)."""
        ...

    async def written(self, batch_ids: list[str]) -> set[str]:
        """Which of these journal batches are in the database."""
        ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class UsageRecorder:
    """Aggregates usage in memory and writes it in one transaction per flush (see the module docstring).

    Use ``start()`` (or ``async with``) in the gateway's lifespan and ``aclose()`` at shutdown, after the
    gateway stopped serving: usage recorded after ``aclose`` waits for an explicit ``flush()``.
    """

    def __init__(self, flush_interval: float, store: UsageStore, *, journal: UsageJournal | None = None,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        if flush_interval <= 0:
            raise ValueError("flush_interval must be > 0 seconds")
        self._interval = flush_interval
        self._store = store
        self._clock = clock
        self._pending: dict[UsageKey, UsageAggregate] = {}  # for the database directly
        self._journal = journal
        self._unjournaled: dict[UsageKey, UsageAggregate] = {}  # this tick's, for the journal
        self._next: asyncio.Future[None] | None = None  # done when ``_unjournaled`` is in the journal
        self._sending: asyncio.Future[None] | None = None  # done when the batch in flight is
        self._tick = False  # an append is scheduled for the end of this tick
        self._journal_down = False
        self._parts: dict[Generation, dict[UsageKey, UsageAggregate]] = {}  # journaled, until the database has them
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # --- hot path ------------------------------------------------------------------------
    def record(self, channel_id: int, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Add one request's usage (O(1), no I/O)."""
        if prompt_tokens < 0 or completion_tokens < 0:
            raise ValueError("token counts must be >= 0")
        if self._closed:
            log.warning("usage recorded after aclose(); it is written only by an explicit flush()")
        key = (int(channel_id), model, self._clock().astimezone(UTC).date())
        target = self._pending if self._journal is None else self._unjournaled
        agg = target.get(key)
        if agg is None:
            agg = target[key] = UsageAggregate()
        agg.requests += 1
        agg.prompt_tokens += int(prompt_tokens)
        agg.completion_tokens += int(completion_tokens)
        if self._journal is not None and not self._tick:
            self._tick = True
            asyncio.get_running_loop().call_soon(self._append_tick)

    async def durable(self) -> None:
        """Wait until the usage recorded so far is in the journal (or, Redis failing, in memory). Immediate
        without a journal."""
        if self._unjournaled:
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._next)
        elif self._sending is not None:
            await asyncio.shield(self._sending)

    def _append_tick(self) -> None:
        """One script run per event-loop tick: everything recorded since the previous one. Replies come back in
        order, so the last batch sent being done means every earlier one is."""
        assert self._journal is not None
        self._tick = False
        if not self._unjournaled:
            return
        batch, self._unjournaled = self._unjournaled, {}
        done, self._next = self._next or asyncio.get_running_loop().create_future(), None
        self._sending = done
        try:
            reply = self._journal.append(batch)
        except Exception as e:  # e.g. no running connection and none can be made synchronously
            self._appended(batch, done, e, None)
            return
        reply.add_done_callback(functools.partial(self._replied, batch, done))

    def _replied(self, batch: dict[UsageKey, UsageAggregate], done: asyncio.Future[None],
                 reply: asyncio.Future[Generation | None]) -> None:
        if reply.cancelled():
            self._appended(batch, done, asyncio.CancelledError(), None)
        elif (error := reply.exception()) is not None:
            self._appended(batch, done, error, None)
        else:
            self._appended(batch, done, None, reply.result())

    def _appended(self, batch: dict[UsageKey, UsageAggregate], done: asyncio.Future[None],
                  error: BaseException | None, generation: Generation | None) -> None:
        if error is None and generation is not None:
            _merge(self._parts.setdefault(generation, {}), batch)
        if error is None and self._journal_down:
            self._journal_down = False
            log.warning("usage journal: Redis takes usage again")
        elif error is not None:  # any failure: the usage waits in memory instead
            self._merge_back(batch)
            if not self._journal_down:
                self._journal_down = True
                log.warning("usage journal: Redis refused a batch (%s); usage is kept in memory and written "
                            "to the database directly until it is back", type(error).__name__)
        if not done.done():
            done.set_result(None)
        if self._sending is done:
            self._sending = None

    @property
    def pending(self) -> dict[UsageKey, UsageAggregate]:
        """A copy of the aggregates held in this process (not in the journal, not yet written)."""
        out: dict[UsageKey, UsageAggregate] = {}
        for source in (self._pending, self._unjournaled):
            for k, v in source.items():
                out.setdefault(k, UsageAggregate()).add(v)
        return out

    # --- flushing ----------------------------------------------------------------------------
    async def flush(self) -> int:
        """Move the journal to the database (when there is one) and write the aggregates held in memory, each in
        one transaction; returns how many rows were written.

        On failure the aggregates are kept for the next flush (the journal's in Redis), the failure is logged,
        and it is raised.
        """
        async with self._lock:
            written, failure = 0, None
            if self._journal is not None:
                await self.durable()
                try:
                    written += await self._journal.move(self._store.write)
                    written += await self._settle_parts(self._journal)
                except Exception as e:  # the aggregates in memory are still written
                    failure = e
                    log.error("usage journal move failed; the sealed batches wait in Redis (and their parts in "
                              "memory) for the next flush", exc_info=True)
            if self._pending:
                batch, self._pending = self._pending, {}
                try:
                    written += await self._write(batch)
                except BaseException:
                    self._merge_back(batch)
                    log.error("usage flush of %d aggregates failed; kept for the next flush", len(batch),
                              exc_info=True)
                    raise
            if failure is not None:
                raise failure
            return written

    async def _settle_parts(self, journal: UsageJournal) -> int:
        """Forget the parts the database has; write those of a journal Redis lost (another epoch) directly,
        under their batch ids (so a mover that wrote one meanwhile is not doubled)."""
        if not self._parts:
            return 0
        ids = {journal.batch_id(g): g for g in self._parts}
        for done in await self._store.written(list(ids)):
            self._parts.pop(ids[done], None)
        if not self._parts:
            return 0
        current, written = await journal.epoch(), 0
        for generation in [g for g in self._parts if g[0] != current]:
            log.warning("usage journal epoch %s is gone from Redis (it lost its data): writing this process's part "
                        "of generation %d directly", generation[0], generation[1])
            written += await self._store.write(self._parts[generation], journal.batch_id(generation))
            del self._parts[generation]
        return written

    def _merge_back(self, batch: dict[UsageKey, UsageAggregate]) -> None:
        # records that arrived during the failed write are in the new dict: add the batch to them
        _merge(self._pending, batch)

    async def _write(self, batch: dict[UsageKey, UsageAggregate]) -> int:
        """The database write of one flush: everything in one transaction."""
        return await self._store.write(batch)

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the periodic flush (idempotent)."""
        if self._task is None or self._task.done():
            self._stop.clear()
            self._closed = False
            self._task = asyncio.create_task(self._run(), name="usage-recorder-flush")

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
            if self._stop.is_set():
                return
            with contextlib.suppress(Exception):  # logged by flush; the aggregates wait for the next one
                await self.flush()

    async def aclose(self) -> None:
        """Stop the periodic flush (letting a flush in progress finish) and write what is left."""
        self._closed = True
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:
            for (channel_id, model, day), agg in sorted(self.pending.items()):
                log.error("usage NOT written at shutdown: channel=%s model=%s day=%s requests=%d prompt=%d "
                          "completion=%d", channel_id, model, day, agg.requests, agg.prompt_tokens,
                          agg.completion_tokens)
        if self._journal is not None:
            self._journal.close()

    async def __aenter__(self) -> UsageRecorder:
        self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


def _merge(into: dict[UsageKey, UsageAggregate], batch: dict[UsageKey, UsageAggregate]) -> None:
    for key, agg in batch.items():
        current = into.get(key)
        if current is None:
            into[key] = UsageAggregate(agg.requests, agg.prompt_tokens, agg.completion_tokens)
        else:
            current.add(agg)
