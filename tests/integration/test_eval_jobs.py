"""Evaluation jobs end to end: a training run that asks for them (eval_every) gets one evaluate child run
per checkpoint step, each run by whichever worker is free, on its own copy of the checkpoint."""
from pathlib import Path

import pytest

from tests.integration.conftest import TINY_GRPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# 10 steps, a checkpoint every 5, and only the last one kept: step-5 is rotated away when step-10 is
# written, so the step-5 evaluation must read its own copy.
PARENT = {**TINY_GRPO, "name": "eval-parent", "total_steps": 10, "checkpoint_interval": 5, "keep_checkpoints": 1,
          "evaluation": {**TINY_GRPO["evaluation"], "benchmarks": ["heldout"], "samples_per_problem": 1}}


def create_run_with_evaluations(lab, config: dict, eval_every: int) -> int:
    """What run_create stores for a run launched with eval_every (a run with no user, as the fixtures do)."""
    return lab.django(f"""
        from django.db import transaction
        from lab.models import Run, Team
        from lab.services.dispatch import dispatch_run
        from lab.services.run_config import validate_config
        team, _ = Team.objects.get_or_create(slug="t", defaults={{"name": "T"}})
        with transaction.atomic():
            run = Run.objects.create(team=team, name="parent", kind="grpo", config=validate_config({config!r}),
                                     eval_every={eval_every})
            transaction.on_commit(lambda: dispatch_run(run.id))
        result = run.id
    """)


def children(lab, parent_id: int) -> list[tuple]:
    return lab.query("SELECT id, parent_step, kind, status, message, run_dir FROM lab_run WHERE parent_id = %s "
                     "ORDER BY parent_step", (parent_id,))


def test_run_with_eval_every_gets_an_evaluate_child_per_checkpoint_and_each_completes(fs_lab):
    lab = fs_lab
    lab.start_worker("cpu1")
    lab.start_worker("cpu2")
    parent = create_run_with_evaluations(lab, PARENT, eval_every=5)
    state = lab.wait_finished(parent)
    assert state["status"] == "completed", state["message"]
    assert not (Path(state["run_dir"]) / "checkpoints" / "step-5").exists()  # rotated away by the trainer
    lab.assert_events_exactly_once(parent)

    rows = children(lab, parent)
    assert [(step, kind) for _, step, kind, *_ in rows] == [(5, "evaluate"), (10, "evaluate")]
    for child_id, step, _, _, _, run_dir in rows:
        done = lab.wait_finished(child_id)
        assert done["status"] == "completed", done["message"]
        assert done["attempt"] == 1
        copy = Path(run_dir) / "input-checkpoint"
        assert (copy / "model.safetensors").is_file() and not (copy / "trainer_state.pt").exists()
        results = lab.query("SELECT benchmark, metric, value, n FROM lab_evalresult WHERE run_id = %s", (child_id,))
        assert {(b, m) for b, m, _, _ in results} >= {("heldout", "pass@1"), ("heldout", "mean_length")}
        assert all(n == 4 for *_, n in results)  # eval_size 4, k = 1
        lab.assert_events_exactly_once(child_id)

    # the parent's benchmark table shows its children's scores at the steps they evaluated
    steps = lab.django(f"""
        from lab.models import Run
        from lab.selectors.benchmarks import benchmark_table
        table = benchmark_table(Run.objects.filter(id={parent}))
        result = sorted((row.run_id, row.step) for row in table.rows if "heldout" in row.scores)
    """)
    assert [tuple(s) for s in steps] == [(parent, 5), (parent, 10)]


def test_run_without_eval_every_gets_no_evaluate_child(fs_lab):
    lab = fs_lab
    lab.start_worker("cpu1")
    parent = create_run_with_evaluations(lab, PARENT, eval_every=0)
    assert lab.wait_finished(parent)["status"] == "completed"
    assert children(lab, parent) == []
