"""MariaDB for integration tests: the one on 127.0.0.1:3306 if it lets root in, else a throwaway one."""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiomysql

from tests.support.slapd import free_port

T = TypeVar("T")


@dataclass
class MariaDB:
    host: str
    port: int
    user: str = "root"
    password: str = ""
    process: subprocess.Popen[bytes] | None = None
    datadir: Path | None = field(default=None, repr=False)

    def url(self, database: str) -> str:
        """A Tortoise-style URL for `database`."""
        auth = f"{self.user}:{self.password}" if self.password else self.user
        return f"mysql://{auth}@{self.host}:{self.port}/{database}?charset=utf8mb4"

    def stop(self) -> None:
        """Stop the throwaway server, if this helper started one (a shared server is left alone)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.datadir is not None:
            shutil.rmtree(self.datadir, ignore_errors=True)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, also when called from inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _execute(db: MariaDB, *statements: str) -> None:
    conn = await aiomysql.connect(host=db.host, port=db.port, user=db.user, password=db.password,
                                  connect_timeout=3, autocommit=True)
    try:
        async with conn.cursor() as cur:
            for statement in statements:
                await cur.execute(statement)
    finally:
        conn.close()


def _accepts(db: MariaDB) -> bool:
    try:
        _run(_execute(db, "SELECT 1"))
        return True
    except Exception:
        return False


def _start_throwaway(timeout: float) -> MariaDB:
    install_db = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    if install_db is None or not Path(mariadbd).exists():
        raise RuntimeError("MariaDB not running on 127.0.0.1:3306 and not installed: "
                           "apt-get install -y mariadb-server")
    root = Path(tempfile.mkdtemp(prefix="aigc-mariadb-"))
    datadir = root / "data"
    installed = subprocess.run(
        [install_db, "--no-defaults", f"--datadir={datadir}", "--auth-root-authentication-method=normal",
         "--user=root", "--skip-test-db"],
        capture_output=True, text=True,
    )
    if installed.returncode != 0:
        raise RuntimeError(f"mariadb-install-db failed: {installed.stderr.strip()[-2000:]}")
    port = free_port()
    log_path = root / "mariadbd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [mariadbd, "--no-defaults", f"--datadir={datadir}", f"--port={port}", "--bind-address=127.0.0.1",
             f"--socket={root / 'mysqld.sock'}", f"--pid-file={root / 'mysqld.pid'}", "--user=root",
             "--skip-name-resolve", "--innodb-buffer-pool-size=32M"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
    db = MariaDB(host="127.0.0.1", port=port, process=process, datadir=root)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if _accepts(db):
            return db
        time.sleep(0.2)
    output = log_path.read_text(errors="replace")[-4000:]
    db.stop()
    raise RuntimeError(f"throwaway mariadbd did not accept connections within {timeout:.0f}s:\n{output}")


def ensure_mariadb(host: str = "127.0.0.1", port: int = 3306, timeout: float = 60.0) -> MariaDB:
    """The server at host:port when root/no password gets in; otherwise a throwaway mariadbd."""
    existing = MariaDB(host=host, port=port)
    if _accepts(existing):
        return existing
    return _start_throwaway(timeout)


def create_database(db: MariaDB) -> str:
    name = f"aigc_test_{uuid.uuid4().hex[:12]}"
    _run(_execute(db, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    return name


def drop_database(db: MariaDB, name: str) -> None:
    if not name.startswith("aigc_test_") or "`" in name:
        raise ValueError(f"refusing to drop {name!r}: not a test database")
    _run(_execute(db, f"DROP DATABASE IF EXISTS `{name}`"))
