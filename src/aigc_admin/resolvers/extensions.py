"""Schema extensions: error masking with a trace id, and the audit log of every mutation."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode
from graphql import OperationType as CoreOperationType
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.types.graphql import OperationType

from aigc_admin.resolvers.common import expected_error

log = logging.getLogger("aigc_admin.graphql")


def _is_expected(error: GraphQLError) -> bool:
    """Errors we raised on purpose (auth, validation, limits) keep their message; others are masked."""
    if error.original_error is None:
        return True  # syntax/validation errors produced by graphql-core itself
    if error.path is None and isinstance(error.original_error, GraphQLError):
        return True  # variable coercion errors (missing or wrongly typed variables), before execution
    return bool(error.extensions and error.extensions.get("code"))


class TraceMaskErrors(MaskErrors):
    """Expected failures raised outside a mutation's payload (a domain error of a query, a value the database
    refuses) become errors with their code; unexpected exceptions become "Unexpected error" with a trace id,
    the stack going to the log."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda e: not _is_expected(e), error_message="Unexpected error")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return masked(error, getattr(self.execution_context.context, "trace_id", ""))


def unexpected(error: GraphQLError) -> bool:
    """An error the masking turns into INTERNAL_ERROR (and logs at ERROR with its trace id)."""
    if _is_expected(error) or error.original_error is None:
        return False
    return expected_error(error.original_error) is None


def log_refusals(errors: list[GraphQLError], trace_id: str) -> None:
    """Expected refusals (not signed in, not allowed, invalid input, syntax, limits) at INFO: one line, without a
    traceback or the document (a client can send megabytes of it). The unexpected are logged where they are
    masked, at ERROR with the stack and the trace id."""
    if not log.isEnabledFor(logging.INFO):
        return
    for error in errors:
        if unexpected(error):
            continue
        code = (error.extensions or {}).get("code")
        if code is None and error.original_error is not None:
            expected = expected_error(error.original_error)
            code = expected.code.value if expected is not None else None
        message = error.message if len(error.message) <= 300 else error.message[:300] + "…"
        log.info("refused (trace %s) %s at %s: %s", trace_id, code or "BAD_REQUEST", error.path or "-", message)


def masked(error: GraphQLError, trace_id: str) -> GraphQLError:
    """What TraceMaskErrors makes of ``error`` (for errors sent outside strawberry's pipeline)."""
    if _is_expected(error):
        return error
    expected = expected_error(error.original_error) if error.original_error is not None else None
    if expected is not None:
        return GraphQLError(message=expected.message, nodes=error.nodes, source=error.source,
                            positions=error.positions, path=error.path,
                            extensions={"code": str(expected.code.value), "field": expected.field})
    return _anonymise(error, trace_id)


def _anonymise(error: GraphQLError, trace_id: str) -> GraphQLError:
    log.error("unexpected error in %s (trace %s)", error.path, trace_id, exc_info=error.original_error)
    return GraphQLError(message=f"Unexpected error (trace id {trace_id})", nodes=error.nodes,
                        source=error.source, positions=error.positions, path=error.path,
                        extensions={"code": "INTERNAL_ERROR", "traceId": trace_id})


class AuditMutations(SchemaExtension):
    """Writes one audit row per mutation operation: operator, tenant, fields, masked variables, outcome."""

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        # Arguments of root mutation fields, inline literals and variables alike, as the resolver gets them.
        if info.parent_type.name == "Mutation":
            getattr(info.context, "mutation_args", {})[info.field_name] = _plain(kwargs)
        return _next(root, info, *args, **kwargs)

    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        started = time.perf_counter()
        ctx = self.execution_context.context
        if hasattr(ctx, "mutation_args"):
            ctx.mutation_args = {}
        yield
        ec = self.execution_context
        if ec.operation_type != OperationType.MUTATION:
            return
        fields = _root_fields(ec)
        args: dict[str, Any] = dict(getattr(ctx, "mutation_args", {}) or {})
        result = ec.result
        errors = [e.message for e in (getattr(result, "errors", None) or [])]
        errors += list(getattr(ctx, "mutation_errors", []))
        principal = getattr(ctx, "principal", None)
        login_input = args.get("login", {}).get("input", {}) if isinstance(args.get("login"), dict) else {}
        await ctx.services.audit.record_call(
            principal=principal, operator=str(login_input.get("username", "")),
            operation=",".join(fields) or (ec.operation_name or "mutation"), variables=args,
            duration_ms=int((time.perf_counter() - started) * 1000), error="; ".join(errors),
            trace_id=ctx.trace_id, tenant_id=_tenant_of(ctx.tenant_id, args), remote_addr=ctx.remote_addr)


def _root_fields(ec: Any) -> list[str]:
    doc = ec.graphql_document
    if doc is None:
        return []
    for d in doc.definitions:
        if isinstance(d, OperationDefinitionNode) and d.operation == CoreOperationType.MUTATION and (
                ec.operation_name is None or (d.name and d.name.value == ec.operation_name)):
            return [s.name.value for s in d.selection_set.selections if hasattr(s, "name")]
    return []


def _plain(value: Any) -> Any:
    """Strawberry inputs → JSON-friendly values (for the audit row)."""
    import dataclasses
    from enum import Enum

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None and type(getattr(value, f.name)).__name__ != "UnsetType"}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _tenant_of(header_tenant: int | None, args: dict[str, Any]) -> int | None:
    """The request's tenant, else the tenant a mutation names (e.g. setTenantMembership's tenantId),
    so that the tenant's maintainers see what platform admins did to it."""
    if header_tenant is not None:
        return header_tenant
    for field_args in args.values():
        source = field_args.get("input", field_args) if isinstance(field_args, dict) else {}
        value = source.get("tenantId", source.get("tenant_id")) if isinstance(source, dict) else None
        if value is not None and str(value).isdigit():
            return int(value)
    return None


class TraceOperations(SchemaExtension):
    """A span per GraphQL operation (when tracing is on): what it starts (jobs, runtime calls) is its child."""

    def on_operation(self) -> Iterator[None]:
        from opentelemetry.trace import SpanKind

        from aigc_admin.adapters.tracing import tracer

        with tracer.start_as_current_span("graphql", kind=SpanKind.SERVER) as span:
            yield
            ctx = self.execution_context
            kind = ctx.operation_type.value if ctx.operation_type is not None else "operation"
            span.update_name(f"graphql {kind} {ctx.operation_name or ''}".rstrip())
            span.set_attribute("graphql.operation.type", kind)
            if ctx.operation_name:
                span.set_attribute("graphql.operation.name", ctx.operation_name)
