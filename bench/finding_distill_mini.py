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

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.train.findings.distill_mini import CHAIN, STUDENTS  # noqa: E402
import _chain_seed  # noqa: E402 (bench/_chain_seed.py)


def _gaps(summary: dict) -> None:
    for student in STUDENTS:
        name = f"{student}_distill_minus_rl"
        gaps = [entry["metrics"].get(name) for entry in summary["seeds"].values()]
        if summary["means"].get(name) is not None:
            sd = summary["spread"][name]["sd"]
            print(f"{student}: distilled − RL {summary['means'][name]:+.3f} ± {_chain_seed.show(sd)} over "
                  f"{summary['spread'][name]['n']} seed(s) ({', '.join(f'{g:+.3f}' for g in gaps if g is not None)})")


def _headline(means: dict) -> float | None:
    gaps = [means.get(f"{s}_distill_minus_rl") for s in STUDENTS]
    return min(gaps) if all(g is not None for g in gaps) else None


def main(argv: list[str] | None = None) -> int:
    parser = _chain_seed.seed_parser(__doc__, out=ROOT / "bench" / "out" / "distill_mini", seeds=(0,))
    return _chain_seed.main(CHAIN, "distill_minus_rl_min", _headline, argv=argv, parser=parser, after_means=_gaps)


if __name__ == "__main__":
    sys.exit(main())
