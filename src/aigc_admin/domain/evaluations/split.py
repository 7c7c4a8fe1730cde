"""The held-out part of a fine-tuning file: a deterministic choice of lines by a seed. The evaluation scores on
the lines it chooses; a fine-tuning job that holds them out is given a training file with the other lines only
(written by the platform when the job is created), so that any training program or template trains on the rest."""

from __future__ import annotations

import hashlib


def held_out(index: int, *, percent: float, seed: int) -> bool:
    """Whether sample ``index`` (0-based, among the file's non-blank lines) is held out."""
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 10_000 < round(percent * 100)
