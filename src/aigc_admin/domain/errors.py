"""Expected failures of use cases. Each area owns an enum of codes; GraphQL exposes them as enums."""

from __future__ import annotations

from enum import StrEnum


class CommonErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"
    DUPLICATE = "DUPLICATE"
    FORBIDDEN = "FORBIDDEN"


class DomainError(Exception):
    """An expected failure: reported to the caller in a mutation's ``errors`` list."""

    def __init__(self, code: StrEnum, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class NotFound(DomainError):
    def __init__(self, what: str, ident: object, field: str | None = "id") -> None:
        super().__init__(CommonErrorCode.NOT_FOUND, f"{what} {ident} not found", field)


class Invalid(DomainError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(CommonErrorCode.INVALID, message, field)


class Duplicate(DomainError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(CommonErrorCode.DUPLICATE, message, field)
