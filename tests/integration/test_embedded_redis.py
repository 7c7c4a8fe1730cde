"""The embedded Redis of `aigc-admin up` stops when the platform stops, whoever is still connected to it."""

from __future__ import annotations

from pathlib import Path

import psutil

from aigc_admin.adapters.redis_conn import RedisEndpoint
from aigc_admin.settings import load_settings


def test_close_stops_the_embedded_server_even_with_a_client_still_connected(tmp_path: Path) -> None:
    endpoint = RedisEndpoint.open(load_settings({"server.storage.path": str(tmp_path)}, environ={}))
    pid = endpoint._embedded.pid
    lingering = endpoint.sync_client()  # e.g. a worker that has not gone yet when `up` stops
    assert lingering.ping()
    endpoint.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    endpoint.close()  # twice is harmless
    lingering.close()
