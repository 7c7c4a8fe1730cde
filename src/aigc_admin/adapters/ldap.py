"""LDAP directory adapter (ldap3, run in a worker thread).

Flow: service bind -> search the user by login name -> bind as the user's DN with the given
password -> search the groups that list the user's DN. Every value put into a filter is escaped,
so a login name such as ``*`` or ``alice)(uid=*`` matches nobody.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from typing import Any

from ldap3 import NONE, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from aigc_admin.domain.accounts.ports import DirectoryUnavailable, DirectoryUser

log = logging.getLogger(__name__)

_ALWAYS_FETCHED = ("mail", "displayName", "cn")
# The attribute the user filter compares with the login name, e.g. uid in "(uid=%s)".
_LOGIN_ATTR_RE = re.compile(r"\(([A-Za-z][\w-]*)=%s\)")


class LdapDirectory:
    """`Directory` port backed by an LDAP server."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        use_ssl: bool,
        base_dn: str,
        bind_user: str,
        bind_pass: str,
        user_filter: str,
        group_filter: str,
        user_attrs: list[str],
        timeout: float = 5.0,
    ) -> None:
        self._host, self._port, self._use_ssl = _split_host(host, port, use_ssl)
        self._base_dn = base_dn
        self._bind_user = bind_user
        self._bind_pass = bind_pass
        self._user_filter = user_filter
        self._group_filter = group_filter
        match = _LOGIN_ATTR_RE.search(user_filter)
        self._login_attr = match.group(1) if match else ""
        login_attrs = [self._login_attr] if self._login_attr else []
        self._user_attrs = list(dict.fromkeys([*user_attrs, *_ALWAYS_FETCHED, *login_attrs]))
        self._timeout = timeout

    @classmethod
    def from_settings(cls, s: Any) -> LdapDirectory:
        """Build from an object with the `ldap_*` settings attributes (duck typed)."""
        bind_pass = s.ldap_bind_pass
        if hasattr(bind_pass, "get_secret_value"):
            bind_pass = bind_pass.get_secret_value()
        return cls(
            host=s.ldap_host,
            port=int(s.ldap_port),
            use_ssl=bool(s.ldap_use_ssl),
            base_dn=s.ldap_base_dn,
            bind_user=s.ldap_bind_user,
            bind_pass=str(bind_pass or ""),
            user_filter=s.ldap_user_filter,
            group_filter=s.ldap_group_filter,
            user_attrs=[a.strip() for a in str(s.ldap_user_attr or "").split(",") if a.strip()],
        )

    def __repr__(self) -> str:  # never show the service password
        return f"LdapDirectory(host={self._host!r}, port={self._port}, base_dn={self._base_dn!r})"

    async def authenticate(self, username: str, password: str) -> DirectoryUser | None:
        # An empty password would be an "unauthenticated bind", which LDAP servers accept.
        if not username or not password:
            return None
        return await asyncio.to_thread(self._authenticate, username, password)

    # -- synchronous part, runs in a worker thread -------------------------------------------

    def _server(self) -> Server:
        return Server(
            self._host, port=self._port, use_ssl=self._use_ssl, connect_timeout=self._timeout, get_info=NONE
        )

    def _connection(self, server: Server, user: str | None, password: str | None) -> Connection:
        return Connection(
            server, user=user or None, password=password or None,
            # ldap3 packs this into SO_RCVTIMEO as whole seconds: it must be an int.
            receive_timeout=max(1, math.ceil(self._timeout)), raise_exceptions=False, read_only=True,
        )

    def _unavailable(self, what: str, detail: str) -> DirectoryUnavailable:
        detail = detail.replace(self._bind_pass, "***") if self._bind_pass else detail
        return DirectoryUnavailable(f"LDAP {what} failed at {self._host}:{self._port}: {detail}")

    def _authenticate(self, username: str, password: str) -> DirectoryUser | None:
        server = self._server()
        service = self._connection(server, self._bind_user, self._bind_pass)
        try:
            try:
                bound = service.bind()
            except LDAPException as exc:
                raise self._unavailable("connection", f"{type(exc).__name__}: {exc}") from None
            if not bound:
                raise self._unavailable("service bind", _describe(service.result))
            entry = self._find_user(service, username)
            if entry is None:
                return None
            dn, attrs = entry
            if not self._check_password(server, dn, password):
                return None
            groups = self._find_groups(service, dn)
        finally:
            _unbind(service)
        return DirectoryUser(
            dn=dn,
            username=self._canonical_name(username, attrs),
            email=_first(attrs.get("mail")),
            display_name=_first(attrs.get("displayName")) or _first(attrs.get("cn")),
            groups=groups,
        )

    def _canonical_name(self, username: str, attrs: dict[str, Any]) -> str:
        """The login name as the directory spells it ('ALICE' logs in as 'alice'), so that one person
        maps to one account whatever case they type."""
        for key, value in attrs.items():
            if self._login_attr and key.lower() == self._login_attr.lower():
                for v in _values(value):
                    if v.lower() == username.lower():
                        return v
        return username

    def _search(self, conn: Connection, flt: str, attrs: list[str]) -> list[dict[str, Any]]:
        try:
            ok = conn.search(self._base_dn, flt, search_scope=SUBTREE, attributes=attrs)
        except LDAPException as exc:
            raise self._unavailable("search", f"{type(exc).__name__}: {exc}") from None
        if not ok and conn.result.get("result") not in (0, 32):  # 32: noSuchObject
            raise self._unavailable("search", _describe(conn.result))
        return [r for r in conn.response or [] if r.get("type") == "searchResEntry"]

    def _find_user(self, conn: Connection, username: str) -> tuple[str, dict[str, Any]] | None:
        flt = self._user_filter.replace("%s", escape_filter_chars(username))
        entries = self._search(conn, flt, self._user_attrs)
        if len(entries) != 1:
            if len(entries) > 1:
                log.warning("LDAP user filter matched %d entries for one login; refusing", len(entries))
            return None
        return str(entries[0]["dn"]), dict(entries[0].get("attributes") or {})

    def _check_password(self, server: Server, dn: str, password: str) -> bool:
        conn = self._connection(server, dn, password)
        try:
            ok = bool(conn.bind())
        except LDAPException as exc:
            raise self._unavailable("user bind", f"{type(exc).__name__}: {exc}") from None
        finally:
            _unbind(conn)
        if not ok and conn.result.get("result") != 49:  # 49: invalidCredentials
            raise self._unavailable("user bind", _describe(conn.result))
        return ok

    def _find_groups(self, conn: Connection, dn: str) -> tuple[str, ...]:
        flt = self._group_filter.replace("%s", escape_filter_chars(dn))
        groups: list[str] = []
        for entry in self._search(conn, flt, ["cn"]):
            for cn in _values(entry.get("attributes", {}).get("cn")):
                groups.append(cn)
            groups.append(str(entry["dn"]))
        return tuple(dict.fromkeys(groups))


def _split_host(host: str, port: int, use_ssl: bool) -> tuple[str, int, bool]:
    """'ldap://name[:port]', 'ldaps://name[:port]' or a bare name -> (name, port, use_ssl).

    A port written in the URL wins over the separate port setting.
    """
    rest = host.strip()
    scheme, sep, after = rest.partition("://")
    if sep:
        rest = after
        use_ssl = use_ssl or scheme.lower() == "ldaps"
    rest = rest.split("/", 1)[0]
    name, colon, port_text = rest.rpartition(":")
    if colon and port_text.isdigit() and ":" not in name.strip("[]"):
        return name, int(port_text), use_ssl
    return rest, port, use_ssl


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)] if value != "" else []


def _first(value: Any) -> str:
    values = _values(value)
    return values[0] if values else ""


def _describe(result: dict[str, Any] | None) -> str:
    result = result or {}
    text = f"{result.get('description', 'error')} ({result.get('result', '?')}) {result.get('message', '')}"
    return text.strip()


def _unbind(conn: Connection) -> None:
    try:
        if conn.bound:
            conn.unbind()
    except LDAPException:  # already closed; nothing to release
        pass
