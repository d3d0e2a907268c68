"""Answer checks per second on the 500 MATH-500 gold solutions (each solution judged against its gold
answer), and the slowest case. Peer, in the same run: math-verify called directly in this process
(parse the solution, parse the gold, verify) — what our check does minus its isolation and fast paths.
Both are warmed on the first 20 rows; our result cache is cleared before timing.

Last line: answer_checks_per_s=<value>
"""
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from r1model.evaluate.answer_check import MathChecker, check_answer  # noqa: E402
import r1model.evaluate.answer_check as answer_check  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "r1model" / "evaluate" / "data" / "math500.jsonl"


def ours(rows):
    answer_check.MATH_CHECKER = MathChecker()
    for row in rows[:20]:  # start the helper process and warm its parser outside the timing
        check_answer(row["solution"], row["answer"], mode="math")
    answer_check.MATH_CHECKER._cache.clear()  # a cold cache: every timed check is real work
    times, correct = [], 0
    for row in rows:
        start = time.perf_counter()
        correct += check_answer(row["solution"], row["answer"], mode="math").correct
        times.append((time.perf_counter() - start, row["id"]))
    return times, correct


def peer(rows):
    import logging

    from math_verify import parse, verify

    logging.disable(logging.WARNING)
    for row in rows[:20]:  # the same warm-up as ours
        verify(parse("\\boxed{" + row["answer"] + "}"), parse(row["solution"]))
    times, correct = [], 0
    for row in rows:
        start = time.perf_counter()
        correct += bool(verify(parse("\\boxed{" + row["answer"] + "}"), parse(row["solution"])))
        times.append((time.perf_counter() - start, row["id"]))
    return times, correct


def main():
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    ours_times, ours_correct = ours(rows)
    peer_times, peer_correct = peer(rows)
    ours_rate = len(rows) / sum(t for t, _ in ours_times)
    peer_rate = len(rows) / sum(t for t, _ in peer_times)
    slow_t, slow_id = max(ours_times)
    peer_slow_t, peer_slow_id = max(peer_times)
    print(f"ours : {ours_rate:.1f} checks/s, {ours_correct}/{len(rows)} correct, slowest {slow_id} {slow_t * 1000:.0f} ms")
    print(f"peer : {peer_rate:.1f} checks/s, {peer_correct}/{len(rows)} correct, slowest {peer_slow_id} "
          f"{peer_slow_t * 1000:.0f} ms (math-verify in-process)")
    print(f"ratio ours/peer: {ours_rate / peer_rate:.2f}")
    print(f"answer_checks_per_s={ours_rate:.1f}")


if __name__ == "__main__":
    main()
