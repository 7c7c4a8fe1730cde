"""Prometheus metrics: what the processes count (the gateway, jobs, events, WebSockets), and the exposition.

Names follow Prometheus conventions (base units, ``_total`` counters, ``_seconds`` histograms) and, where they
apply, the OpenTelemetry GenAI semantic conventions: ``operation`` is ``gen_ai.operation.name`` (chat,
text_completion, embeddings), ``model`` is ``gen_ai.request.model``, a token's ``type`` is ``gen_ai.token.type``
(input, output).

One scrape shows every process of a node when they share a directory (``metrics.dir``; ``aigc-admin up`` sets one
for its API, worker and scheduler): prometheus-client's multiprocess mode, which must be chosen before it is
imported, so ``metrics_dir.enable_multiprocess`` runs first thing in the CLI. Without it, a process shows its own
counts.

Label values are bounded: models are the registered ones, statuses and error types come from the gateway's own
codes, and the channel is a label only when ``metrics.channel.label`` is on (off: "")."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from aigc_admin.adapters.metrics_dir import MULTIPROC_ENV

# The platform's own registry (with the process collectors of the default one): importing this module again, as
# the import test does, makes a new registry instead of registering the families twice in a global one.
REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
JOB_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)

R: dict[str, Any] = {"registry": REGISTRY}
GATEWAY_REQUESTS = Counter("aigc_gateway_requests", "Gateway requests by operation, model, HTTP status and error "
                           "type ('' when it succeeded).", ["operation", "model", "status", "error_type"], **R)
GATEWAY_OVERHEAD = Histogram("aigc_gateway_overhead_seconds", "The gateway's own time per request: everything but "
                             "waiting for the model's worker or upstream (for a stream: until it is handed on).",
                             ["operation"], buckets=OVERHEAD_BUCKETS, **R)
GATEWAY_UPSTREAM = Histogram("aigc_gateway_upstream_seconds", "Time spent waiting for the model's worker or "
                             "upstream (a stream: until its first piece).", ["operation"], buckets=LATENCY_BUCKETS,
                             **R)
GATEWAY_TTFT = Histogram("aigc_gateway_time_to_first_token_seconds", "Streamed answers: from the request to the "
                         "first content sent (gen_ai.server.time_to_first_token).", ["model"],
                         buckets=LATENCY_BUCKETS, **R)
GATEWAY_TOKENS = Counter("aigc_gateway_tokens", "Tokens through the gateway and the model-call path "
                         "(gen_ai.client.token.usage), type input or output.", ["model", "type", "channel"], **R)
LIMIT_REFUSALS = Counter("aigc_gateway_limit_refusals", "Requests refused by a channel's limits, by reason (rpm, "
                         "tpm, quota).", ["reason"], **R)
JOB_DURATION = Histogram("aigc_rq_job_duration_seconds", "RQ jobs of the platform by task and outcome.",
                         ["task", "status"], buckets=JOB_BUCKETS, **R)
EVENTS_PUBLISHED = Counter("aigc_events_published", "Events published on Redis pub/sub, by topic kind.", ["kind"],
                           **R)
WS_SUBSCRIPTIONS = Gauge("aigc_ws_subscriptions", "Open GraphQL subscriptions over WebSockets.",
                         multiprocess_mode="livesum", **R)
WS_CONNECTIONS = Gauge("aigc_ws_connections", "Open GraphQL WebSocket connections.", multiprocess_mode="livesum",
                       **R)

_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, remembered: the gateway records several series per request, and the lookup
    (a lock and a dict) would cost more than the increment."""
    key = (id(metric), labels)
    found = _children.get(key)
    if found is None:
        if len(_children) > 100_000:  # bounded labels make this unlikely; never grow without end
            _children.clear()
        found = _children[key] = metric.labels(*labels)
    return found


class _Families(Collector):
    def __init__(self, families: Iterable[Any]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Any]:
        return self.families


def gauge(name: str, help_text: str, labels: list[str], values: dict[tuple[str, ...], float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def exposition(state: Iterable[GaugeMetricFamily] = ()) -> tuple[bytes, str]:
    """The scrape: every process's counts (this one's, or all the node's in multiprocess mode) and the platform's
    state read for this scrape."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        counted = generate_latest(registry)
    else:
        counted = generate_latest(REGISTRY)
    extra = CollectorRegistry()
    extra.register(_Families(state))
    return counted + generate_latest(extra), CONTENT_TYPE_LATEST
