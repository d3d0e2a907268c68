"""The event stream: schema, seq numbering, torn lines, exactly-once resume, rank awareness."""
import json

import pytest

from r1model.events import EVENT_TYPES, EventWriter, read_events


def _lines(run_dir):
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_every_event_has_increasing_seq_type_and_time(tmp_path):
    with EventWriter(tmp_path) as events:
        events.status("grpo", 0, 10, eta_s=None, message="starting")
        events.metric(1, {"reward": 0.5, "kl": float("nan")})
        events.trace(1, "g0", "1+2", "<think></think><answer>3</answer>", "", "3", {"accuracy": 1.0, "format": 1.0},
                     1.1, 0.0, True, "correct", 9, False, prompt_id="p1")
        events.checkpoint(1, "/x/checkpoints/step-1")
        events.eval(1, "heldout", "accuracy", 0.25, 200)
        events.log("hello")
    rows = _lines(tmp_path)
    assert [r["seq"] for r in rows] == [0, 1, 2, 3, 4, 5]
    assert [r["type"] for r in rows] == ["status", "metric", "trace", "checkpoint", "eval", "log"]
    assert all(isinstance(r["time"], float) for r in rows)
    assert rows[0]["total_steps"] == 10 and rows[0]["phase"] == "grpo"
    assert rows[1]["values"] == {"reward": 0.5, "kl": None}  # NaN is not JSON: written as null
    assert rows[2]["status"] == "correct" and rows[2]["rewards"]["accuracy"] == 1.0 and rows[2]["prompt_id"] == "p1"
    assert rows[4] == {**rows[4], "benchmark": "heldout", "metric": "accuracy", "value": 0.25, "n": 200}
    assert rows[5]["message"] == "hello"
    assert set(r["type"] for r in rows) == set(EVENT_TYPES)


def test_unknown_type_and_trace_status_are_rejected(tmp_path):
    events = EventWriter(tmp_path)
    with pytest.raises(ValueError):
        events.emit("gossip", x=1)
    with pytest.raises(ValueError):
        events.trace(1, "g", "p", "c", None, None, {}, 0.0, 0.0, None, "maybe", 1, False)


def test_reopening_continues_the_numbering(tmp_path):
    EventWriter(tmp_path).log("a")
    events = EventWriter(tmp_path)
    assert events.log("b") == 1


def test_a_torn_last_line_is_dropped_on_open_and_ignored_by_readers(tmp_path):
    events = EventWriter(tmp_path)
    events.log("a")
    events.log("b")
    events.close()
    with (tmp_path / "events.jsonl").open("ab") as handle:
        handle.write(b'{"seq": 2, "type": "lo')
    assert [e["seq"] for e in read_events(tmp_path)] == [0, 1]
    events = EventWriter(tmp_path)
    assert events.log("c") == 2
    assert [r["message"] for r in _lines(tmp_path)] == ["a", "b", "c"]


def test_resume_drops_events_after_the_checkpoint_and_reuses_their_seqs(tmp_path):
    events = EventWriter(tmp_path)
    events.metric(1, {"reward": 0.1})
    saved = events.next_seq  # what a checkpoint at step 1 records
    events.metric(2, {"reward": 0.2})
    events.metric(3, {"reward": 0.3})
    events.close()  # the process dies here
    resumed = EventWriter(tmp_path)
    assert resumed.resume(saved) == 2
    assert resumed.metric(2, {"reward": 0.2}) == saved
    rows = _lines(tmp_path)
    assert [(r["seq"], r["step"]) for r in rows] == [(0, 1), (1, 2)]


def test_read_events_returns_only_events_after_a_seq(tmp_path):
    events = EventWriter(tmp_path)
    for i in range(5):
        events.metric(i, {"loss": i})
    assert [e["seq"] for e in read_events(tmp_path / "events.jsonl", after_seq=2)] == [3, 4]
    assert read_events(tmp_path / "missing.jsonl") == []
    assert [e["type"] for e in read_events(tmp_path, types=("log",))] == []


def test_only_rank_zero_writes(tmp_path):
    events = EventWriter(tmp_path / "r1", rank=1)
    assert events.metric(1, {"loss": 1.0}) == -1
    assert not (tmp_path / "r1" / "events.jsonl").exists()


def test_batch_writes_every_event(tmp_path):
    events = EventWriter(tmp_path)
    with events.batch():
        for i in range(3):
            events.log(str(i))
    assert [e["message"] for e in read_events(tmp_path)] == ["0", "1", "2"]
