"""One page of a query: its rows and the total count (every list query of the repositories)."""

from __future__ import annotations

from typing import Any, TypeVar

from tortoise.models import Model
from tortoise.queryset import QuerySet

M = TypeVar("M", bound=Model)


async def page(qs: QuerySet[M], *, offset: int, limit: int, order: tuple[str, ...] = ("id",)) -> tuple[list[M], int]:
    """``qs`` ordered by ``order``, ``limit`` rows from ``offset``, and how many rows match in all."""
    total = await qs.count()
    rows: Any = await qs.order_by(*order).offset(offset).limit(limit)
    return list(rows), total
