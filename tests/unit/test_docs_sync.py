"""`.env.example` and the settings table in docs/configuration.md are generated from settings.SPECS."""

from __future__ import annotations

import difflib
from pathlib import Path

from aigc_admin.cli.docs_gen import BEGIN, END, configuration_table, env_example, with_table

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = ("regenerate with `aigc-admin generate docs`, or from the repository root: "
              "python -c 'from aigc_admin.cli.docs_gen import write_docs; write_docs()'")


def _diff(have: str, want: str, name: str) -> str:
    lines = difflib.unified_diff(have.splitlines(), want.splitlines(), f"{name} (checked in)", f"{name} (generated)",
                                 lineterm="", n=1)
    return "\n".join(list(lines)[:40])


def test_env_example_matches_settings() -> None:
    have, want = (ROOT / ".env.example").read_text(), env_example()
    assert have == want, f".env.example is out of date; {REGENERATE}\n{_diff(have, want, '.env.example')}"


def test_configuration_table_matches_settings() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc.count(BEGIN) == 1 and doc.count(END) == 1 and doc.index(BEGIN) < doc.index(END), (
        f"docs/configuration.md must contain {BEGIN} … {END} exactly once")
    have = doc.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")
    want = configuration_table().strip("\n")
    assert have == want, (f"the settings table in docs/configuration.md is out of date; {REGENERATE}\n"
                          f"{_diff(have, want, 'docs/configuration.md')}")


def test_regenerating_the_table_keeps_the_prose() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert with_table(doc) == doc, f"regenerating would change docs/configuration.md; {REGENERATE}"
