"""aha-mini with several seeds: held-out accuracy and response length before/after GRPO, their curves
against step, and the spread across seeds.

    OMP_NUM_THREADS=1 .venv/bin/python bench/aha_mini.py --seeds 0 1 2 --parallel 2 --out bench/out/aha_mini
    .venv/bin/python bench/aha_mini.py --summarise-only --out bench/out/aha_mini   # tables from finished runs

Each seed runs `python -m r1model recipe run aha-mini --run-dir OUT/seed-N --seed N` (1 torch thread), so
the figure is exactly what a user gets. Writes OUT/summary.json and OUT/curves.md (the two curves as a
table: eval accuracy and mean length against step, and the training-batch curves every few steps).
The peer measured in the same run is the step-0 base model itself (before vs after GRPO).
Per seed it also prints the base's pretraining steps and, with the recipe's measured base (base.probe), each probe's
sampled pass@1 (the base stops at the first ≥ min_accuracy).
Last line: aha_mini_accuracy_gain_points=<mean over seeds>.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1model.events import read_events  # noqa: E402


def _command(seed: int, run_dir: Path, quick: bool, base: Path | None, sets: list[str] = ()) -> list[str]:
    """The recipe end to end, or (with a base checkpoint) its GRPO phase only, started from that base;
    `sets` are the CLI's --set KEY=VALUE changes to the recipe."""
    if base is None:
        return [sys.executable, "-m", "r1model", "recipe", "run", "aha-mini", "--run-dir", str(run_dir),
                "--seed", str(seed)] + (["--quick"] if quick else []) + [a for item in sets for a in ("--set", item)]
    from r1model.train.recipes import parse_set, recipe_config

    config = recipe_config("aha-mini", quick=quick, seed=seed,
                           sets=[parse_set(item) for item in sets]).model_dump(mode="json")
    config["model"] = {"source": str(base.resolve()), "overrides": {}}
    config["base"] = {"steps": 0}
    path = run_dir / "grpo_only_config.json"
    path.write_text(json.dumps(config, indent=1))
    return [sys.executable, "-m", "r1model", "train", str(path), "--run-dir", str(run_dir)]


def run_seeds(seeds: list[int], out: Path, parallel: int, quick: bool, base: Path | None = None,
              sets: list[str] = ()) -> dict[int, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    pending, running, wall = list(seeds), {}, {}
    while pending or running:
        while pending and len(running) < parallel:
            seed = pending.pop(0)
            run_dir = out / f"seed-{seed}"
            run_dir.mkdir(parents=True, exist_ok=True)
            cmd = _command(seed, run_dir, quick, base, sets)
            log = (run_dir / "trainer.log").open("a")
            running[seed] = (subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), time.time(), log)
        time.sleep(2)
        for seed, (proc, started, log) in list(running.items()):
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # the child's own CPU time, not the machine's
            if pid == 0:
                continue
            proc.returncode = os.waitstatus_to_exitcode(status)
            wall[seed] = time.time() - started
            cpu = usage.ru_utime + usage.ru_stime
            (out / f"seed-{seed}" / "process.json").write_text(json.dumps({"wall_s": wall[seed], "cpu_s": cpu, "exit": proc.returncode}))
            log.close()
            del running[seed]
            print(f"seed {seed}: exit {proc.returncode} after {wall[seed]:.0f} s wall, {cpu:.0f} s CPU", flush=True)
    return wall


def summarise_seed(run_dir: Path) -> dict:
    events = read_events(run_dir / "events.jsonl")
    evals = {}
    for e in events:
        if e["type"] == "eval" and e["benchmark"] == "heldout":
            evals.setdefault(e["step"], {})[e["metric"]] = e["value"]
    train = {e["step"]: e["values"] for e in events if e["type"] == "metric" and e.get("phase") == "grpo"}
    pretrain = [e for e in events if e["type"] == "metric" and e.get("phase") == "pretrain" and "train/loss" in e["values"]]
    # the measured base budget (config base.probe): sampled pass@1 at each probe, the step the base stopped at
    probes = {e["step"]: e["values"]["probe/pass@1"] for e in events
              if e["type"] == "metric" and e.get("phase") == "pretrain" and "probe/pass@1" in e["values"]}
    times = {e["type"] + ":" + str(e.get("phase")): e["time"] for e in events if e["type"] == "status"}
    first_t, last_t = events[0]["time"], events[-1]["time"]
    grpo_start = next((e["time"] for e in events if e["type"] == "status" and e.get("phase") == "grpo"), None)
    steps = sorted(evals)
    start, end = evals[steps[0]], evals[steps[-1]]
    # traces at step 0 vs the end: does the model write reasoning it did not write at first?
    eval_traces = [e for e in events if e["type"] == "trace" and e.get("source") == "eval"]
    first_traces = [e for e in eval_traces if e["step"] == steps[0]]
    last_traces = [e for e in eval_traces if e["step"] == steps[-1]]
    return {
        "eval_steps": steps,
        "accuracy_before": start["pass@1"], "accuracy_after": end["pass@1"],
        "length_before": start["mean_length"], "length_after": end["mean_length"],
        "worked_before": start["worked_ratio"], "worked_after": end["worked_ratio"],
        "accuracy_gain_points": 100 * (end["pass@1"] - start["pass@1"]),
        "length_ratio": end["mean_length"] / max(start["mean_length"], 1e-9),
        "eval_curve": {s: evals[s] for s in steps},
        "train_curve": {s: {k: v for k, v in vals.items() if k in ("accuracy", "completions/mean_length", "reward", "time/step")}
                        for s, vals in train.items()},
        "pretrain_final_loss": pretrain[-1]["values"].get("train/loss") if pretrain else None,
        "base_steps": pretrain[-1]["step"] if pretrain else None,
        "probes": probes,
        "wall_s": last_t - first_t,
        "pretrain_s": (grpo_start - first_t) if grpo_start else None,
        "trace_before": first_traces[0]["completion"] if first_traces else "",
        "trace_after": last_traces[0]["completion"] if last_traces else "",
        "done": any(e["type"] == "status" and e.get("phase") == "done" for e in events),
        "process": json.loads((run_dir / "process.json").read_text()) if (run_dir / "process.json").exists() else {},
    }


def _curve_table(per_seed: dict[int, dict], curve: str, steps: list[int], point_of) -> list[str]:
    """A markdown table of one curve: a row per step, per seed the (accuracy, length) point_of(its point)."""
    seeds = sorted(per_seed)
    lines = ["| step | " + " | ".join(f"seed {s} acc | seed {s} len" for s in seeds) + " |",
             "| --- |" + " --- | --- |" * len(seeds)]
    for step in steps:
        cells = []
        for s in seeds:
            point = per_seed[s][curve].get(step) or per_seed[s][curve].get(str(step))
            cells += [f"{point_of(point)[0]:.3f}", f"{point_of(point)[1]:.1f}"] if point else ["", ""]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return lines


def curves_markdown(per_seed: dict[int, dict]) -> str:
    seeds = sorted(per_seed)
    steps = sorted({s for r in per_seed.values() for s in r["eval_steps"]})
    train_steps = sorted({int(k) for r in per_seed.values() for k in r["train_curve"]})
    lines = ["# aha-mini curves (held-out accuracy / mean response length in tokens, greedy)", ""]
    lines += _curve_table(per_seed, "eval_curve", steps, lambda p: (p["pass@1"], p["mean_length"]))
    lines += ["", "## training batches (sampled at temperature 1): accuracy / mean length per GRPO step", ""]
    lines += _curve_table(per_seed, "train_curve",
                          [s for s in train_steps if s in (1, 2, 3, train_steps[-1]) or not s % 5],
                          lambda p: (p.get("accuracy", 0), p["completions/mean_length"]))
    lines += ["", "## one held-out completion before and after GRPO", ""]
    for s in seeds:
        lines += [f"seed {s}, step 0:", "```", per_seed[s]["trace_before"], "```",
                  f"seed {s}, after GRPO:", "```", per_seed[s]["trace_after"], "```", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=1, help="seeds run at once (1 torch thread each)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "aha_mini")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--summarise-only", action="store_true")
    parser.add_argument("--base", type=Path, default=None,
                        help="GRPO phase only, every seed from this base checkpoint (the spread of the RL phase)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="a change to the recipe, as the CLI's --set (e.g. supervised.worked_fraction=0.4)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.summarise_only:
        run_seeds(args.seeds, args.out, args.parallel, args.quick, args.base, args.sets)
    per_seed = {}
    for seed in args.seeds:
        run_dir = args.out / f"seed-{seed}"
        try:
            per_seed[seed] = summarise_seed(run_dir)
        except (FileNotFoundError, IndexError, KeyError, StopIteration) as exc:
            print(f"seed {seed}: no complete result in {run_dir} ({exc!r})")
    if not per_seed:
        raise SystemExit("no seed finished")
    for seed, r in per_seed.items():
        print(f"seed {seed}: accuracy {r['accuracy_before']:.3f} -> {r['accuracy_after']:.3f} "
              f"(+{r['accuracy_gain_points']:.1f} points), length {r['length_before']:.1f} -> {r['length_after']:.1f} "
              f"({r['length_ratio']:.2f}x), worked {r['worked_before']:.2f} -> {r['worked_after']:.2f}, "
              f"wall {r['wall_s'] / 60:.1f} min (before GRPO {(r['pretrain_s'] or 0) / 60:.1f} min), "
              f"CPU {r['process'].get('cpu_s', float('nan')) / 60:.1f} min, done={r['done']}, base {r['base_steps']} steps"
              + (f" (probe pass@1 {', '.join(f'{k}: {v:.3f}' for k, v in r['probes'].items())})" if r["probes"] else ""))
    gains = [r["accuracy_gain_points"] for r in per_seed.values()]
    ratios = [r["length_ratio"] for r in per_seed.values()]
    summary = {
        "per_seed": per_seed,
        "accuracy_gain_points": {"mean": statistics.fmean(gains), "min": min(gains), "max": max(gains)},
        "length_ratio": {"mean": statistics.fmean(ratios), "min": min(ratios), "max": max(ratios)},
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    (args.out / "curves.md").write_text(curves_markdown(per_seed))
    print(f"accuracy gain points: mean {statistics.fmean(gains):.1f} (min {min(gains):.1f}, max {max(gains):.1f}); "
          f"length ratio: mean {statistics.fmean(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")
    print(f"aha_mini_accuracy_gain_points={statistics.fmean(gains):.1f}")


if __name__ == "__main__":
    main()
