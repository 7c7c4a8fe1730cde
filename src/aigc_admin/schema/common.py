"""Shapes every area uses: expected mutation errors, pages of lists, the empty payload."""

from __future__ import annotations

from typing import Generic, TypeVar

import strawberry

from aigc_admin.domain import errors as domain_errors

T = TypeVar("T")

CommonErrorCode = strawberry.enum(domain_errors.CommonErrorCode, description="Codes of expected mutation failures.")


@strawberry.type(description="An expected failure of a mutation, tied to an input field when there is one.")
class Error:
    field: str | None
    code: CommonErrorCode  # type: ignore[valid-type]
    message: str


@strawberry.type(description="One page of a list.")
class Page(Generic[T]):
    items: list[T]
    total_count: int
    offset: int
    limit: int


@strawberry.input(description="Paging of a list: at most 100 items per page.")
class Pagination:
    offset: int = 0
    limit: int = 20


@strawberry.type(description="Result of a delete or another mutation with nothing to return.")
class OkPayload:
    ok: bool = False
    errors: list[Error] = strawberry.field(default_factory=list)
