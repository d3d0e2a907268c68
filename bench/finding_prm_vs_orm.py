"""The prm-vs-orm finding (DeepSeek-R1 §4.2) over several seeds: held-out accuracy of GRPO with a trained process
reward model vs the outcome reward at equal compute, the PRM's step accuracy and label cost, and reward hacking.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/finding_prm_vs_orm.py --seeds 0 1 2 --out bench/out/prm_vs_orm
    .venv/bin/python bench/finding_prm_vs_orm.py --seeds 0 1 2 --summarise-only --out bench/out/prm_vs_orm

Seeds run one after another, each `python -m r1model recipe run prm-vs-orm --seed N --run-dir OUT/seed-N` in a
child process (1 torch thread; its CPU time from rusage). A seed whose chain completed is not run again. The
verdict of the means is the chain's verdict applied to the seeds' mean metrics, as the lab's Findings page does.
`--set` passes changes to the chain (e.g. a smaller scale on a busy machine; the chain keeps them in chain.json).
Writes OUT/summary.json. Last line: prm_minus_orm_accuracy=<mean over seeds>.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.train.findings.prm_vs_orm import CHAIN  # noqa: E402
from _chain_seed import chain_completed as completed, run_chain_seed  # noqa: E402 (bench/_chain_seed.py)

SHOWN = ("start_accuracy", "orm.accuracy", "prm.accuracy", "prm_minus_orm_accuracy", "orm.train_accuracy_gain",
         "prm.train_accuracy_gain", "prm.reward_gain", "orm.prm_score_gain", "hacking", "prm_model.step_accuracy",
         "prm_model.majority_accuracy", "prm_model.balanced_accuracy", "labels", "checker_calls", "label_seconds",
         "prm_train_seconds")


def show(value) -> str:
    if value is None:
        return "null"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "prm_vs_orm")
    parser.add_argument("--quick", action="store_true", help="the chain's --quick sizes (plumbing only)")
    parser.add_argument("--summarise-only", action="store_true", help="read finished seeds, run nothing")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="[STAGE:]KEY=VALUE",
                        help="a change to the chain, as the CLI's --set (a smaller scale on a busy machine)")
    args = parser.parse_args(argv)
    per_seed = {}
    for seed in args.seeds:
        run_dir = args.out / f"seed-{seed}"
        if not args.summarise_only and not completed(run_dir):
            process = run_chain_seed(CHAIN.name, seed, run_dir, quick=args.quick, sets=args.sets)
            print(f"seed {seed}: exit {process['exit']}, {process['wall_s'] / 60:.1f} min wall, "
                  f"{process['cpu_s'] / 60:.1f} CPU-min", flush=True)
        path = run_dir / "comparison.json"
        if not path.is_file():
            print(f"seed {seed}: no comparison.json in {run_dir} (chain not completed)")
            continue
        comparison = json.loads(path.read_text())
        process_path = run_dir / "process.json"
        process = json.loads(process_path.read_text()) if process_path.is_file() else {}
        per_seed[seed] = {"metrics": comparison["metrics"], "verdict": comparison["verdict"], "process": process}
        metrics = comparison["metrics"]
        print(f"seed {seed}: " + ", ".join(f"{k}={show(metrics.get(k))}" for k in SHOWN)
              + f"; verdict {comparison['verdict']['outcome']} ({'; '.join(comparison['verdict']['reasons'])})"
              + (f"; {process['cpu_s'] / 60:.1f} CPU-min, {process['wall_s'] / 60:.1f} min wall" if process else ""))
    if not per_seed:
        print("prm_minus_orm_accuracy=nan")
        return 1
    means, spread = {}, {}
    for name in sorted({k for s in per_seed.values() for k in s["metrics"]}):
        values = [s["metrics"].get(name) for s in per_seed.values()]
        numbers = [v for v in values if isinstance(v, (int, float))]
        means[name] = statistics.fmean(numbers) if numbers else None
        spread[name] = {"sd": statistics.stdev(numbers) if len(numbers) > 1 else 0.0, "n": len(numbers)}
    verdict = CHAIN.verdict(means)
    cpu = [s["process"]["cpu_s"] / 60 for s in per_seed.values() if s["process"].get("cpu_s") is not None]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(
        {"seeds": per_seed, "means": means, "spread": spread, "verdict_of_means": verdict, "chain_cpu_min": cpu},
        indent=2) + "\n")
    for name in SHOWN:
        print(f"mean {name} = {show(means.get(name))} ± {show(spread.get(name, {}).get('sd'))} "
              f"(n={spread.get(name, {}).get('n', 0)})")
    print(f"verdict of the means: {verdict['outcome']} — {'; '.join(verdict['reasons'])}")
    if cpu:
        print(f"chain CPU-min per seed: {', '.join(f'{c:.1f}' for c in cpu)}")
    gap = means.get("prm_minus_orm_accuracy")
    print(f"prm_minus_orm_accuracy={'nan' if gap is None else f'{gap:.4f}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
