"""The distill-mini finding (R1 §4.1): distilled vs RL'd accuracy per student (r1model/train/findings/distill_mini.py).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/finding_distill_mini.py --seeds 0 1 2
    .venv/bin/python bench/finding_distill_mini.py --seeds 0 1 2 --summarise-only

Seeds run one after another, each `python -m r1model recipe run distill-mini --seed N --run-dir OUT/seed-N` (a
stopped chain resumes; a completed one is summarised again from its stages' evaluations). Per seed: the table
(teacher and each student's base, distilled and RL'd held-out accuracy), the verdict and the chain's own CPU time
(process.json); then per student the mean ± sd over seeds of distilled − RL and the verdict on the seeds' means.
Last line, the headline: the smallest per-student mean of distilled − RL, distill_minus_rl_min=<value>.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.train.findings.distill_mini import CHAIN, STUDENTS, comparison, verdict  # noqa: E402
from _chain_seed import run_chain_seed  # noqa: E402 (bench/_chain_seed.py)


def run(seed: int, run_dir: Path, quick: bool) -> dict:
    """Run (or resume) one seed's chain; its CPU time and wall time go to run_dir/process.json."""
    return run_chain_seed(CHAIN.name, seed, run_dir, quick=quick)


def show(value) -> str:
    return "—" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "distill_mini")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--summarise-only", action="store_true")
    args = parser.parse_args()
    results: dict[int, dict] = {}
    for seed in args.seeds:
        run_dir = args.out / f"seed-{seed}"
        if not args.summarise_only:
            cost = run(seed, run_dir, args.quick)
            print(f"seed {seed}: exit {cost['exit']}, {cost['cpu_s'] / 60:.1f} CPU-min, "
                  f"{cost['wall_s'] / 60:.1f} min wall", flush=True)
        if not (run_dir / "comparison.json").is_file():
            print(f"seed {seed}: no comparison.json in {run_dir} (chain not completed)")
            continue
        result = results[seed] = comparison(run_dir, CHAIN)[0]  # from the stages' evaluations, as the chain does
        print(f"seed {seed}: " + " | ".join(result["table"]["columns"]))
        for row in result["table"]["rows"]:
            print("  " + " | ".join(show(v) for v in row))
        print(f"  verdict: {result['verdict']['outcome']}: {'; '.join(result['verdict']['reasons'])}")
        process = run_dir / "process.json"
        if process.is_file():
            cost = json.loads(process.read_text())
            print(f"  cost: {cost['cpu_s'] / 60:.1f} CPU-min, {cost['wall_s'] / 60:.1f} min wall")
    if not results:
        raise SystemExit("no seed has a completed chain")
    names = set.intersection(*(set(r["metrics"]) for r in results.values()))
    means = {}
    for name in sorted(names):
        values = [r["metrics"][name] for r in results.values()]
        if all(v is not None for v in values):
            means[name] = statistics.fmean(values)
    for student in STUDENTS:
        gaps = [r["metrics"].get(f"{student}_distill_minus_rl") for r in results.values()]
        gaps = [g for g in gaps if g is not None]
        if gaps:
            sd = statistics.stdev(gaps) if len(gaps) > 1 else 0.0
            print(f"{student}: distilled − RL {statistics.fmean(gaps):+.3f} ± {sd:.3f} over {len(gaps)} seed(s) "
                  f"({', '.join(f'{g:+.3f}' for g in gaps)})")
    on_means = verdict(means)
    print(f"seeds {sorted(results)}: verdict on the means: {on_means['outcome']}: {'; '.join(on_means['reasons'])}")
    gaps = [means.get(f"{s}_distill_minus_rl") for s in STUDENTS]
    headline = min(gaps) if all(g is not None for g in gaps) else None
    print(f"distill_minus_rl_min={'nan' if headline is None else f'{headline:.4f}'}")


if __name__ == "__main__":
    main()
