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

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.train.findings.cold_start import CHAIN  # noqa: E402
import _chain_seed  # noqa: E402 (bench/_chain_seed.py)

SHOWN = ("zero_start_accuracy", "cold_start_start_accuracy", "zero_steps_to_target", "cold_start_steps_to_target",
         "zero_cpu_min_to_target", "cold_start_rl_cpu_min_to_target", "cold_start_sft_cpu_min",
         "cold_start_total_cpu_min_to_target", "zero_final_accuracy", "cold_start_final_accuracy",
         "zero_final_format_rate", "cold_start_final_format_rate", "zero_final_worked_ratio",
         "cold_start_final_worked_ratio", "rl_steps_saved")


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


def _before_run(args, seed: int, run_dir: Path) -> None:
    if args.share_base is not None and seed != args.share_base:
        share_base(args.out / f"seed-{args.share_base}", run_dir, seed, args.quick)


def _shared(run_dir: Path) -> dict:
    return {"base_shared_from": json.loads((run_dir / "chain.json").read_text())["stages"][0].get("shared_from")}


def main(argv: list[str] | None = None) -> int:
    parser = _chain_seed.seed_parser(__doc__, out=ROOT / "bench" / "out" / "cold_start")
    parser.add_argument("--share-base", type=int, metavar="SEED", default=None,
                        help="every other seed starts from this seed's base (run first when it is listed)")
    return _chain_seed.main(CHAIN, "cold_start_rl_steps_saved", "rl_steps_saved", digits=1, argv=argv,
                            parser=parser, shown=SHOWN, extra_of=_shared, before_run=_before_run,
                            order=lambda args: sorted(args.seeds, key=lambda s: s != args.share_base))


if __name__ == "__main__":
    sys.exit(main())
