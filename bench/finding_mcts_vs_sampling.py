"""The mcts-vs-sampling finding (DeepSeek-R1 §4.2) over seeds: value-guided step-level MCTS vs best-of-N (value
ranker) vs majority vote vs one sample at equal generated tokens, the trees' growth with the number of steps and
the value model's held-out error, seed by seed and as means (the chain's verdict applied to the means).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/finding_mcts_vs_sampling.py --seeds 0 1 2
    .venv/bin/python bench/finding_mcts_vs_sampling.py --seeds 0 1 2 --summarise-only

Each seed is `python -m r1model recipe run mcts-vs-sampling --seed N --run-dir OUT/seed-N` in a child process
(one torch thread), one after another; its CPU seconds come from the child's rusage. A seed whose chain already
completed is not run again. Writes OUT/summary.json. Last line: mcts_minus_best_sampling_accuracy=<mean>.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.train.findings.mcts_vs_sampling import CHAIN, METHODS  # noqa: E402
from _chain_seed import chain_completed as completed, run_chain_seed  # noqa: E402 (bench/_chain_seed.py)

SHOWN = tuple(f"{m}.{k}" for k in ("accuracy", "tokens", "tokens_per_solved") for m in METHODS) + (
    "mcts.nodes", "mcts.no_answer_rate", "mcts.exhausted_rate", "mcts_minus_best_sampling", "value.brier", "value.baseline_brier",
    "value.error_rate")


def mean_sd(values) -> tuple[float | None, float | None]:
    numbers = [v for v in values if isinstance(v, (int, float))]
    if not numbers:
        return None, None
    return statistics.fmean(numbers), (statistics.stdev(numbers) if len(numbers) > 1 else 0.0)


def show(value) -> str:
    return "null" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "mcts_vs_sampling")
    parser.add_argument("--quick", action="store_true", help="the chain's --quick sizes (plumbing only)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=V",
                        help="passed to the chain (e.g. search:token_budget=640)")
    parser.add_argument("--summarise-only", action="store_true", help="read finished seeds, run nothing")
    args = parser.parse_args(argv)
    seeds = {}
    for seed in args.seeds:
        run_dir = args.out / f"seed-{seed}"
        if not args.summarise_only and not completed(run_dir):
            process = run_chain_seed(CHAIN.name, seed, run_dir, quick=args.quick, sets=args.sets)
            print(f"seed {seed}: exit {process['exit']} after {process['wall_s']:.0f} s wall, "
                  f"{process['cpu_s'] / 60:.1f} CPU-min", flush=True)
        if not completed(run_dir):
            print(f"seed {seed}: the chain in {run_dir} did not complete")
            continue
        comparison, _ = CHAIN.summarise(run_dir.resolve(), CHAIN)
        (run_dir / "comparison.json").write_text(json.dumps(comparison, indent=2) + "\n")
        process_path = run_dir / "process.json"
        seeds[seed] = {"metrics": comparison["metrics"], "verdict": comparison["verdict"],
                       "process": json.loads(process_path.read_text()) if process_path.is_file() else {}}
        print(f"seed {seed}: {comparison['verdict']['outcome']} — {'; '.join(comparison['verdict']['reasons'])}")
        for row in comparison["table"]["rows"]:
            print("  " + " | ".join(show(v) if isinstance(v, float) else str(v) for v in row))
    if not seeds:
        print("mcts_minus_best_sampling_accuracy=nan")
        return 1
    keys = sorted({k for s in seeds.values() for k in s["metrics"]})
    means = {k: mean_sd([s["metrics"].get(k) for s in seeds.values()])[0] for k in keys}
    outcome = CHAIN.verdict(means)
    print(f"\n{len(seeds)} seed(s) {sorted(seeds)}: mean ± sd")
    for key in SHOWN:
        mean, sd = mean_sd([s["metrics"].get(key) for s in seeds.values()])
        print(f"  {key:32s} {show(mean)} ± {show(sd)}")
    cpu = [s["process"].get("cpu_s") for s in seeds.values() if s["process"].get("cpu_s") is not None]
    if cpu:
        print(f"  CPU-min per seed (chain process)  {show(statistics.fmean(cpu) / 60)} (max {show(max(cpu) / 60)})")
    print(f"verdict of the means: {outcome['outcome']} — {'; '.join(outcome['reasons'])}")
    (args.out / "summary.json").parent.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps({"seeds": seeds, "means": means, "verdict": outcome}, indent=2)
                                           + "\n")
    headline = means.get("mcts_minus_best_sampling")
    print(f"mcts_minus_best_sampling_accuracy={'nan' if headline is None else f'{headline:.4f}'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
