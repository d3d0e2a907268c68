"""The trainer's CLI run as a user runs it, for the tests that run a recipe or a chain end to end."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def r1model(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m r1model ARGS` from the repository root with one torch thread, its output captured."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "r1model", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def run_quick(name: str, run_dir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`recipe run NAME --quick --run-dir RUN_DIR ARGS`, which must exit 0 (else the tail of its stderr)."""
    proc = r1model("recipe", "run", name, "--quick", "--run-dir", str(run_dir), *args, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def chain_state(run_dir: Path) -> dict:
    """A chain directory's chain.json."""
    return json.loads((run_dir / "chain.json").read_text())


def run_quick_chain(name: str, run_dir: Path, *args: str, timeout: int = 900) -> tuple[str, dict, dict]:
    """run_quick of a chain, which must complete every stage: (the last line it printed, its chain.json, its
    stages by name)."""
    proc = run_quick(name, run_dir, *args, timeout=timeout)
    state = chain_state(run_dir)
    assert state["status"] == "completed", state.get("reason")
    assert all(s["status"] == "completed" for s in state["stages"]), [(s["name"], s["status"]) for s in state["stages"]]
    return proc.stdout.strip().splitlines()[-1], state, {s["name"]: s for s in state["stages"]}
