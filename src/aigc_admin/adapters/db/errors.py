"""The database's refusals of a value, as the domain's INVALID errors.

Tortoise checks every value against its column before a query is sent (``CharField`` lengths, on create,
update and filters alike): those limits are the columns' own, so no service repeats them by hand. The API's
one error path (``resolvers.common.typed_errors`` and the error masking) asks ``invalid_value`` whether an
exception is such a refusal and reports it as a typed INVALID error naming the column."""

from __future__ import annotations

import re

from tortoise.exceptions import ValidationError

from aigc_admin.domain.errors import Invalid

_TOO_LONG = re.compile(r"^(?P<field>\w+): Length of .* (?P<got>\d+) > (?P<max>\d+)$", re.DOTALL)
_FIELD = re.compile(r"^(?P<field>\w+): ")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def invalid_value(exc: BaseException) -> Invalid | None:
    """``exc`` as INVALID when it is the database layer refusing a value; None otherwise. The message never
    repeats the value (it may be long, or a secret)."""
    if not isinstance(exc, ValidationError):
        return None
    text = str(exc)
    too_long = _TOO_LONG.match(text)
    if too_long:
        field = _camel(too_long["field"])
        return Invalid(field, f"{field}: at most {too_long['max']} characters (got {too_long['got']})")
    named = _FIELD.match(text)
    field = _camel(named["field"]) if named else "input"
    return Invalid(field, f"{field}: a value out of range or of the wrong kind")
