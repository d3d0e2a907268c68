"""One progress across a run's stages: a base pretraining, then the main (GRPO) job, whose steps start again
at 1. The run page, the overview and the API show the overall progress with the current stage named."""
import json

from lab.models import Run
from lab.services.ingest import EventTail, ingest_events

CONFIG = {"kind": "grpo", "total_steps": 3, "base": {"steps": 4}}


def _trainer_events() -> list[dict]:
    """What r1model's runner writes for CONFIG (docs/API_trainer.md, job order)."""
    events = [{"type": "status", "phase": "starting", "step": 0, "total_steps": 3}]
    for step in range(1, 5):
        events.append({"type": "metric", "step": step, "metrics": {"train/loss": 1.0 / step}, "phase": "pretrain"})
        events.append({"type": "status", "phase": "pretrain", "step": step, "total_steps": 4})
    events.append({"type": "checkpoint", "step": 4, "path": "base/checkpoints/step-4"})
    events.append({"type": "status", "phase": "eval", "step": 0, "total_steps": 3})
    for step in range(1, 4):
        events.append({"type": "metric", "step": step, "metrics": {"reward": 0.1 * step}})
        events.append({"type": "status", "phase": "grpo", "step": step, "total_steps": 3})
    return [{"seq": seq, **event} for seq, event in enumerate(events)]


def _stage_run(team, tmp_path, upto: int | None = None):
    run = Run.objects.create(team=team, name="aha", kind="grpo", config=CONFIG, status="running")
    path = tmp_path / "events.jsonl"
    tail, seen = EventTail(), []
    for event in _trainer_events()[:upto]:
        with path.open("a") as handle:
            handle.write(json.dumps(event) + "\n")
        ingest_events(run, path, tail=tail)
        run.refresh_from_db()
        seen.append((run.stage_index, run.overall_step, run.progress))
    return run, seen


def test_progress_goes_on_from_the_base_stage_into_the_main_stage(lab, tmp_path):
    run, seen = _stage_run(lab.team, tmp_path)
    progress = [p for _, _, p in seen]
    assert progress == sorted(progress), progress  # never restarts
    assert (run.stage, run.base_steps, run.main_steps) == ("main", 4, 3)
    assert (run.step, run.total_steps, run.overall_step, run.overall_total) == (3, 3, 7, 7)
    assert run.stage_name == "GRPO" and run.progress == 1.0
    # the last base event, then the first main one: 4 of 7 either way
    assert (2, 4) in [(index, step) for index, step, _ in seen] and (1, 4) in [(index, step) for index, step, _ in seen]


def test_the_base_stage_is_named_and_counts_toward_the_whole(lab, tmp_path):
    run, _ = _stage_run(lab.team, tmp_path, upto=5)  # starting + pretraining steps 1 and 2
    assert (run.stage, run.stage_name, run.stage_index, run.stage_count) == ("base", "pretraining", 1, 2)
    assert (run.step, run.total_steps, run.overall_step, run.overall_total) == (2, 4, 2, 7)
    assert abs(run.progress - 2 / 7) < 1e-9


def test_a_run_without_a_base_stage_keeps_its_one_progress(lab):
    assert (lab.run.stage_count, lab.run.overall_step, lab.run.overall_total, lab.run.progress) == (1, 30, 100, 0.3)


def test_run_page_overview_and_api_show_the_overall_progress(lab, owner_client, tmp_path):
    from lab.services.tokens import token_create

    run, _ = _stage_run(lab.team, tmp_path, upto=13)  # the base is done, GRPO step 1 of 3
    assert (run.stage, run.step, run.overall_step) == ("main", 1, 5)
    page = owner_client.get(f"/runs/{run.id}/").content.decode()
    assert "stage 2 of 2: GRPO step 1 / 3" in page and "overall 5 / 7" in page
    overview = owner_client.get("/").content.decode()
    assert 'title="overall step 5 of 7"' in overview and "5 / 7 · GRPO 1 / 3" in overview
    assert 'style="width: 71%"' in overview  # 5 / 7
    token = token_create(user=lab.owner)
    data = owner_client.get(f"/api/v1/runs/{run.id}", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert data["stage"] == {"index": 2, "count": 2, "name": "GRPO"}
    assert (data["overall_step"], data["overall_total"], round(data["progress"], 4)) == (5, 7, round(5 / 7, 4))
    assert (data["step"], data["total_steps"]) == (1, 3)


def test_the_lab_takes_the_stages_from_the_trainers_starting_status_over_the_config(lab, tmp_path):
    """The trainer says its plan in its first status (stages); the lab uses it, not the config's rule
    (here the config says base 4 + main 3, the trainer 2 + 5), across batches and polls."""
    run = Run.objects.create(team=lab.team, name="plan", kind="grpo", config=CONFIG, status="running")
    plan = [{"name": "base", "total_steps": 2}, {"name": "main", "total_steps": 5}]
    events = [{"type": "status", "phase": "starting", "stage": "base", "step": 0, "total_steps": 2, "stages": plan},
              {"type": "metric", "step": 1, "metrics": {"train/loss": 1.0}, "phase": "pretrain"},
              {"type": "status", "phase": "pretrain", "stage": "base", "step": 1, "total_steps": 2}]
    events += [{"type": "status", "phase": "grpo", "stage": "main", "step": step, "total_steps": 5} for step in (1, 2)]
    path, tail = tmp_path / "events.jsonl", EventTail()
    for seq, event in enumerate(events):  # one poll per event, the same Run object (as a supervisor keeps it)
        with path.open("a") as handle:
            handle.write(json.dumps({"seq": seq, **event}) + "\n")
        ingest_events(run, path, tail=tail)
        stored = Run.objects.get(id=run.id)
        assert (stored.base_steps, stored.main_steps) == (2, 5), seq
    assert (stored.stage, stored.overall_step, stored.overall_total) == ("main", 4, 7)
    fresh = Run.objects.create(team=lab.team, name="plan2", kind="grpo", config=CONFIG, status="running")
    ingest_events(fresh, path)  # all at once, from the start
    fresh.refresh_from_db()
    assert (fresh.base_steps, fresh.main_steps, fresh.overall_total) == (2, 5, 7)


def test_a_plan_without_a_base_stage_from_the_trainer_is_one_stage(lab, tmp_path):
    run = Run.objects.create(team=lab.team, name="one", kind="grpo", config=CONFIG, status="running")
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"seq": 0, "type": "status", "phase": "starting", "stage": "main", "step": 0,
                                "total_steps": 3, "stages": [{"name": "main", "total_steps": 3}]}) + "\n")
    ingest_events(run, path)
    run.refresh_from_db()
    assert (run.base_steps, run.main_steps, run.stage_count) == (0, 3, 1)
