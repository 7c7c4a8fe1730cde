"""Password hashing (argon2id), login tokens (JWT, HS256) and failed-login bookkeeping (Redis)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
import redis.asyncio as aioredis
from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2Hasher:
    def __init__(self) -> None:
        self._ph = _Argon2()

    def hash(self, password: str) -> str:
        return self._ph.hash(password)

    def verify(self, hashed: str, password: str) -> bool:
        if not hashed:
            return False
        try:
            return self._ph.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True)
class TokenClaims:
    account_id: int
    username: str


class InvalidToken(Exception):
    pass


class JwtTokens:
    def __init__(self, secret: str, *, issuer: str, ttl_seconds: int) -> None:
        self._secret = secret
        self._issuer = issuer
        self._ttl = ttl_seconds

    def issue(self, account_id: int, username: str) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {"sub": str(account_id), "name": username, "iss": self._issuer,
                                   "iat": now, "exp": now + self._ttl}
        return jwt.encode(payload, self._secret, algorithm="HS256")

    def decode(self, token: str) -> TokenClaims:
        try:
            data = jwt.decode(token, self._secret, algorithms=["HS256"], issuer=self._issuer,
                              options={"require": ["exp", "sub", "iss"]})
            return TokenClaims(account_id=int(data["sub"]), username=str(data.get("name", "")))
        except (jwt.PyJWTError, ValueError) as e:
            raise InvalidToken(str(e)) from None


class RedisLoginAttempts:
    """N failures within the lock window lock the username for the window (the original: 5 / 30 min)."""

    def __init__(self, client: aioredis.Redis, *, prefix: str, max_failures: int, lock_seconds: int) -> None:
        self._r = client
        self._prefix = prefix
        self._max = max_failures
        self._ttl = lock_seconds

    def _key(self, username: str) -> str:
        return f"{self._prefix}:login-failures:{username.lower()}"

    async def locked_for(self, username: str) -> int:
        key = self._key(username)
        count = await self._r.get(key)
        if count is None or int(count) < self._max:
            return 0
        return max(1, int(await self._r.ttl(key)))

    async def record_failure(self, username: str) -> int:
        key = self._key(username)
        pipe = self._r.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, self._ttl)
        count, _ = await pipe.execute()
        return int(count)

    async def reset(self, username: str) -> None:
        await self._r.delete(self._key(username))


class FernetBox:
    """Symmetric encryption of stored credentials (Fernet: AES-128-CBC + HMAC-SHA256)."""

    def __init__(self, key: str) -> None:
        from cryptography.fernet import Fernet

        self._f = Fernet(key.encode())

    def encrypt(self, plain: str) -> str:
        return self._f.encrypt(plain.encode()).decode()

    def decrypt(self, cipher: str) -> str:
        return self._f.decrypt(cipher.encode()).decode()
