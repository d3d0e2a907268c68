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

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.train.findings.prm_vs_orm import CHAIN  # noqa: E402
import _chain_seed  # noqa: E402 (bench/_chain_seed.py)

SHOWN = ("start_accuracy", "orm.accuracy", "prm.accuracy", "prm_minus_orm_accuracy", "orm.train_accuracy_gain",
         "prm.train_accuracy_gain", "prm.reward_gain", "orm.prm_score_gain", "hacking", "prm_model.step_accuracy",
         "prm_model.majority_accuracy", "prm_model.balanced_accuracy", "labels", "checker_calls", "label_seconds",
         "prm_train_seconds")


def main(argv: list[str] | None = None) -> int:
    parser = _chain_seed.seed_parser(__doc__, out=ROOT / "bench" / "out" / "prm_vs_orm", sets=True)
    return _chain_seed.main(CHAIN, "prm_minus_orm_accuracy", "prm_minus_orm_accuracy", argv=argv, parser=parser,
                            comparison_of=_chain_seed.recorded_comparison, shown=SHOWN)


if __name__ == "__main__":
    sys.exit(main())
