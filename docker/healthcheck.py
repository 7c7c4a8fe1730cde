"""HEALTHCHECK of the platform image: one check that fits whichever command the container runs.

Why not a plain ``curl /healthz``: with host networking (docker/compose.yaml) every container shares the host's
ports, so a worker probing 127.0.0.1:8080 would be "healthy" thanks to an API replica next to it. The command is
read from PID 1 (``tini -- aigc-admin …``):

- ``start``: GET /healthz on the port given by ``-p``/``--http.port`` (else AIGC_ADMIN_HTTP_PORT, else 8080);
- ``worker``: an RQ worker of *this* container (its host name and one of its PIDs) is registered in Redis;
- ``cronjob start``: an rq-scheduler instance key under the platform's prefix is alive (it expires when the
  scheduler stops polling);
- anything else: healthy (one-off commands such as ``migrate``).

Redis and the prefix come from the platform's own settings (AIGC_* environment), so they match the process.
Exit 0: healthy, 1: not (with the reason on stdout, which ``docker inspect`` shows).
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request


def _command() -> list[str]:
    try:
        with open("/proc/1/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []
    for i, arg in enumerate(argv):  # what follows "aigc-admin" (tini and its "--" come first)
        if os.path.basename(arg) == "aigc-admin":
            return argv[i + 1:]
    return argv


def _http(args: list[str]) -> str | None:
    port = os.environ.get("AIGC_ADMIN_HTTP_PORT", "8080")
    for i, arg in enumerate(args):
        if arg in ("-p", "--http.port") and i + 1 < len(args):
            port = args[i + 1]
        elif arg.startswith("--http.port="):
            port = arg.split("=", 1)[1]
    url = f"http://127.0.0.1:{port.rsplit(':', 1)[-1]}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return None if resp.status == 200 else f"{url}: HTTP {resp.status}"
    except OSError as e:
        return f"{url}: {e}"


def _redis():  # type: ignore[no-untyped-def]
    from aigc_admin.adapters.redis_conn import RedisEndpoint
    from aigc_admin.settings import load_settings

    endpoint = RedisEndpoint.open(load_settings({}))
    return endpoint, endpoint.sync_client(socket_timeout=3)


def _worker() -> str | None:
    from rq import Worker

    _, conn = _redis()
    pids = {int(p) for p in os.listdir("/proc") if p.isdigit()}  # this container's PID namespace
    host = socket.gethostname()
    mine = [w for w in Worker.all(connection=conn) if w.hostname == host and w.pid in pids]
    return None if mine else "no RQ worker of this container is registered in Redis"


def _scheduler() -> str | None:
    endpoint, conn = _redis()
    alive = next(iter(conn.scan_iter(f"{endpoint.prefix}:rq:scheduler_instance:*", count=100)), None)
    return None if alive else "no rq-scheduler instance is registered in Redis"


def main() -> int:
    args = _command()
    try:
        if args[:1] == ["start"]:
            problem = _http(args)
        elif args[:1] == ["worker"]:
            problem = _worker()
        elif args[:2] == ["cronjob", "start"]:
            problem = _scheduler()
        else:
            problem = None
    except Exception as e:
        problem = f"{type(e).__name__}: {e}"
    if problem:
        print(problem)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
