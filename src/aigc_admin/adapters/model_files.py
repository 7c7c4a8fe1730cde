"""What the platform reads from a model's directory (when the API host can see it): its chat template."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _token(value: Any) -> str:
    """A special token as tokenizer_config.json writes it: a string, or an AddedToken dict with "content"."""
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return str(value or "")


class ModelFiles:
    async def chat_template(self, model_path: str) -> str:
        """The model's own chat template as JSON ({"template", "bos_token", "eos_token", "add_bos_token"}), from
        tokenizer_config.json's chat_template or chat_template.jinja; "" when it has none or the directory cannot
        be read from here (a volume only the runtime mounts)."""
        directory = Path(model_path).expanduser()
        config_file = directory / "tokenizer_config.json"
        try:
            config = json.loads(config_file.read_text()) if config_file.is_file() else {}
            template = config.get("chat_template")
            if isinstance(template, list):  # [{"name": "default", "template": ...}, ...]
                named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
                template = named.get("default") or next(iter(named.values()), None)
            jinja_file = directory / "chat_template.jinja"
            if not template and jinja_file.is_file():
                template = jinja_file.read_text()
        except (OSError, ValueError) as e:
            log.info("cannot read the chat template of %s: %s", model_path, e)
            return ""
        if not isinstance(template, str) or not template.strip():
            return ""
        return json.dumps({"template": template, "bos_token": _token(config.get("bos_token")),
                           "eos_token": _token(config.get("eos_token")),
                           "add_bos_token": bool(config.get("add_bos_token", False))})
