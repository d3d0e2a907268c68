"""lab.services.ingest: events.jsonl → rows, exactly once, incrementally, tolerant of torn lines."""
import json
import logging

import pytest

from lab.models import CheckpointRecord, EvalResult, Metric, Run, RunLog, Team, Trace
from lab.services.ingest import EventTail, ingest_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    team = Team.objects.create(slug="t", name="T")
    return Run.objects.create(team=team, name="r")


def write(path, events, *, torn: str = "", mode: str = "a"):
    with path.open(mode) as handle:
        for event in events:
            handle.write(json.dumps(event) + "\n")
        handle.write(torn)


def step_events(seq: int, step: int) -> list[dict]:
    return [
        {"seq": seq, "type": "metric", "step": step, "metrics": {"loss": 1.0 / step, "kl": 0.01 * step}},
        {"seq": seq + 1, "type": "trace", "step": step, "group_id": f"g{step}", "prompt": "2+2?",
         "completion": "<think>2+2</think><answer>4</answer>", "think": "2+2", "answer": "4", "reward": 1.0,
         "rewards": {"accuracy": 1.0, "format": 1.0}, "correct": True, "tokens": 9},
        {"seq": seq + 2, "type": "status", "step": step, "phase": "train", "total_steps": 10, "eta_s": 5.0},
    ]


def metric_keys(run):
    return sorted(Metric.objects.filter(run=run).values_list("step", "name"))


def test_every_event_type_becomes_its_row(run, tmp_path):
    path = tmp_path / "events.jsonl"
    write(path, [
        *step_events(0, 1),
        {"seq": 3, "type": "checkpoint", "step": 1, "path": "checkpoints/step-1"},
        {"seq": 4, "type": "eval", "step": 1, "benchmark": "countdown", "metric": "pass@1", "value": 0.25, "n": 8},
        {"seq": 5, "type": "log", "step": 1, "message": "hello"},
    ])
    assert ingest_events(run, path) == 6
    assert metric_keys(run) == [(1, "kl"), (1, "loss")]
    trace = Trace.objects.get(run=run)
    assert (trace.answer, trace.status, trace.tokens) == ("4", "correct", 9)
    assert trace.rewards == {"accuracy": 1.0, "format": 1.0}
    assert CheckpointRecord.objects.get(run=run).path == "checkpoints/step-1"
    assert EvalResult.objects.get(run=run).value == 0.25
    logs = sorted(RunLog.objects.filter(run=run).values_list("kind", "message"))
    assert logs == [("log", "hello"), ("status", "train")]
    run.refresh_from_db()
    assert (run.ingested_seq, run.step, run.phase, run.total_steps, run.eta_s) == (5, 1, "train", 10, 5.0)


def test_traces_get_reflection_and_language_mix_unless_the_trainer_sent_them(run, tmp_path):
    path = tmp_path / "events.jsonl"
    write(path, [
        {"seq": 0, "type": "trace", "step": 1, "think": "3+4 is 7. Wait, let me check: yes 7", "answer": "7"},
        {"seq": 1, "type": "trace", "step": 1, "think": "3+4 等于 7", "answer": "7"},
        {"seq": 2, "type": "trace", "step": 1, "think": "wait", "has_reflection": False, "language_mix": 0.5},
    ])
    ingest_events(run, path)
    rows = list(Trace.objects.filter(run=run).order_by("seq").values_list("has_reflection", "language_mix"))
    assert rows[0] == (True, 0.0)
    assert rows[1][0] is False and rows[1][1] > 0
    assert rows[2] == (False, 0.5)


def test_the_gold_answer_of_a_trace_is_stored_and_older_traces_without_one_store_blank(run, tmp_path):
    path = tmp_path / "events.jsonl"
    write(path, [
        {"seq": 0, "type": "trace", "step": 1, "answer": "7", "gold": "7", "status": "correct"},
        {"seq": 1, "type": "trace", "step": 1, "answer": "8", "status": "wrong"},  # a trainer from before gold
    ])
    ingest_events(run, path)
    assert list(Trace.objects.filter(run=run).order_by("seq").values_list("answer", "gold")) == [("7", "7"), ("8", "")]


@pytest.mark.parametrize("text", ["", "42 17", "Wait, 3+4=7", "hmm_ok", "no markers here", "WAIT!", "awaits",
                                  "3+4 等于 7, wait", "café au lait", "let me double-check", "réévaluer"])
def test_fast_reading_aids_agree_with_lab_services_traces(text):
    from lab.services import traces
    from r1model import language

    assert traces.has_reflection(text) == (traces._MARKER_RE.search(text) is not None)
    assert traces.language_mix(text) == language._mixed_share(text, "en")


def test_the_step_is_the_last_events_even_after_a_status_in_the_same_batch(run, tmp_path):
    path = tmp_path / "events.jsonl"
    write(path, [*step_events(0, 4), {"seq": 3, "type": "metric", "step": 5, "metrics": {"loss": 0.2}},
                 {"seq": 4, "type": "metric", "step": 6, "metrics": {"loss": 0.1}}])
    ingest_events(run, path)
    run.refresh_from_db()
    assert (run.step, run.phase, run.total_steps) == (6, "train", 10)  # phase and total from the status


def test_reading_the_file_again_stores_nothing_twice(run, tmp_path):
    path = tmp_path / "events.jsonl"
    write(path, step_events(0, 1) + step_events(3, 2))
    assert ingest_events(run, path) == 6
    assert ingest_events(run, path) == 0
    assert Metric.objects.filter(run=run).count() == 4
    assert Trace.objects.filter(run=run).count() == 2


def test_torn_last_line_waits_for_its_newline(run, tmp_path):
    path = tmp_path / "events.jsonl"
    tail = EventTail()
    line = json.dumps(step_events(3, 2)[0])
    write(path, step_events(0, 1), torn=line[:17])
    assert ingest_events(run, path, tail=tail) == 3
    assert metric_keys(run) == [(1, "kl"), (1, "loss")]
    with path.open("a") as handle:
        handle.write(line[17:] + "\n")
    assert ingest_events(run, path, tail=tail) == 1
    assert metric_keys(run) == [(1, "kl"), (1, "loss"), (2, "kl"), (2, "loss")]


def test_resumed_trainer_reemitting_seqs_after_truncation_gives_each_step_once(run, tmp_path):
    path = tmp_path / "events.jsonl"
    tail = EventTail()
    write(path, step_events(0, 1) + step_events(3, 2) + step_events(6, 3))
    ingest_events(run, path, tail=tail)
    # crash after step 3, checkpoint at step 1 stored next seq 3: the trainer truncates and redoes 2..4
    write(path, step_events(0, 1), mode="w")
    write(path, step_events(3, 2) + step_events(6, 3) + step_events(9, 4))
    assert ingest_events(run, path, tail=tail) == 3
    assert metric_keys(run) == sorted((s, n) for s in (1, 2, 3, 4) for n in ("kl", "loss"))
    assert sorted(Trace.objects.filter(run=run).values_list("step", flat=True)) == [1, 2, 3, 4]


def test_resumed_attempt_writing_other_events_replaces_the_lost_steps(run, tmp_path):
    path = tmp_path / "events.jsonl"
    tail = EventTail()
    write(path, step_events(0, 1) + step_events(3, 2) + step_events(6, 3))
    ingest_events(run, path, tail=tail)
    # resumed from the step-1 checkpoint, the new attempt first logs, shifting every later seq by one
    write(path, step_events(0, 1) + [{"seq": 3, "type": "log", "message": "resumed at step 1"}], mode="w")
    write(path, step_events(4, 2))
    assert ingest_events(run, path, tail=tail) == 4
    assert metric_keys(run) == [(1, "kl"), (1, "loss"), (2, "kl"), (2, "loss")]
    assert sorted(Trace.objects.filter(run=run).values_list("seq", "step")) == [(1, 1), (5, 2)]
    run.refresh_from_db()
    assert run.ingested_seq == 6


def test_final_read_drops_rows_beyond_the_end_of_the_file(run, tmp_path):
    path = tmp_path / "events.jsonl"
    write(path, step_events(0, 1) + step_events(3, 2))
    ingest_events(run, path)
    write(path, step_events(0, 1), mode="w")
    ingest_events(run, path, final=True)
    assert metric_keys(run) == [(1, "kl"), (1, "loss")]
    run.refresh_from_db()
    assert run.ingested_seq == 2


def test_file_rewritten_past_the_old_offset_is_read_again_from_the_start(run, tmp_path):
    path = tmp_path / "events.jsonl"
    tail = EventTail()
    write(path, step_events(0, 1))
    ingest_events(run, path, tail=tail)
    # truncated to nothing and refilled beyond the old size before the next poll
    write(path, [{"seq": 0, "type": "log", "message": "fresh start"}] + step_events(1, 1) + step_events(4, 2),
          mode="w")
    ingest_events(run, path, tail=tail)
    assert sorted(Metric.objects.filter(run=run).values_list("seq", "step").distinct()) == [(1, 1), (4, 2)]
    assert RunLog.objects.filter(run=run, seq=0).get().message == "fresh start"


def test_tail_reads_only_what_was_appended(run, tmp_path):
    path = tmp_path / "events.jsonl"
    tail = EventTail()
    write(path, step_events(0, 1))
    ingest_events(run, path, tail=tail)
    offset = tail.offset
    assert offset == path.stat().st_size
    write(path, step_events(3, 2))
    assert ingest_events(run, path, tail=tail) == 3
    assert tail.offset > offset


def test_bad_lines_are_skipped_and_named(run, tmp_path, caplog):
    path = tmp_path / "events.jsonl"
    path.write_text('{"seq": 0, "type": "metric", "step": 1, "metrics": {"loss": 1}}\n'
                    "not json\n"
                    '{"type": "metric"}\n'
                    '{"seq": 1, "type": "weird"}\n'
                    '{"seq": 2, "type": "metric", "step": 2, "name": "loss", "value": NaN}\n')
    with caplog.at_level(logging.WARNING, logger="lab.services.ingest"):
        assert ingest_events(run, path) == 2
    assert "events.jsonl line 2: not JSON" in caplog.text
    assert "line 3: no integer 'seq'" in caplog.text and "line 4: unknown type 'weird'" in caplog.text
    assert sorted(Metric.objects.filter(run=run).values_list("step", "value")) == [(1, 1.0), (2, None)]


def test_missing_file_stores_nothing(run, tmp_path):
    assert ingest_events(run, tmp_path / "events.jsonl") == 0


def test_max_events_bounds_one_call_and_the_next_call_goes_on(run, tmp_path, monkeypatch):
    import lab.services.ingest.tail as ingest_tail

    monkeypatch.setattr(ingest_tail, "READ_CHUNK", 4096)  # small chunks, so the bound bites
    path = tmp_path / "events.jsonl"
    write(path, [{"seq": i, "type": "metric", "step": i, "values": {"loss": 0.5}} for i in range(1000)])
    tail = EventTail()
    first = ingest_events(run, path, tail=tail, max_events=100)
    assert 100 <= first < 1000
    assert first + ingest_events(run, path, tail=tail) == 1000
    assert Metric.objects.filter(run=run).count() == 1000


def test_many_events_span_several_batches(run, tmp_path):
    path = tmp_path / "events.jsonl"
    write(path, [{"seq": i, "type": "metric", "step": i, "metrics": {"loss": 0.5}} for i in range(12_000)])
    assert ingest_events(run, path) == 12_000
    assert Metric.objects.filter(run=run).count() == 12_000
    run.refresh_from_db()
    assert (run.ingested_seq, run.step) == (11_999, 11_999)


def test_rows_another_ingester_stored_already_are_kept_once(run, tmp_path):
    # ingested_seq lags the rows (another supervisor committed them): the insert meets its unique keys
    path = tmp_path / "events.jsonl"
    write(path, step_events(0, 1) + step_events(3, 2))
    ingest_events(run, path)
    Run.objects.filter(id=run.id).update(ingested_seq=-1)
    write(path, step_events(6, 3))
    ingest_events(run, path)
    assert metric_keys(run) == [(1, "kl"), (1, "loss"), (2, "kl"), (2, "loss"), (3, "kl"), (3, "loss")]
    assert sorted(Trace.objects.filter(run=run).values_list("step", "rewards")) == [
        (step, {"accuracy": 1.0, "format": 1.0}) for step in (1, 2, 3)]
    assert RunLog.objects.filter(run=run).count() == 3
    run.refresh_from_db()
    assert run.ingested_seq == 8


def test_a_long_file_read_in_many_blocks_names_bad_lines_and_keeps_order(run, tmp_path, monkeypatch, caplog):
    import lab.services.ingest.tail as ingest_tail

    monkeypatch.setattr(ingest_tail, "READ_CHUNK", 2048)  # many blocks: the next one is prepared while one is stored
    path = tmp_path / "events.jsonl"
    events = [e for step in range(1, 201) for e in step_events(3 * step, step)]
    with path.open("w") as handle:
        for number, event in enumerate(events, start=1):
            handle.write(json.dumps(event) + "\n")
            if number == 450:
                handle.write("{not json\n")  # line 451
    with caplog.at_level(logging.WARNING, logger="lab.services.ingest"):
        assert ingest_events(run, path) == 600
    assert "line 451: not JSON" in caplog.text
    assert Trace.objects.filter(run=run).count() == 200
    run.refresh_from_db()
    assert (run.ingested_seq, run.step) == (602, 200)


def stored_summaries(run) -> dict:
    from lab.models import MetricSummary

    rows = MetricSummary.objects.filter(run=run).values_list("name", "level", "block", "low_step", "low", "high_step", "high")
    return {(name, level, block): [*rest] for name, level, block, *rest in rows}


def summaries_from_scratch(run) -> dict:
    from lab.services.metric_summaries import summarise

    return summarise(Metric.objects.filter(run=run).order_by("seq").values_list("name", "step", "value"))


def noisy_steps(first_seq: int, steps: range, seed: int) -> list[dict]:
    """Metric events with repeated values (ties), NaN and a second event at some steps."""
    import random

    rng, events, seq = random.Random(seed), [], first_seq
    for step in steps:
        values = {"loss": rng.choice([0.5, 1.0, 1.5, rng.random()]), "kl": rng.random() if step % 7 else float("nan")}
        events.append({"seq": seq, "type": "metric", "step": step, "metrics": values})
        seq += 1
        if step % 13 == 0:
            events.append({"seq": seq, "type": "metric", "step": step, "metrics": {"loss": rng.choice([0.5, 3.0])}})
            seq += 1
    return events


def test_metric_summaries_match_the_stored_points_through_batches_a_resume_and_a_final_drop(run, tmp_path, monkeypatch):
    from lab.services import ingest

    monkeypatch.setattr(ingest, "BATCH_EVENTS", 97)  # many batches: blocks merged across them
    path = tmp_path / "events.jsonl"
    tail = EventTail()
    first = noisy_steps(0, range(1, 700), seed=1)
    write(path, first)
    ingest_events(run, path, tail=tail)
    assert stored_summaries(run) == summaries_from_scratch(run) != {}
    # resumed from a checkpoint at step 450: it logs first (every later seq shifts by one), then writes
    # the steps after 450 again with other values
    kept = [e for e in first if e["step"] <= 450]
    resumed = [{"seq": len(kept), "type": "log", "message": "resumed"}] + noisy_steps(len(kept) + 1, range(451, 720), seed=2)
    write(path, kept + resumed, mode="w")
    ingest_events(run, path, tail=tail)
    assert sorted(Metric.objects.filter(run=run, step__gt=450).values_list("seq", flat=True).distinct()) == \
        [e["seq"] for e in resumed[1:]]
    assert stored_summaries(run) == summaries_from_scratch(run)
    write(path, kept, mode="w")  # the attempt ended at the checkpoint: the last read drops what follows
    ingest_events(run, path, final=True)
    assert stored_summaries(run) == summaries_from_scratch(run)
    from lab.services.metric_summaries import MIN_LEVEL

    assert max(block for (_, level, block) in stored_summaries(run) if level == MIN_LEVEL) == 450 >> MIN_LEVEL


def test_storing_the_same_metrics_twice_leaves_their_summaries_as_they_were(run):
    from lab.services.ingest import store_summaries

    rows = [(run.id, i, i // 3, "loss", float(i % 5)) for i in range(300)]
    store_summaries(run.id, rows)
    once = stored_summaries(run)
    store_summaries(run.id, rows[100:200])
    store_summaries(run.id, rows)
    assert stored_summaries(run) == once
    from lab.services.metric_summaries import MIN_LEVEL

    assert once[("loss", MIN_LEVEL, 0)] == [0, 0.0, 1, 4.0]  # the minimum 0 first at step 0, the maximum 4 at step 1
    from lab.models import MetricSummary

    run_id = run.id
    run.delete()  # no database foreign key (derived rows, cheaper to store): Django deletes them with the run
    assert not MetricSummary.objects.filter(run_id=run_id).exists()


def test_an_automatic_retry_says_which_attempt_from_which_step_and_why(db, tmp_path, monkeypatch):
    """After a trainer death and a requeue, the run (page and API) says "attempt 2 of 3, resumed from step
    25 after: trainer killed by SIGKILL" — not an empty message."""
    from django.contrib.auth import get_user_model

    from lab.api.serializers import run_json
    from lab.models import Run, RunStatus, Team, Worker
    from lab.services import dispatch
    from lab.services.ingest import ingest_events

    team = Team.objects.create(slug="t-retry", name="T")
    user = get_user_model().objects.create_user("retry-user")
    run = Run.objects.create(team=team, name="r", created_by=user, status=RunStatus.QUEUED, config={"kind": "grpo"})
    worker = Worker.objects.create(name="w1", queues=["cpu"])
    monkeypatch.setattr(dispatch, "dispatch_run", lambda run_id: True)  # the broker is not part of this test
    assert dispatch.claim_run(run.id, worker).attempt == 1
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING)
    assert dispatch.requeue_run(run.id, 1, reason="trainer killed by SIGKILL") == RunStatus.QUEUED
    run = dispatch.claim_run(run.id, worker)
    assert run.attempt == 2 and run.message == ""
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"seq": 40, "type": "status", "phase": "starting", "step": 25, "total_steps": 100}) + "\n")
    ingest_events(run, events)
    run.refresh_from_db()
    assert run.attempt_note == "attempt 2 of 3, resumed from step 25 after: trainer killed by SIGKILL"
    assert run_json(run)["attempt_note"] == run.attempt_note and run_json(run)["attempt"] == 2


def test_the_trainers_data_split_is_stored_by_reference_and_shown_without_server_paths(db, tmp_path):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from lab.models import Membership, Role

    team = Team.objects.create(slug="t-split", name="T")
    user = get_user_model().objects.create_user("split-user")
    Membership.objects.create(team=team, user=user, role=Role.ADMIN)
    run = Run.objects.create(team=team, name="r", created_by=user, config={
        "kind": "grpo", "datasets": [{"task": None, "path": "dataset:7"}, {"task": "addition", "path": None}]})
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"seq": 0, "type": "log", "message": "data split: /srv/data/datasets/x.jsonl: 8 training, 2 held-out",
                                  "datasets": [{"dataset": "/srv/data/datasets/x.jsonl", "train_size": 8, "heldout_size": 2},
                                               {"dataset": "addition", "train_size": None, "heldout_size": 200}]}) + "\n")
    ingest_events(run, events)
    run.refresh_from_db()
    assert run.data_split == [{"dataset": "dataset:7", "train_size": 8, "heldout_size": 2},
                              {"dataset": "addition", "train_size": None, "heldout_size": 200}]
    client = Client()
    client.force_login(user)
    page = client.get(f"/runs/{run.id}/").content.decode()
    assert "dataset:7 — 8 training / 2 held-out" in page and "addition — generated training / 200 held-out" in page


def test_a_run_stopped_while_pretraining_shows_the_stage_step_against_the_stage_total(db, tmp_path):
    """Cancelled at pretraining step 218 of 300 before 80 GRPO steps: "pretraining step 218 / 300", the ETA
    says GRPO is still ahead — never "218 / 80"."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from lab.api.serializers import run_json
    from lab.models import Membership, Role

    team = Team.objects.create(slug="t-stage", name="T")
    user = get_user_model().objects.create_user("stage-user")
    Membership.objects.create(team=team, user=user, role=Role.ADMIN)
    run = Run.objects.create(team=team, name="r", created_by=user, kind="grpo", status="running",
                             config={"kind": "grpo", "total_steps": 80, "base": {"steps": 300}})
    lines = [{"seq": 0, "type": "status", "phase": "starting", "stage": "base", "step": 0, "total_steps": 300}]
    lines += [{"seq": s, "type": "metric", "phase": "pretrain", "step": s, "metrics": {"loss": 1.0}} for s in range(1, 219)]
    lines += [{"seq": 219, "type": "status", "phase": "pretrain", "stage": "base", "step": 218, "total_steps": 300, "eta_s": 60.0}]
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    ingest_events(run, events)
    run.refresh_from_db()
    assert (run.stage_index, run.stage_step, run.total_steps) == (1, 218, 300)
    assert run.eta_scope == "for pretraining; then GRPO, 80 steps, not yet estimated"
    assert run_json(run)["step"] <= run_json(run)["total_steps"]
    client = Client()
    client.force_login(user)
    page = client.get(f"/runs/{run.id}/").content.decode()
    assert "pretraining step 218 / 300" in page and "then GRPO, 80 steps" in page
    Run.objects.filter(id=run.id).update(step=302, total_steps=150)  # an older stream's stop past the total
    run.refresh_from_db()
    assert run_json(run)["step"] == 150
