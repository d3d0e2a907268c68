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
        for index, spec in enumerate(self.specs):
            if spec.path is not None:
                self._files[index] = _FileSource.load(spec.path)
            else:
                get_task(spec.task)  # unknown task names fail here, before any compute

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
        """A file's problems less its held-out tail (kept when the file is too small to spare it)."""
        problems = self._files[index].problems
        held = self.specs[index].eval_size
        return problems[:-held] if 0 < held < len(problems) else problems

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

    def eval_problems(self) -> list[Problem]:
        """The held-out set ('heldout' benchmark): each dataset's test split, eval_size problems each."""
        out: list[Problem] = []
        for index, spec in enumerate(self.specs):
            if spec.eval_size == 0:
                continue
            if spec.path is None:
                out.extend(get_task(spec.task).generate("test", spec.eval_size, seed=EVAL_SEED, **spec.difficulty))
            else:
                problems = self._files[index].problems
                out.extend(problems[-spec.eval_size:])
        return out
