"""The GPUs of this host, for the runtimes that give each replica devices of its own (local, a local Docker)."""

from __future__ import annotations

import shutil
import subprocess


def nvidia_gpus() -> list[str]:
    """This host's NVIDIA GPUs by index (none without nvidia-smi or a driver)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]
