"""What the bench/finding_*.py scripts share (not a figure itself: `make bench` skips bench/_*.py).

- run_chain_seed: one seed of a chain, run (or resumed) by the CLI in its own process; what it cost is the
  child's own rusage (os.wait4), so CPU-minutes do not depend on the shared machine's load; written to
  RUN_DIR/process.json as {"wall_s", "cpu_s", "exit", "load_average_after"}.
- chain_completed: whether a seed directory holds a completed chain (its chain.json).
- spread: mean ± sd of a metric over seeds.
- main: the scripts' skeleton (seeds in turn, each seed's comparison, the means, the verdict on them, summary.json,
  the headline line); seed_parser gives its common options, recorded_comparison / summarised_comparison how a
  seed's comparison is read."""
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


def run_chain_seed(chain: str, seed: int, run_dir: Path, *, quick: bool = False, sets=(),
                   log_name: str = "chain.log") -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "r1model", "recipe", "run", chain, "--seed", str(seed), "--run-dir", str(run_dir)]
    command += (["--quick"] if quick else []) + [arg for item in sets for arg in ("--set", item)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    started = time.time()
    with (run_dir / log_name).open("a") as log:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    process = {"wall_s": time.time() - started, "cpu_s": usage.ru_utime + usage.ru_stime,
               "exit": os.waitstatus_to_exitcode(status), "load_average_after": os.getloadavg()[0]}
    (run_dir / "process.json").write_text(json.dumps(process) + "\n")
    return process


def chain_completed(run_dir: Path) -> bool:
    try:
        return json.loads((run_dir / "chain.json").read_text()).get("status") == "completed"
    except (OSError, ValueError):
        return False


def spread(values) -> dict | None:
    """{"mean", "sd", "n"} of the numbers among `values` (sd None for one); None when there are none."""
    numbers = [v for v in values if isinstance(v, (int, float))]
    if not numbers:
        return None
    return {"mean": statistics.fmean(numbers), "sd": statistics.stdev(numbers) if len(numbers) > 1 else None,
            "n": len(numbers)}


def show(value) -> str:
    """A metric as the finding scripts print it: null for missing, three decimals for a float."""
    return "null" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def recorded_comparison(run_dir: Path, chain) -> dict | None:
    """The comparison.json the chain wrote when it completed; None before."""
    path = run_dir / "comparison.json"
    return json.loads(path.read_text()) if path.is_file() else None


def summarised_comparison(run_dir: Path, chain) -> dict | None:
    """A completed chain's comparison by today's `chain.summarise` (no training), written again to comparison.json."""
    if not chain_completed(run_dir):
        return None
    comparison, _ = chain.summarise(run_dir.resolve(), chain)
    (run_dir / "comparison.json").write_text(json.dumps(comparison, indent=2) + "\n")
    return comparison


def seed_parser(doc: str, *, out: Path, seeds=(0, 1, 2), sets: bool = False) -> argparse.ArgumentParser:
    """--seeds, --out, --quick, --summarise-only (and --set when `sets`) with this script's defaults."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--quick", action="store_true", help="the chain's --quick sizes (plumbing only)")
    parser.add_argument("--summarise-only", action="store_true", help="read finished seeds, run nothing")
    if sets:
        parser.add_argument("--set", dest="sets", action="append", default=[], metavar="[STAGE:]KEY=VALUE",
                            help="a change to the chain's configs, as `recipe run --set`")
    return parser


def _cost(process: dict) -> str:
    return f"{process['cpu_s'] / 60:.1f} CPU-min, {process['wall_s'] / 60:.1f} min wall" if process else "no cost"


def show_seed(seed: int, comparison: dict, process: dict, shown=(), table: bool = False) -> None:
    """A seed's verdict and cost, with its `shown` metrics on one line, or else (or when `table`) its comparison
    table."""
    verdict = f"verdict {comparison['verdict']['outcome']} ({'; '.join(comparison['verdict']['reasons'])})"
    if shown and not table:
        metrics = comparison["metrics"]
        print(f"seed {seed}: " + ", ".join(f"{k}={show(metrics.get(k))}" for k in shown)
              + f"; {verdict}; {_cost(process)}")
        return
    print(f"seed {seed}: {verdict}; {_cost(process)}")
    table = comparison.get("table") or {}
    print("  " + " | ".join(table.get("columns", ())))
    for row in table.get("rows", ()):
        print("  " + " | ".join(show(v) for v in row))


def main(chain, headline: str, value, *, parser: argparse.ArgumentParser, argv=None,
         comparison_of=summarised_comparison, shown=(), table: bool = False, digits: int = 4,
         log_name: str = "chain.log",
         order=None, before_run=None, extra_of=None, after_means=None) -> int:
    """The finding scripts' one skeleton: run each seed's chain that has not completed (unless --summarise-only),
    show each seed (its `shown` metrics, or its table), then the seeds' mean ± sd of the `shown` metrics, the chain's verdict on the means (as the lab's Findings
    page does) and the chain CPU per seed; OUT/summary.json {seeds, means, spread, verdict_of_means,
    chain_cpu_min}; last line `headline=<value>` (nan without a seed, exit 1).

    value: the headline's metric name in the means, or a function of the means. comparison_of(run_dir, chain):
    the seed's comparison or None (skipped). parser: seed_parser(...) with the script's own options. order(args):
    the seeds in running order. before_run(args, seed, run_dir): before a seed's run. extra_of(run_dir): more
    fields of the seed's entry. after_means(summary): more lines after the means."""
    args = parser.parse_args(argv)
    per_seed = {}
    for seed in (order(args) if order else args.seeds):
        run_dir = args.out / f"seed-{seed}"
        if not args.summarise_only and not chain_completed(run_dir):
            if before_run:
                before_run(args, seed, run_dir)
            process = run_chain_seed(chain.name, seed, run_dir, quick=args.quick, sets=getattr(args, "sets", ()),
                                     log_name=log_name)
            print(f"seed {seed}: exit {process['exit']}, {_cost(process)}", flush=True)
        comparison = comparison_of(run_dir, chain)
        if comparison is None:
            print(f"seed {seed}: no completed chain in {run_dir} (see its chain.json and {log_name})")
            continue
        process_path = run_dir / "process.json"
        process = json.loads(process_path.read_text()) if process_path.is_file() else {}
        extra = extra_of(run_dir) if extra_of else {}
        per_seed[seed] = {"metrics": comparison["metrics"], "verdict": comparison["verdict"], "process": process,
                          **extra}
        show_seed(seed, comparison, process, shown, table)
        if any(extra.values()):
            print("  " + ", ".join(f"{k} {v}" for k, v in extra.items() if v))
    if not per_seed:
        print(f"{headline}=nan")
        return 1
    names = sorted({name for entry in per_seed.values() for name in entry["metrics"]})
    spreads = {name: spread([entry["metrics"].get(name) for entry in per_seed.values()]) for name in names}
    means = {name: s and s["mean"] for name, s in spreads.items()}
    verdict = chain.verdict(means)
    cpu = [entry["process"]["cpu_s"] / 60 for entry in per_seed.values() if entry["process"].get("cpu_s") is not None]
    summary = {"seeds": per_seed, "means": means,
               "spread": {name: {"sd": s and s["sd"], "n": s["n"] if s else 0} for name, s in spreads.items()},
               "verdict_of_means": verdict, "chain_cpu_min": cpu}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{len(per_seed)} seed(s) {sorted(per_seed)}: mean ± sd")
    for name in shown:
        entry = summary["spread"].get(name, {"sd": None, "n": 0})
        print(f"  {name} = {show(means.get(name))} ± {show(entry['sd'])} (n={entry['n']})")
    if after_means:
        after_means(summary)
    print(f"verdict of the means: {verdict['outcome']} — {'; '.join(verdict['reasons'])}")
    if cpu:
        print(f"chain CPU-min per seed: {', '.join(f'{c:.1f}' for c in cpu)}")
    result = value(means) if callable(value) else means.get(value)
    print(f"{headline}={'nan' if result is None else f'{result:.{digits}f}'}")
    return 0
