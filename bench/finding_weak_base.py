"""The weak-base finding: RL gain vs base skill over several base budgets (r1model/train/findings/weak_base.py).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/finding_weak_base.py --seeds 0 1 2 --out bench/out/weak_base
    .venv/bin/python bench/finding_weak_base.py --seeds 0 1 2 --summarise-only --out bench/out/weak_base

Each seed runs `python -m r1model recipe run weak-base --seed N --run-dir OUT/seed-N` (seeds one after another;
a stopped chain resumes). Prints each seed's table (base steps, greedy / sampled step-0 accuracy, worked shares,
accuracy after RL, gain) and verdict, and the verdict on the seeds' means; --summarise-only also summarises a
chain whose later stages have not run yet (their budgets read as missing). Last line: the headline,
weak_base_gain_rise_points=<best gain − the weakest base's gain, mean over seeds>.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.train.findings.weak_base import CHAIN  # noqa: E402
import _chain_seed  # noqa: E402 (bench/_chain_seed.py)


def summarise(run_dir: Path, chain) -> dict | None:
    """comparison.json when the chain completed, else the same summary of the stages that ran (None before any)."""
    recorded = _chain_seed.recorded_comparison(run_dir, chain)
    if recorded is None and (run_dir / "chain.json").is_file():
        return chain.summarise(run_dir, chain)[0]
    return recorded


def main(argv: list[str] | None = None) -> int:
    parser = _chain_seed.seed_parser(__doc__, out=ROOT / "bench" / "out" / "weak_base", seeds=(0, 1, 2))
    return _chain_seed.main(CHAIN, "weak_base_gain_rise_points", "gain_rise_points", digits=1, argv=argv,
                            parser=parser, comparison_of=summarise, log_name="trainer.log")


if __name__ == "__main__":
    sys.exit(main())
