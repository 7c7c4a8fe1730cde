"""Token counts of uploaded samples with a tokenizer read from disk (nothing is downloaded)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("aigc_admin.files")


class TokenizerCounter:
    """Counts with a Hugging Face ``tokenizer.json`` read from disk (the ``tokenizers`` package, when it is
    installed); nothing is downloaded."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def count(self, texts: Sequence[str]) -> int:
        if not texts:
            return 0
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return sum(len(e.ids) for e in encodings)

    @classmethod
    def load(cls, path: str | Path) -> TokenizerCounter | None:
        """From a model directory or a tokenizer.json; None (the documented estimate is used) when the file
        or the ``tokenizers`` package is missing, or the file cannot be read."""
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / "tokenizer.json"
        if not p.is_file():
            return None
        try:
            from tokenizers import Tokenizer
        except ImportError:
            log.info("the tokenizers package is not installed: token counts of uploads are estimated")
            return None
        try:
            return cls(Tokenizer.from_file(str(p)))
        except Exception:
            log.warning("cannot load the tokenizer %s: token counts of uploads are estimated", p, exc_info=True)
            return None


def token_counter(path: str) -> TokenizerCounter | None:
    """The counter of files.tokenizer.path (the base model's directory or tokenizer.json), if one is set."""
    return TokenizerCounter.load(path) if path else None
