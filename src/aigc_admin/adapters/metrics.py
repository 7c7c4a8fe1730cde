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

import bisect
import os
from collections.abc import Iterable, Iterator
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
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
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
MODEL_CALL_TOKENS = Counter("aigc_model_call_tokens", "Tokens of the platform's own model calls (playground, "
                            "evaluations, assistants), type input or output.", ["model", "type", "channel"], **R)
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


class _Histograms:
    """Histograms by label value, counted with plain list and dict operations."""

    __slots__ = ("bounds", "series")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.series: dict[str, list[float]] = {}  # label value -> [bucket counts..., +Inf count, sum]

    def observe(self, label: str, value: float) -> None:
        counts = self.series.get(label)
        if counts is None:
            counts = self.series[label] = [0.0] * (len(self.bounds) + 2)
        counts[bisect.bisect_left(self.bounds, value)] += 1
        counts[-1] += value

    def family(self, name: str, help_text: str, label: str) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, help_text, labels=[label])
        for value, counts in sorted(self.series.items()):
            cumulative, buckets = 0.0, []
            for bound, n in zip((*self.bounds, float("inf")), counts[:-1], strict=True):
                cumulative += n
                buckets.append((str(bound) if bound != float("inf") else "+Inf", cumulative))
            family.add_metric([value], buckets, counts[-1])
        return family


class GatewayStats(Collector):
    """The /v1 hot path's counts, kept in plain dicts and exported at scrape time: prometheus-client's metric
    objects take a lock per operation, which measured as ~10 % of a proxied request's CPU
    (bench/gateway.py --observability). Only the API process serves /v1, so these need no multiprocess files."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str, str], int] = {}
        self.tokens: dict[tuple[str, str, str], int] = {}
        self.admission: dict[str, int] = {}  # outcome (admitted, held, shed_timeout, shed_full) → requests
        self.overhead = _Histograms(OVERHEAD_BUCKETS)
        self.upstream = _Histograms(LATENCY_BUCKETS)
        self.ttft = _Histograms(LATENCY_BUCKETS)

    def request(self, operation: str, model: str, status: str, error: str) -> None:
        key = (operation, model, status, error)
        self.requests[key] = self.requests.get(key, 0) + 1

    def admission_outcome(self, outcome: str) -> None:
        self.admission[outcome] = self.admission.get(outcome, 0) + 1

    def count_tokens(self, model: str, channel: str, prompt: int, completion: int) -> None:
        for key, n in (((model, "input", channel), prompt), ((model, "output", channel), completion)):
            self.tokens[key] = self.tokens.get(key, 0) + n

    def collect(self) -> Iterator[Any]:
        tokens = CounterMetricFamily("aigc_gateway_tokens", "Tokens of /v1 requests (gen_ai.client.token.usage), "
                                     "type input or output.", labels=["model", "type", "channel"])
        for token_key, n in sorted(self.tokens.items()):
            tokens.add_metric(list(token_key), n)
        yield tokens
        requests = CounterMetricFamily("aigc_gateway_requests", "Gateway requests by operation, model, HTTP status "
                                       "and error type ('' when it succeeded).",
                                       labels=["operation", "model", "status", "error_type"])
        for key, n in sorted(self.requests.items()):
            requests.add_metric(list(key), n)
        yield requests
        admission = CounterMetricFamily("aigc_gateway_admission", "Local-model requests by admission outcome: "
                                        "admitted at once, held (waited for a replica, then admitted), shed_timeout "
                                        "or shed_full (refused with 429).", labels=["outcome"])
        for outcome, n in sorted(self.admission.items()):
            admission.add_metric([outcome], n)
        yield admission
        yield self.overhead.family("aigc_gateway_overhead_seconds", "The gateway's own time per request: "
                                   "everything but waiting for the model's worker or upstream (a stream: until it "
                                   "is handed on).", "operation")
        yield self.upstream.family("aigc_gateway_upstream_seconds", "Time spent waiting for the model's worker or "
                                   "upstream (a stream: until its first piece).", "operation")
        yield self.ttft.family("aigc_gateway_time_to_first_token_seconds", "Streamed answers: from the request to "
                               "the first content sent (gen_ai.server.time_to_first_token).", "model")


GATEWAY = GatewayStats()
REGISTRY.register(GATEWAY)


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
    extra = CollectorRegistry()
    extra.register(_Families(state))
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        counted = generate_latest(registry)
        extra.register(GATEWAY)  # this process's /v1 counts (kept in memory, not in the shared files)
    else:
        counted = generate_latest(REGISTRY)
    return counted + generate_latest(extra), CONTENT_TYPE_LATEST
