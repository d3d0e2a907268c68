"""The language-mixing finding (DeepSeek-R1 §2.3.2) over seeds: Zero's mixing rate vs the language-reward model's,
their accuracy and the accuracy cost, CPU-minutes per seed.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/finding_language_mixing.py --seeds 0 1 2
    .venv/bin/python bench/finding_language_mixing.py --seeds 0 1 2 --summarise-only   # from finished runs

Each seed runs `python -m r1model recipe run language-mixing --seed N --run-dir OUT/seed-N` (1 torch thread),
one seed after another, so the figure is what a user gets; a completed seed is not run again. Its CPU time is
the child's own (OUT/seed-N/process.json). Writes OUT/summary.json: per seed the comparison's metrics, verdict and
cost; the seeds' mean and sd per metric and the chain's verdict on the means. Last line: the headline,
mixing_rate_drop=<mean over seeds>.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.train.findings.language_mixing import CHAIN  # noqa: E402
import _chain_seed  # noqa: E402 (bench/_chain_seed.py)

SHOWN = ("zero_mixing_rate", "language_mixing_rate", "zero_accuracy", "language_accuracy", "accuracy_cost",
         "zero_thinks", "language_thinks")


def main(argv: list[str] | None = None) -> int:
    parser = _chain_seed.seed_parser(__doc__, out=ROOT / "bench" / "out" / "language_mixing", seeds=(0,), sets=True)
    return _chain_seed.main(CHAIN, "mixing_rate_drop", "mixing_rate_drop", argv=argv, parser=parser,
                            comparison_of=_chain_seed.recorded_comparison, shown=SHOWN)


if __name__ == "__main__":
    sys.exit(main())
