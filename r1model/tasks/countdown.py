"""Countdown: reach a target from given numbers with + - * / (the TinyZero task).

The checker parses the expression with a small recursive-descent parser and evaluates it with exact
fractions; it never calls eval. Each given number must be used exactly once (knob `use_all`).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

from r1model.tasks.base import Task
from r1model.tasks.problem import CheckResult, Problem

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_OP_ALIASES = {"×": "*", "x": "*", "X": "*", "·": "*", "÷": "/", "−": "-", "–": "-"}
MAX_EXPRESSION_CHARS = 300
MAX_DEPTH = 50


class ExpressionError(ValueError):
    """The text is not an arithmetic expression of numbers, + - * / and parentheses."""


@dataclass
class _Node:
    value: Fraction
    text: str
    op: str | None = None  # None for a plain number


def tokenize(text: str) -> list[str]:
    tokens, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch.isdigit():
            j = i
            while j < len(text) and text[j].isdigit():
                j += 1
            if j < len(text) and text[j] == ".":
                raise ExpressionError(f"decimal numbers are not allowed (at {text[i:j + 2]!r})")
            tokens.append(text[i:j])
            i = j
        elif ch in "+-*/()":
            tokens.append(ch)
            i += 1
        elif ch in _OP_ALIASES:
            tokens.append(_OP_ALIASES[ch])
            i += 1
        else:
            raise ExpressionError(f"unexpected character {ch!r} at position {i}")
    return tokens


class _Parser:
    """expr := term (('+'|'-') term)* ; term := factor (('*'|'/') factor)* ; factor := INT | '(' expr ')'"""

    def __init__(self, tokens: list[str]):
        self.tokens, self.pos, self.numbers = tokens, 0, []

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ExpressionError("expression ends too early")
        self.pos += 1
        return token

    def expr(self, depth: int) -> Fraction:
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            value = value + self.term(depth) if self.take() == "+" else value - self.term(depth)
        return value

    def term(self, depth: int) -> Fraction:
        value = self.factor(depth)
        while self.peek() in ("*", "/"):
            op = self.take()
            right = self.factor(depth)
            if op == "*":
                value *= right
            elif right == 0:
                raise ZeroDivisionError("division by zero")
            else:
                value /= right
        return value

    def factor(self, depth: int) -> Fraction:
        if depth > MAX_DEPTH:
            raise ExpressionError("parentheses nested too deeply")
        token = self.take()
        if token == "(":
            value = self.expr(depth + 1)
            if self.take() != ")":
                raise ExpressionError("missing ')'")
            return value
        if token.isdigit():
            self.numbers.append(int(token))
            return Fraction(int(token))
        raise ExpressionError(f"expected a number or '(' but found {token!r}")


def evaluate_expression(text: str) -> tuple[Fraction, list[int]]:
    """The exact value of an expression and the numbers it uses, in order. Raises ExpressionError
    (not an expression) or ZeroDivisionError."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    tokens = tokenize(text)
    if not tokens:
        raise ExpressionError("empty expression")
    parser = _Parser(tokens)
    value = parser.expr(0)
    if parser.peek() is not None:
        raise ExpressionError(f"unexpected {parser.peek()!r} after the expression")
    return value, parser.numbers


def _combine(left: _Node, op: str, right: _Node) -> _Node:
    def wrap(node: _Node, is_right: bool) -> str:
        if node.op is None:
            return node.text
        weaker = _PRECEDENCE[node.op] < _PRECEDENCE[op]
        same_but_order_matters = is_right and _PRECEDENCE[node.op] == _PRECEDENCE[op] and op in "-/"
        return f"({node.text})" if weaker or same_but_order_matters else node.text

    value = {"+": left.value + right.value, "-": left.value - right.value,
             "*": left.value * right.value, "/": left.value / right.value if right.value else None}[op]
    return _Node(value, f"{wrap(left, False)}{op}{wrap(right, True)}", op)


class CountdownTask(Task):
    """Numbers count numbers in 1..max_number, target reachable by construction (<= max_target)."""

    name = "countdown"
    description = "reach a target from given numbers with + - * / (each once)"
    difficulty = {"count": 4, "max_number": 99, "max_target": 1000, "use_all": True}
    difficulty_help = {"count": "how many numbers are given", "max_number": "largest given number",
                       "max_target": "largest target", "use_all": "every number must be used exactly once"}

    def key(self, problem):
        return f"{sorted(problem.meta['numbers'])}->{problem.meta['target']}"

    def make(self, rng, count, max_number, max_target, use_all):
        if count < 2:
            raise ValueError(f"count must be >= 2, not {count}")
        while True:
            numbers = [rng.randint(1, max_number) for _ in range(count)]
            nodes = [_Node(Fraction(n), str(n)) for n in numbers]
            steps = []
            while len(nodes) > 1:
                i, j = rng.sample(range(len(nodes)), 2)
                left, right = nodes[i], nodes[j]
                ops = ["+", "*"]
                if left.value > right.value:
                    ops.append("-")
                if right.value > 1 and left.value % right.value == 0:
                    ops.append("/")
                op = rng.choice(ops)
                combined = _combine(left, op, right)
                steps.append(f"{left.value}{op}{right.value}={combined.value}")
                nodes = [node for k, node in enumerate(nodes) if k not in (i, j)] + [combined]
            target = nodes[0].value
            if target.denominator == 1 and 1 <= target <= max_target:
                break
        shown = ", ".join(map(str, numbers))
        return Problem(
            id="",
            problem=f"Make {target} from {shown} using + - * / and each number once",
            answer=nodes[0].text,
            solution="\n".join(steps),
            meta={"numbers": numbers, "target": int(target), "use_all": use_all},
        )

    def worked_solution(self, problem):
        if problem.solution:
            return problem.solution
        return f"{problem.answer}={problem.meta['target']}"

    def check_answer(self, answer, problem):
        answer = answer.strip()
        numbers, target = problem.meta["numbers"], problem.meta["target"]
        expression = answer
        if "=" in answer:  # '3*50-25 = 125' is fine when the right side is the target
            expression, _, right = answer.partition("=")
            if right.strip() and right.strip() != str(target):
                return CheckResult("wrong", f"claims {right.strip()} but the target is {target}", answer)
        try:
            value, used = evaluate_expression(expression)
        except ExpressionError as exc:
            return CheckResult("unparseable", f"not an expression: {exc}", answer)
        except ZeroDivisionError:
            return CheckResult("wrong", "division by zero", answer)
        available = Counter(numbers)
        extra = Counter(used) - available
        if extra:
            return CheckResult("wrong", f"uses {sorted(extra.elements())} beyond the given numbers", answer)
        if problem.meta.get("use_all", True) and Counter(used) != available:
            missing = sorted((available - Counter(used)).elements())
            return CheckResult("wrong", f"does not use {missing}", answer)
        if value != target:
            return CheckResult("wrong", f"evaluates to {value}, not {target}", answer)
        return CheckResult("correct", "", answer)


