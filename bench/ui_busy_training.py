"""A stand-in training program for bench/ui.py: writes LINES_PER_MINUTE log lines a minute (one JSON step line in
ten, the rest plain text, as a chatty trainer does) for MINUTES minutes, then fails (nothing is registered).

The platform starts it as it starts the real one (finetune.program), so the log travels the real path: the runtime's
log, the training scheduler, the database, Redis pub/sub and the fineTuneLogs subscription."""

from __future__ import annotations

import json
import os
import sys
import time

LINES_PER_MINUTE = int(os.environ.get("AIGC_BENCH_LINES_PER_MINUTE", "10000"))
MINUTES = float(os.environ.get("AIGC_BENCH_MINUTES", "5"))


def main() -> None:
    interval = 60.0 / LINES_PER_MINUTE
    total = int(LINES_PER_MINUTE * MINUTES)
    started = time.monotonic()
    print(json.dumps({"type": "start", "total_steps": total // 10, "samples": total, "epochs": 1}), flush=True)
    for n in range(total):
        if n % 10 == 0:
            step = n // 10 + 1
            line = json.dumps({"type": "step", "step": step, "total_steps": total // 10, "epoch": n / total,
                               "loss": 2.0 / (1 + step / 200), "learning_rate": 2e-4 * (1 - n / total)})
        else:
            line = f"[rank0] batch {n}: tokens=512 grad_norm={0.5 + (n % 7) / 10:.2f} mem=1.2G"
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        # keep to the rate over the whole run, not per line (sleep overshoots)
        ahead = started + (n + 1) * interval - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    print(json.dumps({"type": "error", "message": "benchmark finished"}), flush=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
