"""Choosing prometheus-client's multiprocess mode: before it is imported (it reads the variable then), so this
module must not import it, nor anything that does."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def enable_multiprocess(directory: str, *, fresh: bool = False) -> None:
    """Count into files under ``directory``, shared by the processes of this node (``fresh``: remove what a
    previous run left, done by the process that starts the others)."""
    path = Path(directory)
    if fresh and path.exists():
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
