"""Where our GRPO step spends its time (generate / score / reference / update) and how its completion
tokens per second change as the group size G and the completion length grow.

    OMP_NUM_THREADS=1 .venv/bin/python bench/grpo_time_split.py
    OMP_NUM_THREADS=1 .venv/bin/python bench/grpo_time_split.py --groups 4 8 16 --lengths 32 64 128 --prompts 4

Each cell of the grid builds the project's GRPOTrainer (r1model.train.grpo_trainer) on the `tiny` preset,
freshly initialised from seed 0 — a random model rarely samples <eos> or </answer>, so completions run
long and their length grows with max_new_tokens; its rewards are all 0, the advantages too, so the policy
does not move and every step of a cell samples the same distribution — and times `trainer.step(k)`. The
cells take turns (round robin, so the load of the shared machine hits them alike): one warm-up round, then
`--steps` measured rounds; medians reported. β = 0.001 (the report's), so the reference model's
forward is part of the split; μ = 1, one minibatch, temperature 1, 1 torch thread.

The peer measured in the same run is the smallest cell of the grid: each row's tokens/s is also given as a
ratio to it. Last line: grpo_time_split_tokens_per_s_scaling=<largest cell ÷ smallest cell>.
"""
from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported
os.environ["MKL_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from r1model.events import EventWriter  # noqa: E402
from r1model.train import modeling  # noqa: E402
from r1model.train.config import validate_run_config  # noqa: E402
from r1model.train.context import Progress, RunContext  # noqa: E402
from r1model.train.data import DataSource  # noqa: E402

PARTS = ("generate", "score", "reference", "update")


def cell_trainer(group_size: int, max_new_tokens: int, prompts: int, beta: float, total_steps: int, run_dir: Path):
    """The project's GRPOTrainer on a freshly initialised tiny model, built as runner._run_job builds it."""
    from r1model.train.grpo_trainer import GRPOTrainer

    config = validate_run_config({
        "kind": "grpo", "name": "bench-time-split", "model": {"source": "tiny"},
        "datasets": [{"task": "addition", "difficulty": {"digits": 6, "min_digits": 6}, "eval_size": 0}],
        "template": "mini", "rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.1}],
        "seed": 0, "threads": 1, "total_steps": total_steps, "checkpoint_interval": 0, "traces_per_step": 0,
        "device": "cpu", "precision": "fp32", "evaluation": {"benchmarks": [], "at_start": False},
        "grpo": {"group_size": group_size, "prompts_per_step": prompts, "beta": beta, "num_iterations": 1,
                 "minibatches": 1, "lr_schedule": "constant", "loss_aggregation": "grpo", "drop_all_equal_groups": False},
        "sampling": {"temperature": 1.0, "max_new_tokens": max_new_tokens},
    }, source="bench time split")
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device("cpu")
    ctx = RunContext(config, run_dir, EventWriter(run_dir), device, progress=Progress(open(os.devnull, "w")))
    model, tokenizer = modeling.build_model(config.model, device, config.seed)
    reference = modeling.frozen_copy(model) if beta > 0 else None
    return GRPOTrainer(ctx, model, tokenizer, DataSource(config), reference=reference)


def summarise_cell(group_size: int, max_new_tokens: int, prompts: int, rows: list[dict]) -> dict:
    n = group_size * prompts
    cell = {
        "G": group_size, "L": max_new_tokens, "completions": n,
        "mean_length": statistics.median(r["completions/mean_length"] for r in rows),
        "s_per_step": statistics.median(r["wall"] for r in rows),
        "tokens_per_s": statistics.median(r["completions/mean_length"] * n / r["wall"] for r in rows),
        "walls": [round(r["wall"], 3) for r in rows],
    }
    for part in PARTS:
        cell[part] = statistics.median(r[f"time/{part}"] for r in rows)
    cell["other"] = max(0.0, cell["s_per_step"] - sum(cell[p] for p in PARTS))
    return cell


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--groups", type=int, nargs="+", default=[4, 8, 16], help="group sizes G")
    p.add_argument("--lengths", type=int, nargs="+", default=[32, 64, 128], help="max completion lengths")
    p.add_argument("--prompts", type=int, default=4, help="prompts per step")
    p.add_argument("--beta", type=float, default=0.001, help="KL coefficient (> 0 times the reference forward)")
    p.add_argument("--steps", type=int, default=3, help="measured steps per cell (after one warm-up)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "grpo_time_split")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    grid = [(g, length) for g in args.groups for length in args.lengths]
    trainers = {cell: cell_trainer(cell[0], cell[1], args.prompts, args.beta, 1 + args.steps,
                                   args.out / f"G{cell[0]}-L{cell[1]}") for cell in grid}
    rows: dict[tuple[int, int], list[dict]] = {cell: [] for cell in grid}
    for step in range(1, 2 + args.steps):  # round robin over the cells: the machine's load hits them alike
        for cell in grid:
            t0 = time.perf_counter()
            values = trainers[cell].step(step)
            values["wall"] = time.perf_counter() - t0
            if step > 1:  # the first round is a warm-up
                rows[cell].append(values)
    cells = [summarise_cell(g, length, args.prompts, rows[(g, length)]) for g, length in grid]
    print(f"{'G':>3s} {'L':>4s} {'len':>6s} {'s/step':>7s} {'tok/s':>7s} {'vs first':>8s}  "
          + "  ".join(f"{p:>10s}" for p in (*PARTS, "other")))
    for cell in cells:
        cell["ratio_to_first"] = cell["tokens_per_s"] / cells[0]["tokens_per_s"]
        shares = "  ".join(f"{cell[p]:5.2f}s {100 * cell[p] / cell['s_per_step']:3.0f}%" for p in (*PARTS, "other"))
        print(f"{cell['G']:3d} {cell['L']:4d} {cell['mean_length']:6.1f} {cell['s_per_step']:7.2f} "
              f"{cell['tokens_per_s']:7.0f} {cell['ratio_to_first']:8.2f}  {shares}")
    scaling = cells[-1]["tokens_per_s"] / cells[0]["tokens_per_s"]
    settings = {"prompts_per_step": args.prompts, "beta": args.beta, "mu": 1, "minibatches": 1, "steps": args.steps,
                "warmup": 1, "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "model": "tiny, random init"}
    (args.out / "result.json").write_text(json.dumps({"settings": settings, "cells": cells,
                                                      "wall_s": time.perf_counter() - started}, indent=2))
    print(f"settings: {json.dumps(settings)}; whole script {time.perf_counter() - started:.0f} s")
    print(f"grpo_time_split_tokens_per_s_scaling={scaling:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
