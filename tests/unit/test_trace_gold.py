"""The trainer's trace events carry the problem's reference answer (`gold`), for the lab's reviewer."""
import os

import torch

from r1model.events import read_events
from r1model.train.config import validate_run_config
from r1model.train.runner import run
from tests.unit.test_resume import small_config

torch.set_num_threads(1)


def test_train_traces_carry_the_gold_answer_of_their_problem_one_per_group(tmp_path):
    config = small_config(total_steps=1, base={"steps": 0})
    assert run(validate_run_config(config), tmp_path, progress_stream=open(os.devnull, "w"), install_signals=False) == 0
    traces = [e for e in read_events(tmp_path) if e["type"] == "trace" and e.get("source") == "train"]
    assert traces
    golds: dict[str, set] = {}
    for t in traces:
        assert isinstance(t["gold"], str) and t["gold"].lstrip("-").isdigit(), t  # an addition problem's sum
        golds.setdefault(t["group_id"], set()).add(t["gold"])
    assert all(len(g) == 1 for g in golds.values())  # the G completions of a prompt share its gold
