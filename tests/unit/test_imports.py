"""Every module of the package imports on its own, in a fresh interpreter: no import cycle hides behind an
import order that happens to work (a partially initialised module fails here)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import aigc_admin

# Programs of the engine environment (torch, transformers): not importable in the platform's own.
ENGINE = "aigc_admin.engine"

CHECK = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "aigc_admin" or m.startswith("aigc_admin.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=1).strip().splitlines()[-1])
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def modules() -> list[str]:
    found = ["aigc_admin"]
    for info in pkgutil.walk_packages([str(Path(aigc_admin.__file__).parent)], prefix="aigc_admin."):
        if not info.name.startswith(ENGINE) and not info.name.endswith("__main__"):
            found.append(info.name)
    return sorted(found)


def test_every_module_imports_on_its_own() -> None:
    names = modules()
    assert "aigc_admin.resolvers.common" in names and "aigc_admin.bootstrap" in names and len(names) > 80
    done = subprocess.run([sys.executable, "-c", CHECK, *names], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"modules that do not import on their own:\n{done.stdout}{done.stderr[-2000:]}"
