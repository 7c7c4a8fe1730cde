"""The admin UI in headless Chromium (Debian's, through playwright-core) against a real `aigc-admin up`:

1. initial JavaScript transferred when a signed-in user opens / (gzipped on the wire; target ≤ 250 KB),
2. time until the dashboard is interactive (its numbers loaded), cold cache, median of N loads (target ≤ 1.5 s),
3. the fine-tuning page following a job that logs 10,000 lines a minute (bench/ui_busy_training.py started as the
   training program, so lines travel the real path): frames dropped and JS heap after M minutes (default 5).

Prints each measurement beside its target, with the ratio. No assertions: this is a measurement.

    .venv/bin/python bench/ui.py [--loads 5] [--minutes 5] [--lines-per-minute 10000]

Needs the UI built (make ui), the engine venv (make engine) and chromium (scripts/prepare-chromium.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PASSWORD = "bench-admin-1234"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gql(base: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None,
        tenant: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if tenant:
        headers["X-Tenant-Id"] = tenant
    body = httpx.post(f"{base}/graphql", json={"query": query, "variables": variables or {}}, headers=headers,
                      timeout=30).json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return dict(body["data"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", type=int, default=5, help="cold loads of the dashboard")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long the fine-tuning page follows the job")
    parser.add_argument("--lines-per-minute", type=int, default=10_000)
    args = parser.parse_args()
    if not (ROOT / "src/aigc_admin/web/ui_build/index.html").exists():
        sys.exit("the UI is not built: make ui")
    from tests.support.engine import engine_python, tiny_model_path

    storage = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_")}
    env.update({"AIGC_BENCH_LINES_PER_MINUTE": str(args.lines_per_minute),
                "AIGC_BENCH_MINUTES": str(args.minutes + 1)})
    flags = ["-p", f"127.0.0.1:{port}", "--server.storage.path", str(storage), "--server.admin.pass", PASSWORD,
             "--engine.python", str(engine_python()), "--finetune.interval", "0.5",
             "--finetune.program", str(ROOT / "bench/ui_busy_training.py"),
             "--service.fschat.controller.host", f"http://127.0.0.1:{free_port()}",
             "--service.local.ai.host", f"http://127.0.0.1:{free_port()}/v1"]
    log = (storage / "up.log").open("w")
    up = subprocess.Popen([sys.executable, "-m", "aigc_admin.cli", "up", *flags], stdout=log, stderr=subprocess.STDOUT,
                          env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or up.poll() is not None:
                sys.exit("`up` did not become ready:\n" + (storage / "up.log").read_text()[-3000:])
            time.sleep(0.2)
        token = gql(base, 'mutation($p: String!) { login(input: {username: "admin", password: $p}) { token } }',
                    {"p": PASSWORD})["login"]["token"]
        tenant = gql(base, 'mutation { createTenant(input: {name: "Bench", code: "bench"}) { tenant { id } } }',
                     token=token)["createTenant"]["tenant"]["id"]
        model = gql(base, "mutation($i: CreateModelInput!) { createModel(input: $i) { model { id } } }",
                    {"i": {"name": "tiny-bench", "modelPath": str(tiny_model_path()), "tenantIds": [tenant]}},
                    token=token)["createModel"]["model"]["id"]
        lines = "\n".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                   {"role": "assistant", "content": f"a{i}"}]}) for i in range(10))
        file_id = httpx.post(f"{base}/files", params={"purpose": "fine-tune", "filename": "b.jsonl"},
                             content=lines.encode(), headers={"Authorization": f"Bearer {token}",
                                                              "X-Tenant-Id": tenant}).json()["file"]["id"]
        job = gql(base, "mutation($i: CreateFineTuneJobInput!) { createFineTuningJob(input: $i) { job { id } } }",
                  {"i": {"baseModelId": model, "fileId": file_id}}, token=token, tenant=tenant)
        job_id = job["createFineTuningJob"]["job"]["id"]
        bench_env = {**os.environ, "AIGC_E2E_URL": base, "AIGC_BENCH_TOKEN": token, "AIGC_BENCH_TENANT": tenant,
                     "AIGC_BENCH_JOB": job_id, "AIGC_BENCH_LOADS": str(args.loads),
                     "AIGC_BENCH_MINUTES": str(args.minutes), "CHROMIUM": shutil.which("chromium") or "chromium"}
        run = subprocess.run(["node", "e2e/bench.mjs"], cwd=ROOT / "ui", env=bench_env, capture_output=True,
                             text=True, timeout=int(args.minutes * 60) + 600)
        if run.returncode != 0:
            sys.exit(f"bench.mjs failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
        result = json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(storage, ignore_errors=True)

    print(f"# bench/ui.py — {platform.node()}, {os.cpu_count()} CPUs, Chromium {result['browser']}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print(f"{'measure':<52} {'ours':>12} {'target':>10} {'ours/target':>12}")

    def row(name: str, ours: float, target: float, unit: str) -> None:
        print(f"{name:<52} {ours:>10.1f}{unit:>2} {target:>8.1f}{unit:>2} {ours / target:>12.2f}")

    row("initial JS transferred (gzip), KB", result["initialJsKB"], 250, "")
    row(f"dashboard interactive, median of {args.loads} cold loads, s", result["interactiveMs"] / 1000, 1.5, "")
    f = result["follow"]
    print(f"fine-tuning page following {args.lines_per_minute} lines/min for {args.minutes:g} min:")
    print(f"  log lines received {f['linesSeen']}, chart points {f['chartPoints']}, lines kept in memory "
          f"{f['linesKept']}")
    print(f"  frames {f['frames']} over {f['seconds']:.0f} s ({f['frames'] / f['seconds']:.1f}/s); dropped "
          f"{f['droppedFrames']} ({100 * f['droppedFrames'] / max(1, f['frames'] + f['droppedFrames']):.2f} %); "
          f"frames over 50 ms {f['longFrames']}")
    print(f"  JS heap used: {f['heapStartMB']:.1f} MB after 10 s, {f['heapEndMB']:.1f} MB at the end "
          f"(ratio {f['heapEndMB'] / max(0.1, f['heapStartMB']):.2f}); DOM nodes {f['domNodes']}")
    print("dashboard loads (ms): " + ", ".join(f"{x:.0f}" for x in result["loadsMs"]))
    print("scripts: " + ", ".join(f"{re.sub(r'-[A-Za-z0-9_]{8}', '', n)} {kb:.1f}" for n, kb in result["scripts"]))


if __name__ == "__main__":
    main()
