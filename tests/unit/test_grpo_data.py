"""The data cursor is the step: batches are pure functions of (seed, step); held-out problems stay out."""
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
