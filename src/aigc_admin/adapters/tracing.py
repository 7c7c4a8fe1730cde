"""OpenTelemetry traces, exported over OTLP/HTTP (Jaeger, Tempo and the OpenTelemetry Collector accept it).

The original's ``tracer.*`` settings map onto it: ``tracer.enable`` turns it on, ``tracer.jaeger.host`` names the
collector (its host, with OTLP's port 4318; or ``tracer.otlp.endpoint``, a full URL), ``tracer.jaeger.type`` and
``tracer.jaeger.param`` choose the sampling (``const`` with 1: every trace, 0: none; ``probabilistic`` or
``ratio``: that share of traces; a trace started upstream keeps its parent's decision).

A trace follows the work: a GraphQL operation's span → the RQ job it enqueued (the context travels in the job's
meta) → the runtime calls the job makes. Gateway requests get a span with the GenAI attributes (operation, model,
token usage). Off (the default), nothing is set up: the tracer is OpenTelemetry's no-op proxy and the gateway does
not even ask it for a span."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from aigc_admin.domain.runtime import LogChunk, Runtime, WorkloadHandle, WorkloadSpec, WorkloadStatus
from aigc_admin.settings import Settings

log = logging.getLogger(__name__)
tracer = trace.get_tracer("aigc_admin")  # a proxy: a no-op until a provider is set
_provider: Any = None


def otlp_endpoint(settings: Settings) -> str:
    if settings.tracer_otlp_endpoint:
        return settings.tracer_otlp_endpoint
    host = settings.tracer_jaeger_host.strip()
    if "://" in host:
        return host.rstrip("/") + "/v1/traces"
    name = urlsplit(f"//{host}").hostname or "localhost"
    return f"http://{name}:4318/v1/traces"  # OTLP/HTTP's port (6832 was Jaeger's UDP agent)


def _sampler(settings: Settings) -> Any:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased

    kind, ratio = settings.tracer_jaeger_type.lower(), max(0.0, min(1.0, settings.tracer_jaeger_param))
    if kind == "const":
        return ParentBased(ALWAYS_ON if ratio >= 1 else ALWAYS_OFF)
    return ParentBased(TraceIdRatioBased(ratio))


def head_ratio(settings: Settings) -> float:
    """The share of gateway requests that get a span, decided before making one (a span that is not sampled
    still costs its context and ids: ~8 µs, which at 1 % sampling would be the whole cost). A request that
    carries a ``traceparent`` is always given one: its parent decides."""
    if not settings.tracer_enable:
        return 0.0
    ratio = max(0.0, min(1.0, settings.tracer_jaeger_param))
    if settings.tracer_jaeger_type.lower() == "const":
        return 1.0 if ratio >= 1 else 0.0
    return ratio


def continued(headers: list[tuple[bytes, bytes]]) -> Any:
    """The trace context a request carries (W3C traceparent), or None."""
    carried = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k in (b"traceparent", b"tracestate")}
    return propagate.extract(carried) if "traceparent" in carried else None


def setup(settings: Settings, service: str) -> bool:
    """Export this process's spans (once per process; a forked job process calls it again: the exporting thread
    does not survive a fork). Returns whether tracing is on."""
    global _provider
    if not settings.tracer_enable:
        return False
    if _provider is not None:
        return True
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": settings.server_name or "aigc-admin",
                                                        "service.namespace": "aigc-admin",
                                                        "aigc.process": service}),
                              sampler=_sampler(settings))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint(settings), timeout=5)))
    trace.set_tracer_provider(provider)
    _provider = provider
    log.info("tracing to %s (%s)", otlp_endpoint(settings), service)
    return True


def flush() -> None:
    """Send what is buffered (a job process ends right after its job)."""
    if _provider is not None:
        _provider.force_flush(5000)


def carrier() -> dict[str, str]:
    """The current trace context, to travel with a job (empty when there is none)."""
    out: dict[str, str] = {}
    if trace.get_current_span().get_span_context().is_valid:
        propagate.inject(out)
    return out


@contextmanager
def job_span(name: str, carried: dict[str, str] | None) -> Iterator[Span]:
    """A job's span, the child of the operation that enqueued it."""
    parent = propagate.extract(carried) if carried else otel_context.get_current()
    with tracer.start_as_current_span(name, context=parent, kind=SpanKind.CONSUMER) as span:
        yield span


def failed(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


class TracedRuntime:
    """A runtime whose calls are spans (start, stop: what a job does to the infrastructure)."""

    def __init__(self, inner: Runtime) -> None:
        self.inner = inner
        self.type = inner.type

    async def status(self, handle: WorkloadHandle) -> WorkloadStatus:
        return await self.inner.status(handle)

    async def logs(self, handle: WorkloadHandle, since: int = 0, replica: int = 0) -> LogChunk:
        return await self.inner.logs(handle, since, replica)

    async def list_owned(self) -> list[WorkloadHandle]:
        return await self.inner.list_owned()

    def __getattr__(self, name: str) -> Any:  # backend extras (close, ...)
        return getattr(self.inner, name)

    async def start(self, spec: WorkloadSpec) -> WorkloadHandle:
        with tracer.start_as_current_span(f"runtime.start {spec.name}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("aigc.runtime", str(self.inner.type))
            span.set_attribute("aigc.workload.kind", str(getattr(spec, "kind", "")))
            return await self.inner.start(spec)

    async def restart_failed(self, handle: WorkloadHandle, spec: WorkloadSpec) -> list[int]:
        with tracer.start_as_current_span(f"runtime.restart_failed {handle.name}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("aigc.runtime", str(self.inner.type))
            return await self.inner.restart_failed(handle, spec)

    async def stop(self, handle: WorkloadHandle) -> None:
        with tracer.start_as_current_span(f"runtime.stop {handle.name}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("aigc.runtime", str(self.inner.type))
            await self.inner.stop(handle)
