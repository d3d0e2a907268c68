"""The weak-base finding: RL gain vs base skill over several base budgets (r1model/train/findings/weak_base.py).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/finding_weak_base.py --seeds 1 --out bench/out/weak_base
    .venv/bin/python bench/finding_weak_base.py --seeds 1 --summarise-only --out bench/out/weak_base

Each seed runs `python -m r1model recipe run weak-base --seed N --run-dir OUT/seed-N` (seeds one after another;
a stopped chain resumes). Prints each seed's table (base steps, greedy / sampled step-0 accuracy, worked shares,
accuracy after RL, gain) and verdict, and the verdict on the seeds' means; --summarise-only also summarises a
chain whose later stages have not run yet (their budgets read as missing). Last line: the headline,
weak_base_gain_rise_points=<best gain − the weakest base's gain, mean over seeds>.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.train.findings.weak_base import CHAIN, weak_base_comparison, weak_base_verdict  # noqa: E402
from _chain_seed import run_chain_seed  # noqa: E402 (bench/_chain_seed.py)


def run_seed(seed: int, run_dir: Path, quick: bool) -> dict:
    process = run_chain_seed("weak-base", seed, run_dir, quick=quick, log_name="trainer.log")
    print(f"seed {seed}: exit {process['exit']} after {process['wall_s'] / 60:.1f} min wall, "
          f"{process['cpu_s'] / 60:.1f} CPU-min", flush=True)
    return process


def summarise(run_dir: Path) -> dict:
    """comparison.json when the chain completed, else the same summary of the stages that ran."""
    path = run_dir / "comparison.json"
    return json.loads(path.read_text()) if path.is_file() else weak_base_comparison(run_dir, CHAIN)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "weak_base")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--summarise-only", action="store_true")
    args = parser.parse_args()
    per_seed = {}
    for seed in args.seeds:
        run_dir = args.out / f"seed-{seed}"
        if not args.summarise_only:
            run_seed(seed, run_dir, args.quick)
        if not (run_dir / "chain.json").is_file():
            print(f"seed {seed}: no chain in {run_dir}")
            continue
        comparison = per_seed[seed] = summarise(run_dir)
        print(f"seed {seed}: " + " | ".join(comparison["table"]["columns"]))
        for row in comparison["table"]["rows"]:
            print("  " + " | ".join("—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
        print(f"  verdict: {comparison['verdict']['outcome']}: {'; '.join(comparison['verdict']['reasons'])}")
        process = run_dir / "process.json"
        if process.is_file():
            cost = json.loads(process.read_text())
            print(f"  cost: {cost['cpu_s'] / 60:.1f} CPU-min, {cost['wall_s'] / 60:.1f} min wall")
    if not per_seed:
        raise SystemExit("no seed has a chain")
    keys = set.intersection(*(set(c["metrics"]) for c in per_seed.values()))
    means = {k: statistics.fmean(c["metrics"][k] for c in per_seed.values())
             for k in keys if all(c["metrics"][k] is not None for c in per_seed.values())}
    verdict = weak_base_verdict(means)
    print(f"seeds {sorted(per_seed)}: verdict on the means: {verdict['outcome']}: {'; '.join(verdict['reasons'])}")
    rise = means.get("gain_rise_points")
    print(f"weak_base_gain_rise_points={'nan' if rise is None else f'{rise:.1f}'}")


if __name__ == "__main__":
    main()
