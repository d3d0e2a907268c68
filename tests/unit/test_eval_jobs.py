"""lab.services.evaluations: one evaluate child run per asked-for checkpoint, created by ingestion,
idempotently, on a copy of the checkpoint that outlives the parent's rotation."""
import json
import shutil
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from lab.models import EvalResult, Membership, Run, RunStatus, Team
from lab.selectors.benchmarks import benchmark_table
from lab.selectors.metrics import eval_series
from lab.selectors.runs import overview_rows
from lab.services.evaluations import copy_checkpoint, schedule_evaluation
from lab.services.ingest import EventTail, ingest_events
from lab.services.run_config import validate_config

pytestmark = pytest.mark.django_db

CONFIG = {
    "kind": "grpo", "model": {"source": "tiny"}, "template": "mini", "total_steps": 10, "checkpoint_interval": 5,
    "base": {"steps": 20},
    "datasets": [{"task": "addition", "difficulty": {"digits": 2}, "eval_size": 4}],
    "evaluation": {"benchmarks": ["heldout"], "samples_per_problem": 1, "at_start": True},
}


@pytest.fixture
def runs_dir(settings, tmp_path):
    settings.RUNS_DIR = tmp_path / "runs"
    return settings.RUNS_DIR


@pytest.fixture
def parent(runs_dir):
    team = Team.objects.create(slug="t", name="T")
    run_dir = runs_dir / "run-parent"
    return Run.objects.create(team=team, name="p", kind="grpo", config=validate_config(CONFIG), eval_every=5,
                              run_dir=str(run_dir))


def make_checkpoint(run: Run, step: int, *, tmp: bool = False):
    checkpoints = Path(run.run_dir) / "checkpoints"
    folder = checkpoints / (f".tmp-step-{step}" if tmp else f"step-{step}")
    folder.mkdir(parents=True)
    for name, data in (("config.json", "{}"), ("model.safetensors", "weights"), ("tokenizer.json", "{}"),
                       ("trainer_state.pt", "optimizer"), ("trainer_state.json", "{}")):
        (folder / name).write_text(data)
    return checkpoints / f"step-{step}"


def checkpoint_event(seq: int, step: int, path) -> dict:
    return {"seq": seq, "type": "checkpoint", "step": step, "path": str(path)}


def write_events(run: Run, events: list[dict]):
    path = Path(run.run_dir) / "events.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        for event in events:
            handle.write(json.dumps(event) + "\n")
    return path


def test_ingesting_the_same_checkpoint_event_twice_creates_one_child(parent):
    path = write_events(parent, [checkpoint_event(0, 5, make_checkpoint(parent, 5))])
    ingest_events(parent, path)
    ingest_events(parent, path, tail=EventTail())  # the file read again from the start
    Run.objects.filter(id=parent.id).update(ingested_seq=-1)  # and as if the rows had to be stored again
    ingest_events(parent, path, tail=EventTail())
    assert schedule_evaluation(parent, 5, str(parent.run_dir)).id == Run.objects.get(parent=parent).id
    [child] = Run.objects.filter(parent=parent)
    assert (child.kind, child.parent_step, child.status, child.queue) == ("evaluate", 5, RunStatus.QUEUED, parent.queue)
    assert (child.team_id, child.project_id) == (parent.team_id, parent.project_id)


def test_child_config_evaluates_its_copy_of_the_checkpoint_on_the_runs_benchmarks(parent):
    ingest_events(parent, write_events(parent, [checkpoint_event(0, 5, make_checkpoint(parent, 5))]))
    child = Run.objects.get(parent=parent)
    config = child.config
    assert config["kind"] == "evaluate"
    assert config["model"]["source"] == f"run:{parent.id}@5"  # a reference, never a server path
    # the trainer reads the child's own pinned copy
    from lab.services.references import resolve_inputs
    assert resolve_inputs(child)["model"]["source"] == child.run_dir + "/input-checkpoint"
    assert config["base"]["steps"] == 0  # the checkpoint is the model: no base pretraining first
    assert config["evaluation"]["benchmarks"] == ["heldout"]
    assert config["datasets"] == parent.config["datasets"]  # 'heldout' = their test split


def test_copy_outlives_the_parents_checkpoint_rotation(parent):
    source = make_checkpoint(parent, 5)
    ingest_events(parent, write_events(parent, [checkpoint_event(0, 5, source)]))
    shutil.rmtree(source)  # the trainer keeps only the last K checkpoints
    copy = Path(Run.objects.get(parent=parent).run_dir) / "input-checkpoint"
    assert (copy / "model.safetensors").read_text() == "weights"
    assert sorted(p.name for p in copy.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]


def test_checkpoint_still_under_its_temporary_name_is_copied(parent, tmp_path):
    # the trainer writes the checkpoint event before it renames .tmp-step-N to step-N
    final = make_checkpoint(parent, 5, tmp=True)
    assert not final.exists()
    assert copy_checkpoint(final, tmp_path / "copy") == tmp_path / "copy"
    assert (tmp_path / "copy" / "model.safetensors").read_text() == "weights"


def test_only_checkpoints_at_multiples_of_eval_every_get_a_child(parent):
    events = [checkpoint_event(seq, step, make_checkpoint(parent, step)) for seq, step in enumerate((3, 5, 7, 10))]
    ingest_events(parent, write_events(parent, events))
    assert sorted(Run.objects.filter(parent=parent).values_list("parent_step", flat=True)) == [5, 10]


def test_base_stage_checkpoints_get_no_child(parent):
    # a run with a base stage checkpoints it under base/checkpoints, numbered by base steps
    base = Path(parent.run_dir) / "base" / "checkpoints" / "step-10"
    ingest_events(parent, write_events(parent, [checkpoint_event(0, 10, base)]))
    assert not Run.objects.filter(parent=parent).exists()


def test_run_without_eval_every_gets_no_child(parent):
    Run.objects.filter(id=parent.id).update(eval_every=0)
    ingest_events(parent, write_events(parent, [checkpoint_event(0, 5, make_checkpoint(parent, 5))]))
    assert not Run.objects.filter(parent=parent).exists()


def test_checkpoint_gone_before_the_copy_makes_a_failed_child_that_says_why(parent):
    ingest_events(parent, write_events(parent, [checkpoint_event(0, 5, "/nowhere/checkpoints/step-5")]))
    child = Run.objects.get(parent=parent)
    assert child.status == RunStatus.FAILED
    assert f"run:{parent.id}@5" in child.message and "/nowhere" not in child.message


def test_evaluate_childs_scores_show_under_the_parent_at_the_step_it_evaluated(parent):
    ingest_events(parent, write_events(parent, [checkpoint_event(0, 5, make_checkpoint(parent, 5))]))
    child = Run.objects.get(parent=parent)
    EvalResult.objects.create(run=child, seq=0, step=0, benchmark="heldout", metric="pass@1", value=0.5, n=4)
    EvalResult.objects.create(run=parent, seq=1, step=10, benchmark="heldout", metric="pass@1", value=0.75, n=4)
    table = benchmark_table(Run.objects.filter(id=parent.id))
    assert [(r.run_id, r.step, r.scores["heldout"]["pass@1"]) for r in table.rows] == [
        (parent.id, 5, 0.5), (parent.id, 10, 0.75)]
    team_table = benchmark_table(Run.objects.filter(team=parent.team))  # the child is not a row of its own
    assert [(r.run_id, r.step) for r in team_table.rows] == [(parent.id, 5), (parent.id, 10)]
    [series] = eval_series(parent.id)
    assert (series["x"], series["y"]) == ([5, 10], [0.5, 0.75])


def test_overview_best_score_counts_the_runs_evaluation_jobs(parent):
    ingest_events(parent, write_events(parent, [checkpoint_event(0, 5, make_checkpoint(parent, 5))]))
    child = Run.objects.get(parent=parent)
    EvalResult.objects.create(run=child, seq=0, step=0, benchmark="heldout", metric="pass@1", value=0.9, n=4)
    EvalResult.objects.create(run=parent, seq=1, step=10, benchmark="heldout", metric="pass@1", value=0.75, n=4)
    rows = {row.run.id: row.best for row in overview_rows(Run.objects.filter(id=parent.id))}
    assert rows == {parent.id: {"heldout": 0.9}}


def test_benchmark_table_reads_the_evaluation_metric_names_headline_first(parent):
    from r1model.evaluate.metrics import EVAL_METRICS

    for seq, metric in enumerate(reversed(list(EVAL_METRICS))):
        EvalResult.objects.create(run=parent, seq=seq, step=10, benchmark="heldout", metric=metric, value=0.5, n=4)
    table = benchmark_table(Run.objects.filter(id=parent.id))
    assert table.metrics["heldout"][:2] == ["pass@1", "cons@k"]
    assert set(table.metrics["heldout"]) == set(EVAL_METRICS)
    assert overview_rows(Run.objects.filter(id=parent.id))[0].best == {"heldout": 0.5}


def test_run_create_rejects_a_negative_eval_every(parent, django_user_model):
    from lab.services.runs import run_create

    user = django_user_model.objects.create_user("u")
    Membership.objects.create(team=parent.team, user=user)
    with pytest.raises(ValidationError) as info:
        run_create(team=parent.team, user=user, config=CONFIG, name="x", eval_every=-1)
    assert "eval_every" in info.value.message_dict
