"""Rejection sampling: a completed rejection-sampling run's accepted samples become a versioned team dataset."""
import json

import pytest
from django.core.exceptions import ValidationError

from lab.models import Dataset, Run
from lab.services.datasets import rejection_sampling_dataset_create, stage_accepted_rollouts
from r1model.tasks.dataset_io import load_dataset


def write_rollouts(run_dir, rows):
    """What r1model/train/rejection_sampling.py writes: every sample to rollouts.jsonl, the accepted ones (status
    correct, each text once per problem: the trainer's rule, tested in tests/unit/test_recipe_jobs.py) to
    accepted.jsonl."""
    (run_dir / "rollouts.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    seen, accepted = set(), []
    for row in rows:
        if row["status"] == "correct" and (row["id"], row["completion"]) not in seen:
            seen.add((row["id"], row["completion"]))
            accepted.append({key: row[key] for key in ("problem", "answer", "prompt", "completion", "reward")}
                            | {"id": f"{row['id']}-{len(accepted)}"})
    (run_dir / "accepted.jsonl").write_text("".join(json.dumps(row) + "\n" for row in accepted))


def sample(pid, completion, status):
    # the row shape r1model/train/rejection_sampling.py writes to <run_dir>/rollouts.jsonl
    return {"id": pid, "problem": f"{pid}?", "answer": "5", "prompt": f"User: {pid}?\nAssistant: ",
            "completion": completion, "reward": 1.0 if status == "correct" else 0.0, "rewards": {},
            "status": status, "truncated": False}


ROWS = [
    sample("p1", "<think>2+3=5</think><answer>5</answer>", "correct"),
    sample("p1", "<think>2+3=5</think><answer>5</answer>", "correct"),  # the same text twice: kept once
    sample("p1", "<think></think><answer>6</answer>", "wrong"),
    sample("p2", "<think>1+4=5</think><answer>5</answer>", "correct"),
    sample("p3", "<answer>?", "unparseable"),
]


def test_only_accepted_distinct_samples_are_staged(tmp_path):
    write_rollouts(tmp_path, ROWS)
    staged = stage_accepted_rollouts(name="r", run_dir=tmp_path, run_id=7)
    assert staged.row_count == 2
    assert staged.report["sampled"] == 5 and staged.report["acceptance_rate"] == 0.4
    loaded = load_dataset(staged.path)  # what the trainer reads back (problems with answers, sft pairs)
    assert [row["answer"] for row in loaded.rows] == ["5", "5"]


def test_a_broken_accepted_file_names_the_file_and_line(tmp_path):
    write_rollouts(tmp_path, ROWS)
    with (tmp_path / "accepted.jsonl").open("a") as handle:
        handle.write("{not json\n")
    with pytest.raises(ValidationError, match=r"accepted.jsonl: line 3"):
        stage_accepted_rollouts(name="r", run_dir=tmp_path, run_id=7)


def test_completed_rollout_run_becomes_a_dataset_once(lab, tmp_path, settings):
    settings.DATASETS_DIR = tmp_path / "datasets"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_rollouts(run_dir, ROWS)
    run = Run.objects.create(team=lab.team, project=lab.project, name="rs", kind="rejection_sampling", status="completed",
                             created_by=lab.owner, run_dir=str(run_dir))
    dataset = rejection_sampling_dataset_create(run)
    assert dataset.source == Dataset.Source.ROLLOUT and dataset.row_count == 2 and dataset.team == lab.team
    assert dataset.generator == {"run": run.id, "sampled": 5, "accepted": 2}
    assert rejection_sampling_dataset_create(run).id == dataset.id  # idempotent: same content, same version
    assert Dataset.objects.filter(name=dataset.name).count() == 1


@pytest.mark.parametrize("rows", [[sample("p1", "<answer>6</answer>", "wrong")], None])
def test_nothing_accepted_or_no_file_makes_no_dataset(lab, tmp_path, rows):
    if rows is not None:
        write_rollouts(tmp_path, rows)
    run = Run.objects.create(team=lab.team, name="rs", kind="rejection_sampling", status="completed", created_by=lab.owner,
                             run_dir=str(tmp_path))
    assert rejection_sampling_dataset_create(run) is None
    assert not Dataset.objects.filter(source=Dataset.Source.ROLLOUT).exists()
