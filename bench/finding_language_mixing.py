"""The language-mixing finding (DeepSeek-R1 §2.3.2) over seeds: Zero's mixing rate vs the language-reward model's,
their accuracy and the accuracy cost, CPU-minutes per seed.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/finding_language_mixing.py --seeds 0 1 2
    .venv/bin/python bench/finding_language_mixing.py --seeds 0 1 2 --summarise-only   # from finished runs

Each seed runs `python -m r1model recipe run language-mixing --seed N --run-dir OUT/seed-N` (1 torch thread),
one seed after another, so the figure is what a user gets; a finished seed (its comparison.json) is reused.
Writes OUT/summary.json: per seed the comparison's metrics, verdict and CPU-minutes; the seeds' mean and sd per
metric and the chain's verdict on the means. Last line: the headline, mixing_rate_drop=<mean over seeds>.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.train.findings.language_mixing import CHAIN  # noqa: E402
from _chain_seed import spread  # noqa: E402 (bench/_chain_seed.py)

SHOWN = ("zero_mixing_rate", "language_mixing_rate", "zero_accuracy", "language_accuracy", "accuracy_cost",
         "zero_thinks", "language_thinks")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_seed(seed: int, run_dir: Path, quick: bool, sets: list[str]) -> dict:
    """The chain end to end for one seed (or resumed); CPU and wall seconds of this invocation."""
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "r1model", "recipe", "run", CHAIN.name, "--seed", str(seed), "--run-dir",
           str(run_dir)] + (["--quick"] if quick else []) + [a for item in sets for a in ("--set", item)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cpu, wall = _children_cpu(), time.time()
    with (run_dir / "chain.log").open("a") as log:
        code = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    timing = {"cpu_min": (_children_cpu() - cpu) / 60, "wall_min": (time.time() - wall) / 60, "exit": code}
    (run_dir / "bench_timing.json").write_text(json.dumps(timing) + "\n")
    return timing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "language_mixing")
    parser.add_argument("--quick", action="store_true", help="the chain's --quick scale (a smoke test)")
    parser.add_argument("--set", action="append", default=[], metavar="[STAGE:]KEY=VALUE",
                        help="a change to the chain's configs (as `recipe run --set`)")
    parser.add_argument("--summarise-only", action="store_true", help="read finished runs, run nothing")
    args = parser.parse_args(argv)

    seeds = {}
    for seed in args.seeds:
        run_dir = args.out / f"seed-{seed}"
        comparison_path = run_dir / "comparison.json"
        timing_path = run_dir / "bench_timing.json"
        if not args.summarise_only and not comparison_path.is_file():
            print(f"seed {seed}: running the chain in {run_dir}", file=sys.stderr, flush=True)
            run_seed(seed, run_dir, args.quick, args.set)
        if not comparison_path.is_file():
            print(f"seed {seed}: no comparison.json in {run_dir} (see chain.json / chain.log)", file=sys.stderr)
            continue
        comparison = json.loads(comparison_path.read_text())
        timing = json.loads(timing_path.read_text()) if timing_path.is_file() else {}
        seeds[seed] = {"metrics": comparison["metrics"], "verdict": comparison["verdict"], **timing}
        shown = ", ".join(f"{k} {comparison['metrics'].get(k)}" for k in SHOWN)
        print(f"seed {seed}: {comparison['verdict']['outcome']}; {shown}; "
              f"{timing.get('cpu_min', float('nan')):.1f} CPU-min, {timing.get('wall_min', float('nan')):.1f} min wall")
    if not seeds:
        print("mixing_rate_drop=nan")
        return 1
    names = sorted({name for entry in seeds.values() for name in entry["metrics"]})
    means = {name: spread([entry["metrics"].get(name) for entry in seeds.values()]) for name in names}
    flat = {name: value["mean"] if value else None for name, value in means.items()}
    summary = {"seeds": seeds, "metrics": means, "verdict_on_means": CHAIN.verdict(flat),
               "cpu_min": spread([entry.get("cpu_min") for entry in seeds.values()])}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name in SHOWN:
        value = means.get(name)
        if value:
            sd = "" if value["sd"] is None else f" ± {value['sd']:.4f}"
            print(f"{name}: {value['mean']:.4f}{sd} (n={value['n']})")
    print(f"verdict on the means: {summary['verdict_on_means']['outcome']}; "
          + "; ".join(summary["verdict_on_means"]["reasons"]))
    drop = flat.get("mixing_rate_drop")
    print(f"mixing_rate_drop={'nan' if drop is None else f'{drop:.4f}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
