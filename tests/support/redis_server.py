"""A private redis-server child process per test session (tests may FLUSHALL and restart it)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.slapd import free_port


@dataclass
class RedisServer:
    host: str
    port: int
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path = field(repr=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def restart(self) -> None:
        """Stop and start again on the same port (data is lost: nothing is saved)."""
        self.stop()
        self.process = _spawn(self.workdir, self.port)
        _wait(self)


def _ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _spawn(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not installed: apt-get install -y redis-server")
    log = (workdir / f"redis-{port}.log").open("ab")
    try:
        return subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
    finally:
        log.close()


def _wait(server: RedisServer, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        if _ping(server.host, server.port):
            return
        time.sleep(0.05)
    server.stop()
    log = (server.workdir / f"redis-{server.port}.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"redis-server on port {server.port} gave no PONG within {timeout:.0f}s:\n{log}")


def start_redis(workdir: Path) -> RedisServer:
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = RedisServer(host="127.0.0.1", port=port, url=f"redis://127.0.0.1:{port}/0",
                         process=_spawn(workdir, port), workdir=workdir)
    _wait(server)
    return server
