"""A job for the worker tests: its first run hangs (to be killed with its worker), the next one finishes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any


async def hang_first_time(ctx: Any, marker: str) -> int:
    path = Path(marker)
    runs = len(path.read_text()) + 1 if path.exists() else 1
    path.write_text("x" * runs)
    if runs == 1:
        await asyncio.sleep(600)
    return runs


async def record(ctx: Any, marker: str, name: str) -> None:
    """Append ``name`` to the file ``marker``: how many times each job ran."""
    with Path(marker).open("a") as f:
        f.write(name + "\n")
