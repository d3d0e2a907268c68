"""A child process that runs math-verify, so that no input can hang the caller.

math-verify's own timeout uses signal.alarm, which works only in the main thread and cannot interrupt
C code: `verify(5, 9^{9^{9^9}})` spends forever inside CPython's big-integer power. Here the parent
talks to this process over pipes (one JSON object a line each way), waits with a deadline and kills it
when the deadline passes. Inside, a soft timer (setitimer) stops slow pure-Python work without a
restart. Run as `python -m r1model.evaluate.math_worker`.
"""
from __future__ import annotations

import json
import signal
import sys


class SoftTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise SoftTimeout()


def parse_math(text: str, boxed: bool):
    """math-verify's parse of an extracted answer (as if boxed) or of a whole completion."""
    from math_verify import parse

    if boxed:
        parsed = parse("\\boxed{" + text + "}", parsing_timeout=None)
        return parsed or parse(text, parsing_timeout=None)
    return parse(text, parsing_timeout=None)


def judge(request: dict) -> dict:
    """{'gold', 'pred', 'pred_is_extracted', 'timeout'} -> {'status', 'reason', 'extracted'}."""
    from math_verify import verify

    signal.setitimer(signal.ITIMER_REAL, max(0.05, float(request.get("timeout") or 5.0)))
    try:
        gold = parse_math(request["gold"], boxed=True)
        if not gold:
            return {"status": "error", "reason": "gold answer could not be parsed by math-verify"}
        pred = parse_math(request["pred"], boxed=request.get("pred_is_extracted", True))
        if not pred:
            return {"status": "unparseable", "reason": "math-verify could not parse the answer"}
        extracted = str(pred[-1]) if isinstance(pred[-1], str) else str(pred[-1])
        if verify(gold, pred, timeout_seconds=None):
            return {"status": "correct", "reason": "", "extracted": extracted}
        return {"status": "wrong", "reason": f"{pred[0]} is not equivalent to {gold[0]}"[:300],
                "extracted": extracted}
    except SoftTimeout:
        return {"status": "unparseable", "reason": "answer check timed out"}
    except Exception as exc:  # a parser bug on odd input is the input's problem, not ours
        return {"status": "unparseable", "reason": f"math-verify failed: {type(exc).__name__}"}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def main() -> None:
    import logging

    logging.disable(logging.WARNING)  # math-verify warns that its own timeout is off; ours is on
    signal.signal(signal.SIGALRM, _on_alarm)
    import math_verify  # noqa: F401  (load before announcing readiness)

    sys.stdout.write('{"ready": true}\n')
    sys.stdout.flush()
    for line in sys.stdin:
        reply = judge(json.loads(line))
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
