"""Sandbox cost: programs per second through the pool, and time per run vs a bare subprocess.

Peer, measured in the same run: the same interpreter started as a bare `subprocess.run` with the
same flags (-I -S -B) and the same program, no isolation at all.

    .venv/bin/python bench/sandbox_throughput.py [--runs 200] [--workers 2]

Last line: sandbox_time_per_run_ratio=<sandboxed seconds per run / bare seconds per run>.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from r1model.sandbox import StdioSubmission, judge_many, run_python, sandbox_available  # noqa: E402
from r1model.sandbox.interpreter import find_interpreter  # noqa: E402

PROGRAM = "import sys\nn = int(sys.stdin.read())\nprint(sum(i * i for i in range(n)))\n"
STDIN = "1000\n"
EXPECTED = str(sum(i * i for i in range(1000)))


def bare_run(exe: str) -> float:
    start = time.perf_counter()
    out = subprocess.run([exe, "-I", "-S", "-B", "-c", PROGRAM], input=STDIN.encode(),
                         capture_output=True, env={"PATH": "/usr/bin:/bin"}, check=True).stdout
    assert out.decode().strip() == EXPECTED
    return time.perf_counter() - start


def sandbox_run() -> float:
    start = time.perf_counter()
    result = run_python({"main.py": PROGRAM}, stdin=STDIN.encode())
    assert result.exit_code == 0 and result.stdout.decode().strip() == EXPECTED, result
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs per measurement")
    parser.add_argument("--workers", type=int, default=2, help="pool size for the throughput figure")
    args = parser.parse_args()
    if not sandbox_available():
        sys.exit("bubblewrap does not work here: nothing to measure")
    exe = find_interpreter().executable
    for _ in range(5):  # warm caches (page cache, interpreter probe)
        bare_run(exe), sandbox_run()

    # Interleave the two so background load hits both alike.
    bare, boxed = [], []
    for _ in range(args.runs):
        bare.append(bare_run(exe))
        boxed.append(sandbox_run())
    bare_s, boxed_s = statistics.median(bare), statistics.median(boxed)

    subs = [StdioSubmission(PROGRAM, [(STDIN, EXPECTED)]) for _ in range(args.runs)]
    start = time.perf_counter()
    verdicts = judge_many(subs, workers=args.workers)
    pool_s = time.perf_counter() - start
    assert all(v.passed for v in verdicts)
    start = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(lambda _: bare_run(exe), range(args.runs)))
    bare_pool_s = time.perf_counter() - start

    print(f"runs={args.runs} workers={args.workers} cpus={os.cpu_count()} interpreter={exe}")
    print(f"bare_subprocess_ms_per_run={bare_s * 1e3:.1f}")
    print(f"sandbox_ms_per_run={boxed_s * 1e3:.1f}")
    print(f"sandbox_overhead_ms_per_run={(boxed_s - bare_s) * 1e3:.1f}")
    print(f"bare_subprocess_programs_per_s={args.runs / bare_pool_s:.1f}")
    print(f"sandbox_judged_programs_per_s={args.runs / pool_s:.1f}")
    print(f"sandbox_throughput_ratio={(args.runs / pool_s) / (args.runs / bare_pool_s):.2f}")
    print(f"sandbox_time_per_run_ratio={boxed_s / bare_s:.2f}")


if __name__ == "__main__":
    main()
