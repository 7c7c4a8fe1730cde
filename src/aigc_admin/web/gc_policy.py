"""Keep the state of long-lived WebSocket connections out of CPython's full garbage collections.

Why: every open subscription keeps ~130 objects tracked by the cycle collector (mostly uvicorn's and
websockets' connection state). A full (generation 2) collection walks all of them: at 5,000 open
subscriptions that is a pause of 0.7–0.9 s on our machines, during which no log line is delivered
(docs/performance.md, fine-tuning logs). Those objects live as long as their connection and are
freed by reference counting when it closes; walking them again and again finds nothing.

How: once a burst of new connections has settled (``min_new`` opened, none for ``quiet`` seconds, or
``max_wait`` seconds since the first of them when connections keep trickling in), young
garbage is collected and the heap is frozen (``gc.freeze``): everything alive then is left out of later
collections, which only walk what was created after. The price of freezing is that a reference cycle
among frozen objects is not reclaimed while they stay frozen, so when ``churn`` (a quarter) of the
connections open at the last freeze have closed since, the heap is unfrozen and collected once (one
deliberate pause, proportional to the heap) and frozen again after the next quiet moment. Memory that
closed connections leave in cycles is therefore bounded by a quarter of the connections, and the long
pauses come once per such turnover instead of whenever the collector's thresholds fire.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class ConnectionHeap:
    def __init__(self, *, min_new: int = 256, quiet: float = 1.0, max_wait: float = 10.0, churn: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._min_new, self._quiet, self._max_wait, self._churn = min_new, quiet, max_wait, churn
        self._clock = clock
        self._first_new = 0.0  # when the first connection since the last freeze opened
        self.open = 0
        self.new = 0  # opened since the last freeze
        self.closed_since = 0  # closed since the last freeze
        self.frozen_open = 0  # connections open at the last freeze (0: not frozen)
        self._last_open = 0.0
        self.freezes = self.thaws = 0

    def opened(self) -> None:
        self.open += 1
        self.new += 1
        self._last_open = self._clock()
        if self.new == 1:
            self._first_new = self._last_open

    def closed(self) -> None:
        self.open -= 1
        self.closed_since += 1

    def tick(self) -> None:
        """Freeze after a settled burst; thaw and collect once after enough turnover."""
        if self.frozen_open and self.closed_since > self._churn * self.frozen_open:
            started = self._clock()
            gc.unfreeze()
            gc.collect()
            self.thaws += 1
            log.info("gc: unfroze and collected after %d of %d connections closed (%.0f ms)",
                     self.closed_since, self.frozen_open, (self._clock() - started) * 1000)
            self.frozen_open, self.closed_since, self.new = 0, 0, self.open
            self._first_new = self._clock()
        now = self._clock()
        settled = now - self._last_open >= self._quiet or now - self._first_new >= self._max_wait
        if self.new >= self._min_new and settled:
            gc.collect(1)  # young garbage out first: what is frozen now should be alive
            gc.freeze()
            self.freezes += 1
            self.frozen_open, self.new, self.closed_since = max(self.open, 1), 0, 0
            log.debug("gc: froze %d objects with %d connections open", gc.get_freeze_count(), self.open)

    async def run(self, stop: asyncio.Event, interval: float = 0.5) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                self.tick()
