"""Configuration docs generated from ``settings.SPECS``: ``.env.example`` and the table in docs/configuration.md."""

from __future__ import annotations

import shlex
from pathlib import Path

from aigc_admin.settings import SPECS, Settings

BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def default_text(name: str) -> str:
    """A setting's default as it is written in env files; secrets are always empty."""
    value = Settings.model_fields[name].default
    if SPECS[name].secret or value is None:
        return ""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def env_example() -> str:
    """Every setting with its default, grouped by the first segment of its flag; secrets are left empty."""
    lines = ["# aigc-admin settings (generated from aigc_admin.settings; do not edit by hand).",
             "# Precedence: flag > environment > config file > default. An empty value means 'not set'.",
             "# Keep only the lines you change: every line here overrides the config file."]
    group = None
    for name, spec in SPECS.items():
        if (head := spec.flag.split(".", 1)[0]) != group:
            group = head
            lines += ["", f"# ---- {head} " + "-" * (72 - len(head))]
        aliases = f", also env {', '.join(spec.envs[1:])}" if len(spec.envs) > 1 else ""
        value = default_text(name)
        lines += [f"# {spec.help} (flag --{spec.flag}{aliases})", f"{spec.envs[0]}={value and shlex.quote(value)}"]
    return "\n".join(lines) + "\n"


def _cell(text: str, *, code: bool = False) -> str:
    """Table-cell text: ``|`` escaped; outside code spans ``<``/``>`` too (``<storage>`` is not HTML)."""
    text = text.replace("|", "\\|")
    return f"`{text}`" if code else text.replace("<", "&lt;").replace(">", "&gt;")


def configuration_table() -> str:
    """A Markdown table of every setting: flag, environment variable(s), default, description."""
    rows = ["| Flag | Environment | Default | Description |", "| --- | --- | --- | --- |"]
    for name, spec in SPECS.items():
        envs = "<br>".join(f"`{e}`" for e in spec.envs)
        value = default_text(name)
        default = _cell(value, code=True) if value else ""
        help_ = _cell(spec.help) + (" *(secret)*" if spec.secret else "")
        rows.append(f"| `--{spec.flag}` | {envs} | {default} | {help_} |")
    return "\n".join(rows) + "\n"


def with_table(doc: str, table: str | None = None) -> str:
    """``doc`` with the text between the settings markers replaced by ``table`` (default: the current one)."""
    head, sep, rest = doc.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise ValueError(f"markers {BEGIN} … {END} not found")
    return f"{head}{BEGIN}\n{table or configuration_table()}{END}{tail}"


def write_docs(root: Path | str = ".") -> list[Path]:
    """Regenerate ``.env.example`` and the table in docs/configuration.md under ``root``; returns changed files."""
    base = Path(root)
    doc = base / "docs" / "configuration.md"
    changed = []
    for path, text in ((base / ".env.example", env_example()), (doc, with_table(doc.read_text()))):
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed
