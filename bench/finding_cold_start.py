"""The cold-start-vs-zero finding (DeepSeek-R1 §2.3.1) over several seeds: RL steps and CPU-minutes to the
target held-out accuracy from the base (Zero) vs after a small cold-start SFT, seed by seed and as means.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/finding_cold_start.py --seeds 0 1 2 --out bench/out/cold_start
    .venv/bin/python bench/finding_cold_start.py --seeds 0 1 2 --summarise-only --out bench/out/cold_start

Each seed runs `python -m r1model recipe run cold-start-vs-zero --seed N --run-dir OUT/seed-N` (1 torch thread),
one after another; a seed whose chain is already complete is not run again (the chain resumes), only its
comparison.json is written again from its runs. With
--share-base S every other seed starts from seed S's base (its completed base stage copied into the seed's chain
directory and marked completed, so the chain reuses it): those seeds differ in the SFT data order and the RL
sampling only, and their chain CPU leaves the base out. Writes OUT/summary.json. The verdict of the means is the chain's own verdict applied to them, as the lab does.
Last line: cold_start_rl_steps_saved=<mean over seeds with both arms at the target>.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.train.findings.cold_start import CHAIN  # noqa: E402
from _chain_seed import chain_completed, run_chain_seed  # noqa: E402 (bench/_chain_seed.py)

SHOWN = ("zero_start_accuracy", "cold_start_start_accuracy", "zero_steps_to_target", "cold_start_steps_to_target",
         "zero_cpu_min_to_target", "cold_start_rl_cpu_min_to_target", "cold_start_sft_cpu_min",
         "cold_start_total_cpu_min_to_target", "zero_final_accuracy", "cold_start_final_accuracy",
         "zero_final_format_rate", "cold_start_final_format_rate", "zero_final_worked_ratio",
         "cold_start_final_worked_ratio")


def run_seed(seed: int, run_dir: Path, quick: bool) -> dict:
    """One seed's chain in a child process; its own wall and CPU seconds (rusage of the child)."""
    return run_chain_seed(CHAIN.name, seed, run_dir, quick=quick)


def share_base(source: Path, run_dir: Path, seed: int, quick: bool) -> None:
    """Start a seed's chain directory with `source`'s completed base stage (copied), marked completed in its
    chain.json with the options `recipe run --seed SEED` gives, so that the chain reuses it."""
    from r1model.train.chains import _latest_checkpoint, _State

    name = CHAIN.stage_dirs()[0]
    if (run_dir / "chain.json").exists():
        return
    if _latest_checkpoint(source / "stages" / name / "checkpoints") is None:
        raise SystemExit(f"--share-base: no completed base in {source}")
    root = run_dir.resolve()
    shutil.copytree(source / "stages" / name, root / "stages" / name)
    state = _State(CHAIN, root, {"quick": quick, "seed": seed, "sets": []})
    checkpoint = _latest_checkpoint(root / "stages" / name / "checkpoints")
    state.stage(0).update(status="completed", reason=None, shared_from=str(source.resolve() / "stages" / name),
                          artifacts={"checkpoint": str(checkpoint.relative_to(root))})
    state.save()


def _mean_sd(values: list) -> tuple[float | None, float | None, int]:
    numbers = [v for v in values if isinstance(v, (int, float))]
    if not numbers:
        return None, None, 0
    return statistics.fmean(numbers), statistics.stdev(numbers) if len(numbers) > 1 else 0.0, len(numbers)


def _fmt(value) -> str:
    return "null" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "cold_start")
    parser.add_argument("--quick", action="store_true", help="the chain's --quick sizes (plumbing only)")
    parser.add_argument("--summarise-only", action="store_true", help="read finished seeds, run nothing")
    parser.add_argument("--share-base", type=int, metavar="SEED", default=None,
                        help="every other seed starts from this seed's base (run first when it is listed)")
    args = parser.parse_args(argv)
    seeds = {}
    order = sorted(args.seeds, key=lambda s: s != args.share_base)
    for seed in order:
        run_dir = args.out / f"seed-{seed}"
        if args.share_base is not None and seed != args.share_base and not args.summarise_only:
            share_base(args.out / f"seed-{args.share_base}", run_dir, seed, args.quick)
        if not args.summarise_only and not chain_completed(run_dir):
            process = run_seed(seed, run_dir, args.quick)
            print(f"seed {seed}: exit {process['exit']} after {process['wall_s']:.0f} s wall, "
                  f"{process['cpu_s'] / 60:.1f} CPU-min", flush=True)
        if not chain_completed(run_dir):
            print(f"seed {seed}: the chain in {run_dir} did not complete")
            continue
        comparison, _ = CHAIN.summarise(run_dir.resolve(), CHAIN)  # today's summarise (no training): its target
        (run_dir / "comparison.json").write_text(json.dumps(comparison, indent=2) + "\n")
        process_path = run_dir / "process.json"
        process = json.loads(process_path.read_text()) if process_path.is_file() else {}
        shared = json.loads((run_dir / "chain.json").read_text())["stages"][0].get("shared_from")
        seeds[seed] = {"metrics": comparison["metrics"], "verdict": comparison["verdict"], "process": process,
                       "base_shared_from": shared}
        m = comparison["metrics"]
        print(f"seed {seed}: " + ", ".join(f"{k}={_fmt(m.get(k))}" for k in SHOWN)
              + f"; verdict {comparison['verdict']['outcome']}"
              + (f"; chain {process['cpu_s'] / 60:.1f} CPU-min, {process['wall_s'] / 60:.1f} min wall" if process else "")
              + (f" (base shared from {shared})" if shared else ""))
    if not seeds:
        print("cold_start_rl_steps_saved=nan")
        return 1
    names = sorted({k for s in seeds.values() for k in s["metrics"]})
    means, spread = {}, {}
    for name in names:
        mean, sd, n = _mean_sd([s["metrics"].get(name) for s in seeds.values()])
        means[name], spread[name] = mean, {"sd": sd, "n": n}
    outcome = CHAIN.verdict(means)
    cpu = [s["process"]["cpu_s"] / 60 for s in seeds.values() if s["process"].get("cpu_s") is not None]
    summary = {"seeds": seeds, "means": means, "spread": spread, "verdict_of_means": outcome,
               "chain_cpu_min": cpu}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name in SHOWN + ("rl_steps_saved",):
        print(f"mean {name} = {_fmt(means.get(name))} ± {_fmt(spread[name]['sd'])} (n={spread[name]['n']})")
    print(f"verdict of the means: {outcome['outcome']} — {'; '.join(outcome['reasons'])}")
    if cpu:
        print(f"chain CPU-min per seed: {', '.join(f'{c:.1f}' for c in cpu)}")
    saved = means.get("rl_steps_saved")
    print(f"cold_start_rl_steps_saved={'nan' if saved is None else f'{saved:.1f}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
