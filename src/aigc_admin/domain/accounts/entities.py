from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AccountSource(StrEnum):
    LOCAL = "local"
    LDAP = "ldap"


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    email: str
    nickname: str
    source: AccountSource
    is_platform_admin: bool
    enabled: bool
    created_at: datetime
    last_login_at: datetime | None = None
