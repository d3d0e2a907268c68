"""What the bench/finding_*.py scripts share (not a figure itself: `make bench` skips bench/_*.py).

- run_chain_seed: one seed of a chain, run (or resumed) by the CLI in its own process; what it cost is the
  child's own rusage (os.wait4), so CPU-minutes do not depend on the shared machine's load; written to
  RUN_DIR/process.json as {"wall_s", "cpu_s", "exit", "load_average_after"}.
- chain_completed: whether a seed directory holds a completed chain (its chain.json).
- spread: mean ± sd of a metric over seeds."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_chain_seed(chain: str, seed: int, run_dir: Path, *, quick: bool = False, sets=(),
                   log_name: str = "chain.log") -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "r1model", "recipe", "run", chain, "--seed", str(seed), "--run-dir", str(run_dir)]
    command += (["--quick"] if quick else []) + [arg for item in sets for arg in ("--set", item)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    started = time.time()
    with (run_dir / log_name).open("a") as log:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    process = {"wall_s": time.time() - started, "cpu_s": usage.ru_utime + usage.ru_stime,
               "exit": os.waitstatus_to_exitcode(status), "load_average_after": os.getloadavg()[0]}
    (run_dir / "process.json").write_text(json.dumps(process) + "\n")
    return process


def chain_completed(run_dir: Path) -> bool:
    try:
        return json.loads((run_dir / "chain.json").read_text()).get("status") == "completed"
    except (OSError, ValueError):
        return False


def spread(values) -> dict | None:
    """{"mean", "sd", "n"} of the numbers among `values` (sd None for one); None when there are none."""
    numbers = [v for v in values if isinstance(v, (int, float))]
    if not numbers:
        return None
    return {"mean": statistics.fmean(numbers), "sd": statistics.stdev(numbers) if len(numbers) > 1 else None,
            "n": len(numbers)}
