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

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.train.findings.mcts_vs_sampling import CHAIN, METHODS  # noqa: E402
import _chain_seed  # noqa: E402 (bench/_chain_seed.py)

SHOWN = tuple(f"{m}.{k}" for k in ("accuracy", "tokens", "tokens_per_solved") for m in METHODS) + (
    "mcts.nodes", "mcts.no_answer_rate", "mcts.exhausted_rate", "mcts_minus_best_sampling", "value.brier", "value.baseline_brier",
    "value.error_rate")


def main(argv: list[str] | None = None) -> int:
    parser = _chain_seed.seed_parser(__doc__, out=ROOT / "bench" / "out" / "mcts_vs_sampling", sets=True)
    return _chain_seed.main(CHAIN, "mcts_minus_best_sampling_accuracy", "mcts_minus_best_sampling", argv=argv,
                            parser=parser, shown=SHOWN, table=True)


if __name__ == "__main__":
    sys.exit(main())
