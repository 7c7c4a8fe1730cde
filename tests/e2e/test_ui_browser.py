"""The admin web UI in Debian's Chromium (playwright-core, ui/e2e/run.mjs) against a real `aigc-admin up` with
the engine: sign in; deploy the tiny model and watch it turn RUNNING without a reload; create a channel and read
its key once; upload a malformed file and see its line-numbered errors; start a LoRA fine-tune and see live log
lines and chart points; chat in the playground, streamed; a member of another tenant sees none of it; axe-core
finds no serious violation on any page (light and dark, English and Chinese). Screenshots land in ui/e2e/out
(docs/ui.md shows them)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from aigc_admin.web import ui
from tests.support.engine import tiny_model_path
from tests.support.up import Up

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "admin-pass-ui-1234"


def _require(ok: bool, why: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (make test prepares it)")
        pytest.skip(why)


async def test_admin_ui_flows_in_chromium(tmp_path: Path) -> None:
    _require(ui.built(), "the UI is not built: make ui")
    _require(shutil.which("node") is not None and (ROOT / "ui/node_modules/playwright-core").exists(),
             "node and ui/node_modules are needed: scripts/build-ui.sh")
    chromium = shutil.which("chromium")
    _require(chromium is not None, "Debian's chromium is needed: scripts/prepare-chromium.sh")
    up = Up(tmp_path, "--server.admin.pass", PASSWORD)
    try:
        await up.ready()
        env = {**os.environ, "AIGC_E2E_URL": up.base, "AIGC_E2E_PASSWORD": PASSWORD, "CHROMIUM": str(chromium),
               "AIGC_E2E_MODEL_PATH": str(tiny_model_path()), "AIGC_E2E_OUT": str(ROOT / "ui/e2e/out")}
        run = subprocess.run(["node", "e2e/run.mjs"], cwd=ROOT / "ui", env=env, capture_output=True, text=True,
                             timeout=900)
        assert run.returncode == 0, f"{run.stdout[-6000:]}\n{run.stderr[-6000:]}\n--- up:\n{up.output()[-3000:]}"
        print(run.stdout[-3000:])
    finally:
        up.stop()
