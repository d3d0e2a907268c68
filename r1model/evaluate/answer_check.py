"""Answer checking: take the final answer out of a completion and judge it against the gold answer.

    extract_answer(text) -> str | None          # the answer-extraction policy below
    check_answer(prediction_text, gold, mode="auto", timeout=5.0) -> CheckResult

How answers are scored (the one policy of r1model: the accuracy reward of GRPO, the in-run held-out
evaluation, `python -m r1model evaluate` and `python -m r1model score` all judge a completion through
`r1model.evaluate.score.judge_completions`, which applies it):

1. The answer is the content of the last complete `<answer>…</answer>` (a `\\boxed{…}` inside it is
   unwrapped); when the completion has no `<answer>` pair, the content of its last complete `\\boxed{…}`
   (DeepSeek-R1 report §2.2.2: the model must give its final answer "in a specified format (e.g., within a
   box)" so that rules can verify it). Nothing else is an answer: a bare final number or free text is
   `unparseable`, never credited.
2. A completion cut off at the token limit has no answer (`unparseable`, reason "truncated"), whatever it
   contains, unless the run sets `truncated_is_wrong: false` (RunConfig).
3. The answer is judged by the problem's checker: a built-in task's exact checker, the code judge in the
   sandbox, or `check_answer` in the problem's check mode (imported data).

Modes: `math` (math-verify: LaTeX and plain, sets, intervals, fractions vs decimals), `numeric`
(numbers with a relative tolerance), `exact` (whitespace-normalised string), `choice` (a letter A–J),
`auto` (choice when the gold is one letter, numeric when it is a number, math otherwise). Code answers
are judged by the code task (`r1model.tasks.code.check_code`).

Every check ends in correct / wrong / unparseable (the prediction gave nothing judgeable) or error (the
gold answer itself cannot be parsed: skip it, never score it). Math checks run in a helper process with
a hard deadline, so a pathological answer cannot hang the caller, from any thread.

`check_answer(..., fallback=True)` also reads free text (a stated final number, math-verify's search):
that is for checking a dataset's own worked gold solutions, never for scoring a model.

Standard library only here; math-verify is loaded by the helper process.
"""
from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path

from r1model.tasks.problem import CheckResult

MODES = ("auto", "math", "numeric", "exact", "choice")
MAX_ANSWER_CHARS = 2000  # longer "answers" are not answers; refusing them bounds the work per check

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def find_last_boxed(text: str) -> str | None:
    """The content of the last complete `\\boxed{…}` (or `\\fbox{…}`), nested braces included."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*", text)]
    for start in reversed(starts):
        if start < len(text) and text[start] == "{":
            depth = 0
            for i in range(start, len(text)):
                if text[i] == "{":
                    depth += 1
                elif text[i] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[start + 1 : i].strip()
        else:  # `\boxed 5`
            match = re.match(r"([^\s$]+)", text[start:])
            if match:
                return match.group(1)
    return None


def extract_answer(text: str | None) -> str | None:
    """The final answer in a completion: the content of the last `<answer>…</answer>` (unwrapping a
    `\\boxed{}` inside it), else the content of the last `\\boxed{…}`; None when there is neither."""
    if not text:
        return None
    answers = _ANSWER_TAG.findall(text)
    if answers:
        answer = answers[-1].strip()
        boxed = find_last_boxed(answer)
        return boxed if boxed is not None else answer
    return find_last_boxed(text)


# --- numbers and letters -----------------------------------------------------------------------------
_NUM = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][+-]?\d+)?|[+-]?\.\d+"
_LAST_NUMBER = re.compile(rf"(?<![\w.])({_NUM})")


def to_number(text: str) -> Fraction | None:
    """An exact value from '1,234', '-2.5', '3/4', '\\frac{3}{4}', '50\\%', '$18', '1e3', '\\textbf{(073)}';
    else None."""
    s = text.strip().strip("$").strip()
    s = re.sub(r"\\(?:textbf|mathbf|mathrm|text)\{\s*(\(?\s*[-+\d.,]+\s*\)?)\s*\}", r"\1", s)  # \textbf{(073)}
    s = re.sub(r"\\text\{[^{}]*\}|\\(?:,|!|;|\s)|\\left|\\right|\\\$|\$", "", s).strip().rstrip(".").strip()
    s = re.sub(r"^\(\s*([-+]?\d+(?:\.\d+)?)\s*\)$", r"\1", s)  # (073); never (1,234), which may be a point
    s = s.replace("\u2212", "-").replace(" ", "")
    s = re.sub(r"^[a-zA-Z]\w*=", "", s)  # x=5
    frac = re.fullmatch(r"([+-]?)\\[dt]?frac\{?([+-]?[\d.]+)\}?\{?([+-]?[\d.]+)\}?", s)
    if frac:
        s = f"{frac.group(1)}{frac.group(2)}/{frac.group(3)}"
    percent = s.endswith("%") or s.endswith("\\%")
    s = s.removesuffix("\\%").removesuffix("%")
    parts = s.split("/")
    if len(parts) > 2 or not all(re.fullmatch(_NUM, p) for p in parts):
        return None
    try:
        value = Fraction(parts[0].replace(",", ""))
        if len(parts) == 2:
            value /= Fraction(parts[1].replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None
    return value / 100 if percent else value


def last_number(text: str) -> str | None:
    """The last number written in a text."""
    numbers = _LAST_NUMBER.findall(text.replace("\u2212", "-"))
    return numbers[-1] if numbers else None


_CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K's calculator annotations: 9*2=<<9*2=18>>18
_STATED = re.compile(rf"(?:answer is|answer:|####)\s*\$?\s*({_NUM})", re.IGNORECASE)
_GROUPED = re.compile(rf"(\d{{1,3}}(?: \d{{3}})+(?!\d)|{_NUM})")  # also "118 000"


def final_number(text: str) -> str | None:
    """The final numeric answer of a free-text solution with no marked answer, in order of trust:
    a stated answer ('the answer is 18', '#### 18'), the result of the last equation on the last line
    ('... = 15 liters out of 24', '= in 8 more weeks'), the first number of a last line without an
    equation ('It takes 15 hours to clean 45 rooms.'), the last number in the text."""
    text = _CALCULATOR.sub("", text.replace("\u2212", "-"))
    stated = _STATED.findall(text)
    if stated:
        return stated[-1]
    lines = [line for line in text.splitlines() if line.strip()]
    if lines:
        last = lines[-1]
        after_equals = last[last.rfind("=") + 1 :] if "=" in last else last
        first = _GROUPED.search(after_equals)
        if first:
            return first.group(1).replace(" ", "")
    return last_number(text)


def numbers_match(pred: Fraction, gold: Fraction, rel_tol: float = 1e-6) -> bool:
    return pred == gold or abs(pred - gold) <= rel_tol * max(abs(gold), 1)


_CHOICE = re.compile(r"^\(?\s*([A-J])\s*\)?[.):]?(?:\s|$)")


def to_choice(text: str) -> str | None:
    """The option letter in 'B', '(B)', 'B)', 'B. 42', '\\text{(B)}'; None otherwise."""
    s = re.sub(r"\\text(?:bf)?\{([^{}]*)\}", r"\1", text.strip()).strip().strip("$").strip()
    match = _CHOICE.match(s)
    return match.group(1) if match else None


def normalise_text(text: str) -> str:
    return " ".join(text.split()).strip().rstrip(".").lower()


# --- the checks ----------------------------------------------------------------------------------------
def detect_mode(gold: str) -> str:
    """auto → choice (one letter), numeric (a number), else math."""
    if re.fullmatch(r"\(?[A-J]\)?", gold.strip()):
        return "choice"
    if to_number(gold) is not None:
        return "numeric"
    return "math"


def check_answer(prediction_text: str | None, gold: str, mode: str = "auto", timeout: float = 5.0,
                 fallback: bool = False) -> CheckResult:
    """Judge a completion against the gold answer.

    The answer is the `<answer>` content or the last `\\boxed{}` (the module's policy); a completion with
    neither is unparseable. With `fallback=True` (only for checking a dataset's free-text gold solutions)
    it is still judged: its final number (numeric, see final_number), math-verify's own search of the
    text (math) or the whole text (exact, choice).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    gold = "" if gold is None else str(gold).strip()
    if not gold:
        return CheckResult("error", "gold answer is empty", None)
    text = prediction_text or ""
    extracted = extract_answer(text)
    if extracted is None and not fallback:
        return CheckResult("unparseable", "no <answer> or \\boxed{} in the completion", None)
    if extracted is not None and len(extracted) > MAX_ANSWER_CHARS:
        return CheckResult("unparseable", f"answer longer than {MAX_ANSWER_CHARS} characters", None)
    if mode == "auto":
        mode = detect_mode(gold)
        if mode == "numeric" and extracted is not None and to_number(extracted) is None:
            mode = "math"  # '\sqrt{4}' vs '2': let math-verify decide
    if mode == "numeric":
        return _check_numeric(text, extracted, gold)
    if mode == "choice":
        return _check_choice(text, extracted, gold)
    if mode == "exact":
        candidate = extracted if extracted is not None else text
        if not candidate.strip():
            return CheckResult("unparseable", "empty answer", candidate)
        ok = normalise_text(candidate) == normalise_text(gold)
        return CheckResult("correct" if ok else "wrong", "" if ok else "strings differ", candidate)
    if extracted is None:
        text = text[-MAX_ANSWER_CHARS * 4 :]  # math-verify searches the end of the text for the answer
    return MATH_CHECKER.check(extracted if extracted is not None else text, gold, extracted is not None, timeout)


def _check_numeric(text: str, extracted: str | None, gold: str) -> CheckResult:
    gold_value = to_number(gold)
    if gold_value is None:
        return CheckResult("error", f"gold answer {gold[:60]!r} is not a number", None)
    candidate = extracted if extracted is not None else final_number(text)
    if candidate is None:
        return CheckResult("unparseable", "no number in the completion", None)
    value = to_number(candidate)
    if value is None:
        return CheckResult("unparseable", f"{candidate[:60]!r} is not a number", candidate)
    if numbers_match(value, gold_value):
        return CheckResult("correct", "", candidate)
    return CheckResult("wrong", f"{candidate[:60]} != {gold[:60]}", candidate)


def _check_choice(text: str, extracted: str | None, gold: str) -> CheckResult:
    gold_letter = to_choice(gold)
    if gold_letter is None:
        return CheckResult("error", f"gold answer {gold[:60]!r} is not an option letter", None)
    letter = to_choice(extracted) if extracted is not None else None
    if letter is None and extracted is None:
        found = re.findall(r"answer is:?\s*\(?([A-J])\b", text) or re.findall(r"\(([A-J])\)", text)
        letter = found[-1] if found else None
    if letter is None:
        return CheckResult("unparseable", "no option letter in the answer", extracted)
    if letter == gold_letter:
        return CheckResult("correct", "", letter)
    return CheckResult("wrong", f"{letter} != {gold_letter}", letter)


class MathChecker:
    """math-verify in a helper process (`math_worker.py`), with a deadline per check and a cache.

    Thread-safe (one check at a time through a lock). On a deadline the helper is killed and a fresh
    one starts with the next check; the check reports `unparseable: answer check timed out`."""

    START_TIMEOUT = 120.0  # importing sympy on a loaded 2-core machine can take a while
    GRACE = 2.0  # seconds past the soft timeout before the hard kill

    def __init__(self, cache_size: int = 4096):
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._buffer = b""
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size
        self.restarts = 0

    def check(self, pred: str, gold: str, pred_is_extracted: bool, timeout: float = 5.0) -> CheckResult:
        key = (pred, gold, pred_is_extracted)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            reply = self._ask({"pred": pred, "gold": gold, "pred_is_extracted": pred_is_extracted,
                               "timeout": timeout}, timeout + self.GRACE)
            if reply is None:
                return CheckResult("unparseable", f"answer check timed out after {timeout:g} s",
                                   pred if pred_is_extracted else None)
            if "crashed" in reply:  # our helper died (killed, out of memory): not the answer's fault
                return CheckResult("error", f"math-verify helper crashed ({reply['crashed']})", None)
            extracted = pred if pred_is_extracted else reply.get("extracted")
            result = CheckResult(reply["status"], reply.get("reason", ""), extracted)
            self._cache[key] = result
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return result

    def close(self) -> None:
        with self._lock:
            self._kill()

    # --- the helper process ---
    def _start(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        self._proc = subprocess.Popen([sys.executable, "-m", "r1model.evaluate.math_worker"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, env=env)
        self._buffer = b""
        if self._read_line(self.START_TIMEOUT) is None:
            self._kill()
            raise RuntimeError("the math-verify helper process did not start (is math-verify installed?)")

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def _ask(self, request: dict, deadline_s: float) -> dict | None:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        try:
            self._proc.stdin.write((json.dumps(request) + "\n").encode())
            self._proc.stdin.flush()
        except BrokenPipeError:
            code = self._proc.poll()
            self._kill()
            return {"crashed": f"exit code {code}"}
        line = self._read_line(deadline_s)
        if line is None:
            code = self._proc.poll()
            self._kill()
            self.restarts += 1
            return {"crashed": f"exit code {code}"} if code is not None else None
        return json.loads(line)

    def _read_line(self, deadline_s: float) -> bytes | None:
        end = time.monotonic() + deadline_s
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = end - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


    def _forget_after_fork(self) -> None:
        """In a forked child the helper belongs to the parent: leave it alone and start our own."""
        self._lock = threading.Lock()
        self._proc = None
        self._buffer = b""


MATH_CHECKER = MathChecker()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: MATH_CHECKER._forget_after_fork())
