"""Helpers shared by resolvers: paging, ids, mapping domain errors into payloads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, TypeVar

from strawberry.types import Info

from aigc_admin.domain.errors import DomainError
from aigc_admin.resolvers.context import Context
from aigc_admin.schema.types import Pagination

P = TypeVar("P")
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


def page_args(p: Pagination | None) -> tuple[int, int]:
    p = p or Pagination()
    return max(0, p.offset), min(max(1, p.limit), MAX_PAGE)


def parse_id(value: object, field: str = "id") -> int:
    from aigc_admin.domain.errors import CommonErrorCode

    try:
        n = int(str(value))
    except ValueError:
        raise BadInput(CommonErrorCode.INVALID, f"{field} must be a numeric id", field) from None
    if n < 0:
        raise BadInput(CommonErrorCode.INVALID, f"{field} must be a numeric id", field)
    return n


async def run_mutation(
    info: Info,
    payload: Callable[..., P],
    error_type: Callable[..., Any],
    code_enum: type[Enum],
    action: Callable[[], Awaitable[dict[str, Any]]],
) -> P:
    """Run ``action``; expected failures become ``payload(errors=[...])`` and are noted for the audit log."""
    try:
        return payload(**await action())
    except DomainError as e:
        try:
            code = code_enum(e.code.value)
        except ValueError:
            code = code_enum("INVALID")
        ctx(info).mutation_errors.append(f"{e.code.value}: {e.message}")
        return payload(errors=[error_type(field=e.field, code=code, message=e.message)])
