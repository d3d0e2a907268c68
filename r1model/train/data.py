"""Where a run's problems and training texts come from, as pure functions of (seed, step).

The data cursor is the step number: the batch of step s is built from a seed derived from (run seed, s),
so a resumed run sees exactly the batches the uninterrupted run saw, with nothing to replay.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from r1model.tasks import Problem, get_task
from r1model.tasks.base import stable_hash
from r1model.tasks.corpus import pretrain_examples
from r1model.template import format_completion
from r1model.train.config import DatasetSpec, RunConfig

EVAL_SEED = 0  # held-out problems are the same for every run seed, so seeds compare on one set
PROBE_SEED = 7919  # a base's probe problems: the test split, other draws than the held-out set's
HELDOUT_SHARE = 0.2  # a dataset file's held-out tail is at most this share of its problems: training keeps most


def heldout_count(rows: int, eval_size: int) -> int:
    """How many of a file's `rows` problems are held out for evaluation: eval_size, capped at HELDOUT_SHARE
    of the file but at least one (0 when eval_size is 0 or the file has no problems). Training keeps the rest,
    so the two never share a row."""
    if eval_size == 0 or rows == 0:
        return 0
    return max(1, min(eval_size, int(rows * HELDOUT_SHARE)))


def step_seed(seed: int, step: int, purpose: str) -> int:
    """A 63-bit seed for one purpose at one step (independent streams for data, sampling, shuffling)."""
    return stable_hash(f"{purpose}|{seed}|{step}") >> 1


@dataclass
class _FileSource:
    problems: list[Problem]
    pairs: list[tuple[str, str]]  # (prompt, completion) for SFT

    @classmethod
    def load(cls, path: str) -> "_FileSource":
        from r1model.tasks.dataset_io import load_dataset, rows_to_problems

        file = Path(path)
        if not file.exists():
            raise FileNotFoundError(f"dataset file not found: {path}")
        pairs: list[tuple[str, str]] = []
        if file.suffix == ".jsonl":
            with file.open(encoding="utf-8") as handle:
                first = handle.readline()
            try:
                head = json.loads(first) if first.strip() else {}
            except ValueError:
                head = {}
            if isinstance(head, dict) and "prompt" in head and "completion" in head:
                with file.open(encoding="utf-8") as handle:
                    for number, line in enumerate(handle, 1):
                        if not line.strip():
                            continue
                        try:
                            row = json.loads(line)
                            # a sampled row (rollout runs' accepted.jsonl) keeps the rendered prompt next to
                            # the problem: the template wraps the problem, never a prompt it already wrapped
                            user = row["problem"] if "problem" in row else row["prompt"]
                            pairs.append((str(user), str(row["completion"])))
                        except (ValueError, KeyError, TypeError) as exc:
                            raise ValueError(f"{path} line {number}: expected {{prompt, completion}}: {exc}") from None
                return cls([], pairs)
        return cls(rows_to_problems(load_dataset(path).rows), [])


class DataSource:
    """The run's datasets: training problems per GRPO step, corpus pairs per supervised step, held-out
    problems for evaluation."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.specs: list[DatasetSpec] = list(config.datasets)
        self._files: dict[int, _FileSource] = {}
        self._heldout: dict[int, int] = {}  # file dataset index → problems held out at the end of the file
        for index, spec in enumerate(self.specs):
            if spec.path is None:
                get_task(spec.task)  # unknown task names fail here, before any compute
                continue
            source = self._files[index] = _FileSource.load(spec.path)
            rows = len(source.problems)
            held = self._heldout[index] = heldout_count(rows, spec.eval_size)
            if held and held >= rows:
                raise ValueError(
                    f"dataset {spec.path} has {rows} problem row{'s' if rows != 1 else ''}: too few to split into "
                    f"training and held-out rows (eval_size {spec.eval_size}); add rows or set eval_size to 0"
                )

    def _pick(self, rng: random.Random, n: int) -> list[int]:
        weights = [spec.weight for spec in self.specs]
        return rng.choices(range(len(self.specs)), weights=weights, k=n)

    def _draw_problems(self, index: int, n: int, seed: int, split: str = "train") -> list[Problem]:
        spec = self.specs[index]
        if spec.path is None:
            return get_task(spec.task).generate(split, n, seed=seed, **spec.difficulty)
        problems = self._train_rows(index)
        if not problems:
            raise ValueError(f"dataset {spec.path} has no problem records (GRPO needs problem + answer)")
        rng = random.Random(seed)
        return [problems[rng.randrange(len(problems))] for _ in range(n)]

    def _train_rows(self, index: int) -> list[Problem]:
        """A file's problems less its held-out tail."""
        problems = self._files[index].problems
        return problems[: len(problems) - self._heldout[index]]

    def _heldout_rows(self, index: int) -> list[Problem]:
        problems = self._files[index].problems
        return problems[len(problems) - self._heldout[index]:]

    def split_sizes(self) -> list[dict]:
        """Per dataset: {"dataset" (the file path or task name), "train_size", "heldout_size"}. A task's
        training problems are generated without end: its train_size is None."""
        out = []
        for index, spec in enumerate(self.specs):
            if spec.path is None:
                out.append({"dataset": spec.task, "train_size": None, "heldout_size": spec.eval_size})
            else:
                source = self._files[index]
                train = len(self._train_rows(index)) if source.problems else len(source.pairs)
                out.append({"dataset": spec.path, "train_size": train, "heldout_size": self._heldout[index]})
        return out

    def split_message(self) -> str:
        """One line for the run's log: how each dataset splits into training and held-out problems."""
        parts = []
        for sizes in self.split_sizes():
            train = "generated" if sizes["train_size"] is None else sizes["train_size"]
            parts.append(f"{sizes['dataset']}: {train} training, {sizes['heldout_size']} held-out")
        return "data split: " + "; ".join(parts)

    def grpo_problems(self, step: int, n: int) -> list[Problem]:
        """The n prompts of GRPO step `step` (1-based)."""
        rng = random.Random(step_seed(self.config.seed, step, "grpo-data"))
        chosen = self._pick(rng, n)
        out: list[Problem] = []
        for index in sorted(set(chosen)):
            count = chosen.count(index)
            out.extend(self._draw_problems(index, count, step_seed(self.config.seed, step, f"grpo-{index}")))
        return out

    def supervised_pairs(self, step: int, n: int, worked_fraction: float, purpose: str = "pretrain") -> list[tuple[str, str]]:
        """n (problem text, completion) pairs of supervised step `step`: task corpora mix direct answers
        and worked solutions (worked_fraction); file datasets give their {prompt, completion} pairs or
        problems with their solutions."""
        rng = random.Random(step_seed(self.config.seed, step, f"{purpose}-data"))
        chosen = self._pick(rng, n)
        out: list[tuple[str, str]] = []
        for index in sorted(set(chosen)):
            count = chosen.count(index)
            seed = step_seed(self.config.seed, step, f"{purpose}-{index}") % (2**31)
            spec = self.specs[index]
            if spec.path is None:
                out.extend(pretrain_examples(spec.task, count, seed=seed, worked_fraction=worked_fraction, **spec.difficulty))
                continue
            source = self._files[index]
            pick = random.Random(seed)
            if source.pairs:
                out.extend(source.pairs[pick.randrange(len(source.pairs))] for _ in range(count))
            else:
                problems = self._train_rows(index)
                for _ in range(count):
                    problem = problems[pick.randrange(len(problems))]
                    worked = problem.solution if pick.random() < worked_fraction else ""
                    out.append((problem.problem, format_completion(worked, problem.answer)))
        rng.shuffle(out)
        return out

    def probe_problems(self, n: int, seed: int = PROBE_SEED) -> list[Problem]:
        """n problems of the first dataset to probe a base with (config.base.probe): a task's test split drawn
        with `seed`, not the held-out evaluation set's (all it has when that is fewer, e.g. 1-digit sums); a
        file's first n held-out rows."""
        spec = self.specs[0]
        if spec.path is None:
            return get_task(spec.task).generate("test", n, seed=seed, at_most=True, **spec.difficulty)
        return self._heldout_rows(0)[:n]

    def eval_problems(self) -> list[Problem]:
        """The held-out set ('heldout' benchmark): each dataset's test split, eval_size problems each."""
        out: list[Problem] = []
        for index, spec in enumerate(self.specs):
            if spec.eval_size == 0:
                continue
            if spec.path is None:
                out.extend(get_task(spec.task).generate("test", spec.eval_size, seed=EVAL_SEED, **spec.difficulty))
            else:
                out.extend(self._heldout_rows(index))
        return out
