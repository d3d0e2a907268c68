"""Linear equations in one unknown with an integer solution: 'Solve for x: 3x+5=20'."""
from __future__ import annotations

from r1model.tasks.base import Task, check_exact, parse_number
from r1model.tasks.problem import Problem


def _side(coef: int, const: int) -> str:
    """'3x+5', '-x', '7', '2x-4' (a zero coefficient drops the x term)."""
    if coef == 0:
        return str(const)
    x = {1: "x", -1: "-x"}.get(coef, f"{coef}x")
    if const == 0:
        return x
    return f"{x}{'+' if const > 0 else '-'}{abs(const)}"


class LinearEquationTask(Task):
    """a*x + b = c*x + d with integer solution |x| <= max_solution; c = 0 unless both_sides."""

    name = "linear_equation"
    description = "solve a linear equation in x with an integer solution"
    difficulty = {"max_coef": 9, "max_solution": 20, "max_const": 50, "both_sides": False}
    difficulty_help = {"max_coef": "largest |coefficient| of x", "max_solution": "largest |x|",
                       "max_const": "largest |constant| on the left", "both_sides": "x appears on both sides"}

    def make(self, rng, max_coef, max_solution, max_const, both_sides):
        while True:
            x = rng.randint(-max_solution, max_solution)
            a = rng.choice([k for k in range(-max_coef, max_coef + 1) if k])
            c = rng.randint(-max_coef, max_coef) if both_sides else 0
            if a == c:
                continue
            b = rng.randint(-max_const, max_const)
            d = (a - c) * x + b  # so that a*x + b = c*x + d
            break
        return Problem(id="", problem=f"Solve for x: {_side(a, b)}={_side(c, d)}", answer=str(x),
                       meta={"a": a, "b": b, "c": c, "d": d})

    def worked_solution(self, problem):
        a, b, c, d = (problem.meta[k] for k in "abcd")
        k, rhs = a - c, d - b
        lines = [f"{_side(a, b)}={_side(c, d)}"]
        if c:
            move_x = f"-{_side(c, 0)}" if c > 0 else f"+{_side(-c, 0)}"
            lines.append(f"{_side(a, 0)}{move_x}={d}-{b}".replace("--", "+"))
        elif b:
            lines.append(f"{_side(a, 0)}={d}-{b}".replace("--", "+"))
        lines.append(f"{_side(k, 0)}={rhs}")
        if abs(k) != 1:
            lines.append(f"x={rhs}/{k}" if k > 0 else f"x={-rhs}/{-k}")  # keep the divisor positive
        lines.append(f"x={rhs // k}")
        return "\n".join(lines)

    def check_answer(self, answer, problem):
        return check_exact(answer.strip(), problem, parse_number, "a number")
