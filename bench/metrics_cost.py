"""The CPU the gateway's metrics add to one proxied request, measured in isolation (what --observability in
bench/gateway.py measures end to end, where two server processes differ by ±5 % on their own).

It runs, many times, exactly the work a /v1 request does for its metrics, through the real code: the probe set
in the request's context, the model noted by the route, the wait for the upstream timed, the tokens counted at
settlement, the request's count and its overhead and upstream histograms, and prints µs per request next to the
CPU per request that bench/gateway.py measured for a whole proxied request with metrics off.

    .venv/bin/python bench/metrics_cost.py [--per-request-ms 0.091]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-request-ms", type=float, default=0.091,
                        help="CPU of a whole proxied request with metrics off (bench/gateway.py --observability)")
    parser.add_argument("-n", type=int, default=300_000)
    args = parser.parse_args()

    from aigc_admin.adapters import metrics as pm
    from aigc_admin.gateway import router

    def with_metrics() -> None:
        probe = router.Probe("chat", True)
        token = router._PROBE.set(probe)
        started = time.perf_counter()
        got = router._PROBE.get()  # _route notes the model
        if got is not None:
            got.model = "bench-chat"
        waiting = time.perf_counter()
        router._waited(waiting)  # the upstream call
        got = router._PROBE.get()  # _settle
        if got is not None:
            got.input_tokens, got.output_tokens = 12, 5
            pm.GATEWAY.count_tokens("bench-chat", "", 12, 5)
        router._record(probe, 200, "", time.perf_counter() - started)
        router._PROBE.reset(token)

    def without() -> None:
        token = router._PROBE.set(None)
        router._PROBE.get()
        router._waited(0.0)
        router._PROBE.get()
        router._PROBE.reset(token)

    results = {}
    for name, fn in (("without", without), ("with", with_metrics)) * 3:
        started = time.process_time()
        for _ in range(args.n):
            fn()
        results.setdefault(name, []).append((time.process_time() - started) / args.n * 1e6)
    added = min(results["with"]) - min(results["without"])
    print(f"metrics' own work per request: {added:.2f} µs (with {min(results['with']):.2f}, "
          f"without {min(results['without']):.2f}; best of 3 × {args.n})")
    print(f"against {args.per_request_ms * 1000:.0f} µs of CPU per proxied request (metrics off): "
          f"+{100 * added / (args.per_request_ms * 1000):.1f} %  (target ≤ 3 %)")
    traced = tracing_cost(args.n // 3)
    print(f"tracing at 1 % per request (the head-sampling decision, and a span with its attributes, batched and "
          f"handed to an exporter for 1 request in 100): {traced:.2f} µs: "
          f"+{100 * traced / (args.per_request_ms * 1000):.1f} %  (target ≤ 3 %)")
    return 0


def tracing_cost(n: int) -> float:
    """µs of CPU (every thread: the batch processor's too) per request that tracing at 1 % adds."""
    import random

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.trace import SpanKind

    from aigc_admin.adapters import tracing

    class Dropped(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped()))
    trace.set_tracer_provider(provider)
    headers = [(b"host", b"127.0.0.1:8080"), (b"authorization", b"Bearer sk-x"), (b"content-type", b"application/json"),
               (b"content-length", b"80"), (b"user-agent", b"h2load")]

    def request() -> None:
        parent = tracing.continued(headers)
        if parent is not None or random.random() < 0.01:
            with tracing.tracer.start_as_current_span("chat", context=parent, kind=SpanKind.SERVER) as span:
                span.update_name("chat bench-chat")
                for key, value in (("gen_ai.operation.name", "chat"), ("aigc.trace_id", "x-1"),
                                   ("gen_ai.request.model", "bench-chat"), ("gen_ai.usage.input_tokens", 12),
                                   ("gen_ai.usage.output_tokens", 5)):
                    span.set_attribute(key, value)

    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(n):
            request()
        provider.force_flush()
        best = min(best, (time.process_time() - started) / n * 1e6)
    provider.shutdown()
    return best


if __name__ == "__main__":
    sys.exit(main())
