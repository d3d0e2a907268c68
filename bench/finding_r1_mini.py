"""The r1-mini finding (DeepSeek-R1 §2.3): R1's pipeline vs R1-Zero over seeds — accuracy, format rate,
language-mixing rate and length of both, the chain's verdict per seed and on the means, CPU-minutes per seed.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/finding_r1_mini.py --seeds 0 1 2
    .venv/bin/python bench/finding_r1_mini.py --seeds 0 1 2 --summarise-only   # from finished runs

Each seed runs `python -m r1model recipe run r1-mini --seed N --run-dir OUT/seed-N` (1 torch thread), one seed
after another (start one process per seed to run them side by side); a completed seed is not run again. The
full scale is the chain's CPU miniature (r1model/train/chains.py: the bilingual tiny-bpe base, Zero 60 GRPO steps,
reasoning RL 30 + final RL 30, both evaluated on 200 held-out problems × 4 samples). Its CPU time is the child's
own (OUT/seed-N/process.json). A completed seed's comparison.json is written again from its runs by today's code
(the verdict rule included). Writes OUT/summary.json. Last line: the headline,
r1_mini_minus_zero_mixing_rate=<mean over seeds> (negative: R1-mini mixes less).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.train.chains import R1_MINI  # noqa: E402
import _chain_seed  # noqa: E402 (bench/_chain_seed.py)

SHOWN = tuple(f"{side}.{metric}" for side in ("zero", "r1-mini", "difference")
              for metric in ("accuracy", "format_rate", "mixing_rate", "mean_length"))


def main(argv: list[str] | None = None) -> int:
    parser = _chain_seed.seed_parser(__doc__, out=ROOT / "bench" / "out" / "r1_mini", seeds=(0,), sets=True)
    return _chain_seed.main(R1_MINI, "r1_mini_minus_zero_mixing_rate", "difference.mixing_rate", argv=argv,
                            parser=parser, shown=SHOWN)  # comparison_of: today's summarise, rewritten


if __name__ == "__main__":
    sys.exit(main())
