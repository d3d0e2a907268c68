"""The long2short finding (Kimi k1.5 §2.4) over several seeds: per method (the long model, length-penalty RL,
shortest rejection sampling + SFT, merging) held-out accuracy, mean response tokens and token efficiency
(pass@1 per response token, Kimi's headline), each evaluated alike (greedy, the long model's max_new_tokens).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/finding_long2short.py --seeds 0 1 2 --out bench/out/long2short
    .venv/bin/python bench/finding_long2short.py --seeds 0 1 2 --summarise-only --out bench/out/long2short

Seeds run one after another, each `python -m r1model recipe run long2short --seed N --run-dir OUT/seed-N` in a
child process (1 torch thread; its own CPU time from rusage, in OUT/seed-N/process.json). A seed whose chain
completed is not run again; a stopped one resumes. `--set` passes changes to the chain (kept in chain.json).
The verdict of the means is the chain's verdict applied to the seeds' mean metrics, as the lab's Findings page
does. Writes OUT/summary.json. Last line: long2short_best_token_efficiency=<the highest per-method mean>.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.train.chains import L2S_METHODS, LONG2SHORT as CHAIN  # noqa: E402
from _chain_seed import main, seed_parser  # noqa: E402 (bench/_chain_seed.py)

HEADLINE = "long2short_best_token_efficiency"


def best_efficiency(means: dict) -> float | None:
    """The highest per-method mean token efficiency (the chain's headline, taken on the seeds' means)."""
    values = [means.get(f"{method}.token_efficiency") for method in L2S_METHODS]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def method_table(summary: dict) -> None:
    """Per method: mean ± sd over the seeds of accuracy, mean response tokens and token efficiency."""
    def cell(name: str, digits: int) -> str:
        mean, sd = summary["means"].get(name), summary["spread"].get(name, {}).get("sd")
        return "null" if mean is None else f"{mean:.{digits}f}" + ("" if sd is None else f" ± {sd:.{digits}f}")

    print("  method | accuracy | mean length | token efficiency")
    for method in L2S_METHODS:
        print(f"  {method} | {cell(f'{method}.accuracy', 3)} | {cell(f'{method}.mean_length', 1)} | "
              f"{cell(f'{method}.token_efficiency', 4)}")


if __name__ == "__main__":
    sys.exit(main(CHAIN, HEADLINE, best_efficiency, digits=6, after_means=method_table,
                  parser=seed_parser(__doc__, out=ROOT / "bench" / "out" / "long2short", sets=True)))
