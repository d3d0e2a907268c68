"""Built-in reasoning tasks: seeded generators with exact checkers and worked solutions.

    from r1model.tasks import get_task, TASKS, Problem, CheckResult
    task = get_task("addition")
    problems = task.generate("train", 100, seed=0, digits=6)
    task.check("<think></think><answer>579</answer>", problems[0])  -> CheckResult

Standard library only (the web lab imports it).
"""
from r1model.tasks.arithmetic import AdditionTask, MultiplicationTask
from r1model.tasks.base import Task
from r1model.tasks.code import CodeTask
from r1model.tasks.countdown import CountdownTask
from r1model.tasks.linear_equation import LinearEquationTask
from r1model.tasks.problem import CHECK_STATUSES, CheckResult, Problem

TASKS: dict[str, Task] = {
    task.name: task
    for task in (AdditionTask(), MultiplicationTask(), CountdownTask(), LinearEquationTask(), CodeTask())
}


def get_task(name: str) -> Task:
    """The task called name; KeyError lists the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}") from None


__all__ = ["CHECK_STATUSES", "TASKS", "CheckResult", "Problem", "Task", "get_task"]
