"""What every area's resolvers share: the context, the request's tenant, paging, ids, and typed mutation errors."""

from __future__ import annotations

import functools
import typing
from collections.abc import Awaitable, Callable, Sequence
from enum import Enum
from typing import Any, TypeVar

from strawberry.types import Info

from aigc_admin.adapters.db.errors import invalid_value
from aigc_admin.domain.errors import CommonErrorCode, DomainError
from aigc_admin.resolvers.context import Context
from aigc_admin.schema.common import Page, Pagination

P = TypeVar("P")
T = TypeVar("T")
MAX_PAGE = 100


class BadInput(DomainError):
    pass


def ctx(info: Info) -> Context:
    return info.context  # type: ignore[no-any-return]


def request_tenant(info: Info) -> int:
    """The request's tenant, for fields whose TENANT_* permission already checked membership."""
    tenant_id = ctx(info).tenant_id
    assert tenant_id is not None  # guaranteed by the TENANT_* permissions
    return tenant_id


def operator(info: Info) -> str:
    """The signed-in caller's username (kept as the operator of what it changes)."""
    principal = ctx(info).principal
    return principal.username if principal else ""


def page_args(p: Pagination | None) -> tuple[int, int]:
    p = p or Pagination()
    return max(0, p.offset), min(max(1, p.limit), MAX_PAGE)


def page(items: Sequence[T], total: int, offset: int, limit: int) -> Page[T]:
    return Page(items=list(items), total_count=total, offset=offset, limit=limit)


MAX_ID = 2**63 - 1  # ids are BIGINTs


def parse_id(value: object, field: str = "id") -> int:
    """The one converter of ids from the API: an integer from 0 to 2^63 - 1 (BadInput, INVALID, otherwise).
    Every ID argument that names a row goes through it, so no driver ever sees a value it cannot bind."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_ID:  # '¹³'.isdigit()
        raise BadInput(CommonErrorCode.INVALID, f"{field} must be a numeric id from 0 to {MAX_ID}", field)
    return int(text)


def optional_id(value: object | None, field: str) -> int | None:
    return None if value is None or value == "" else parse_id(value, field)


# --- typed mutation errors ------------------------------------------------------------------------------------
def typed_errors(resolver: Callable[..., Awaitable[P]]) -> Callable[..., Awaitable[P]]:
    """Expected failures (``DomainError``) of a mutation become its payload's ``errors`` (Saleor's second error
    channel), and are noted for the audit row. The payload type is the resolver's return annotation; its
    ``errors`` list names the error type, whose ``code`` names the enum (a code it does not have: INVALID).
    An error type may build its own list from the exception with a ``from_error`` classmethod."""

    @functools.wraps(resolver)
    async def wrapper(*args: Any, **kwargs: Any) -> P:
        try:
            return await resolver(*args, **kwargs)
        except Exception as exc:
            e = expected_error(exc)
            if e is None:
                raise
            info = kwargs.get("info") or next(a for a in args if isinstance(a, Info))
            ctx(info).mutation_errors.append(f"{e.code.value}: {e.message}")
            payload, error = _payload_types(resolver)
            return payload(errors=errors_of(error, e))

    return wrapper


def expected_error(exc: BaseException) -> DomainError | None:
    """``exc`` as an expected failure: a domain error, or the database refusing a value (a string longer than its
    column: the columns' limits apply to every field without being repeated); None for anything else."""
    if isinstance(exc, DomainError):
        return exc
    return invalid_value(exc)


@functools.cache
def _payload_types(resolver: Callable[..., Any]) -> tuple[Callable[..., Any], type]:
    payload = typing.get_type_hints(resolver)["return"]
    (error,) = typing.get_args(typing.get_type_hints(payload)["errors"])
    return payload, error


def errors_of(error: Any, e: DomainError) -> list[Any]:
    """``e`` as a list of the GraphQL error type ``error``."""
    custom = getattr(error, "from_error", None)
    if custom is not None:
        return list(custom(e))
    return [error(field=e.field, code=code_of(error, e), message=e.message)]


def code_of(error: Any, e: DomainError) -> Enum:
    codes: type[Enum] = typing.get_type_hints(error)["code"]
    try:
        return codes(e.code.value)
    except ValueError:
        return codes("INVALID")
