"""The data cursor is the step: batches are pure functions of (seed, step); held-out problems stay out."""
import json

import pytest

from r1model.train.config import validate_run_config
from r1model.train.data import DataSource
from r1model.train.supervised import length_buckets


def _source(seed=0):
    return DataSource(validate_run_config({"seed": seed, "datasets": [{"task": "addition", "difficulty": {"digits": 4}, "eval_size": 50}]}))


def test_a_steps_batch_is_the_same_in_every_process_and_differs_between_steps():
    a, b = _source(), _source()
    assert [p.id for p in a.grpo_problems(7, 16)] == [p.id for p in b.grpo_problems(7, 16)]
    assert [p.id for p in a.grpo_problems(7, 16)] != [p.id for p in a.grpo_problems(8, 16)]
    assert [p.id for p in a.grpo_problems(7, 16)] != [p.id for p in _source(seed=1).grpo_problems(7, 16)]
    assert a.supervised_pairs(3, 8, 0.3) == b.supervised_pairs(3, 8, 0.3)


def test_held_out_problems_never_appear_in_training_batches():
    source = _source()
    held_out = {p.problem for p in source.eval_problems()}
    assert len(held_out) == 50
    seen = {p.problem for step in range(1, 40) for p in source.grpo_problems(step, 16)}
    seen |= {prompt for step in range(1, 10) for prompt, _ in source.supervised_pairs(step, 32, 0.3)}
    assert not held_out & seen


def test_length_buckets_keep_every_row_and_cut_padding():
    rows = [([1] * 10, [1] * 10)] * 12 + [([1] * 60, [1] * 60)] * 4
    buckets = length_buckets(rows)
    assert sorted(len(r[0]) for b in buckets for r in b) == sorted(len(r[0]) for r in rows)
    padded = sum(len(b) * max(len(r[0]) for r in b) for b in buckets)
    assert padded < 16 * 60 * 0.85
    assert len(length_buckets([([1] * 10, [1] * 10)] * 8)) == 1  # nothing to gain: one batch


def _file_source(tmp_path, rows: int, eval_size: int = 200) -> tuple[DataSource, str]:
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "problem": f"What is {i}+{i}?", "answer": str(2 * i)}) + "\n"
                            for i in range(rows)), encoding="utf-8")
    config = validate_run_config({"datasets": [{"task": None, "path": str(path), "eval_size": eval_size}]})
    return DataSource(config), str(path)


def test_a_small_dataset_file_splits_into_disjoint_non_empty_training_and_held_out_rows(tmp_path):
    source, path = _file_source(tmp_path, rows=10, eval_size=200)
    held_out = {p.id for p in source.eval_problems()}
    trained = {p.id for step in range(1, 30) for p in source.grpo_problems(step, 8)}
    trained |= {prompt for step in range(1, 10) for prompt, _ in source.supervised_pairs(step, 8, 0.5)}
    assert held_out and trained
    assert not held_out & trained
    assert not {p.problem for p in source.eval_problems()} & trained
    sizes = source.split_sizes()
    assert sizes == [{"dataset": path, "train_size": 10 - len(held_out), "heldout_size": len(held_out)}]
    assert sizes[0]["train_size"] > sizes[0]["heldout_size"]  # training keeps most of a small file


def test_a_one_row_dataset_file_is_refused_naming_the_file_and_its_row_count(tmp_path):
    with pytest.raises(ValueError) as info:
        _file_source(tmp_path, rows=1)
    assert "small.jsonl" in str(info.value) and "1 problem row" in str(info.value)
    source, _ = _file_source(tmp_path, rows=1, eval_size=0)  # nothing held out: nothing to split
    assert source.split_sizes()[0]["train_size"] == 1 and not source.eval_problems()
