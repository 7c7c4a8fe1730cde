"""A throwaway real OpenLDAP server (slapd) for integration tests.

Runs ``/usr/sbin/slapd -f CONF -h ldap://127.0.0.1:PORT/`` in the foreground as a child process,
with an mdb database seeded by ``slapadd``. Never touches a system slapd.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from aigc_admin.adapters.net import free_port

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

BASE_DN = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "admin-secret"
READER_DN = f"cn=reader,{BASE_DN}"
READER_PASSWORD = "reader-secret"
USERS: dict[str, str] = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}
GROUPS: dict[str, list[str]] = {"llm-admins": ["alice"], "team-a": ["bob", "alice"], "team-b": ["carol"]}


@dataclass
class SlapdServer:
    url: str
    port: int
    base_dn: str
    admin_dn: str
    admin_password: str
    process: subprocess.Popen[bytes]
    reader_dn: str = READER_DN
    reader_password: str = READER_PASSWORD

    def user_dn(self, uid: str) -> str:
        return f"uid={uid},ou=people,{self.base_dn}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _hash(password: str) -> str:
    slappasswd = shutil.which("slappasswd") or "/usr/sbin/slappasswd"
    if not Path(slappasswd).exists():
        return password  # plain text is accepted by slapd for simple binds
    out = subprocess.run([slappasswd, "-s", password], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def _config(workdir: Path) -> str:
    names = ("core", "cosine", "inetorgperson", "nis")
    schemas = "\n".join(f"include {SCHEMA_DIR / n}.schema" for n in names)
    return f"""{schemas}
pidfile {workdir / "slapd.pid"}
argsfile {workdir / "slapd.args"}
modulepath {MODULE_DIR}
moduleload back_mdb
database mdb
maxsize 10485760
suffix "{BASE_DN}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {workdir / "db"}
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
"""


def _seed() -> str:
    parts = [
        f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
        f"dn: ou=people,{BASE_DN}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=groups,{BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n",
        f"dn: {READER_DN}\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\n"
        f"cn: reader\nuserPassword: {_hash(READER_PASSWORD)}\n",
    ]
    for uid, password in USERS.items():
        name = uid.capitalize()
        parts.append(
            f"dn: uid={uid},ou=people,{BASE_DN}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn: {name} Example\nsn: Example\ndisplayName: {name}\nmail: {uid}@example.org\n"
            f"userPassword: {_hash(password)}\n"
        )
    for cn, members in GROUPS.items():
        lines = "".join(f"member: uid={m},ou=people,{BASE_DN}\n" for m in members)
        parts.append(f"dn: cn={cn},ou=groups,{BASE_DN}\nobjectClass: groupOfNames\ncn: {cn}\n{lines}")
    return "\n".join(parts)


def _accepts_bind(url: str) -> bool:
    from ldap3 import NONE, Connection, Server
    from ldap3.core.exceptions import LDAPException

    try:
        conn = Connection(Server(url, connect_timeout=1, get_info=NONE), READER_DN, READER_PASSWORD,
                          receive_timeout=1)
        ok = bool(conn.bind())
        conn.unbind()
        return ok
    except LDAPException:
        return False


def start_slapd(workdir: Path, timeout: float = 10.0) -> SlapdServer:
    if not Path(SLAPD).exists() or not Path(SLAPADD).exists():
        raise RuntimeError("slapd not installed: apt-get install -y slapd ldap-utils")
    workdir = Path(workdir)
    (workdir / "db").mkdir(parents=True, exist_ok=True)
    conf = workdir / "slapd.conf"
    conf.write_text(_config(workdir))
    seed = workdir / "seed.ldif"
    seed.write_text(_seed())
    added = subprocess.run([SLAPADD, "-q", "-f", str(conf), "-l", str(seed)], capture_output=True, text=True)
    if added.returncode != 0:
        raise RuntimeError(f"slapadd failed ({added.returncode}): {added.stderr.strip()}")

    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    log_path = workdir / "slapd.log"
    with log_path.open("wb") as log:
        # "-d 0" keeps slapd in the foreground (a child we can stop) without debug chatter.
        process = subprocess.Popen(
            [SLAPD, "-f", str(conf), "-h", f"{url}/", "-d", "0"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
    server = SlapdServer(url=url, port=port, base_dn=BASE_DN, admin_dn=ADMIN_DN,
                         admin_password=ADMIN_PASSWORD, process=process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _accepts_bind(url):
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(
        f"slapd did not accept a bind on {url} within {timeout:.0f}s "
        f"(exit code {process.returncode}); output:\n{log_path.read_text(errors='replace')[-4000:]}"
    )
