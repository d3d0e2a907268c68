"""Chain runs in the lab: a chain run's chain.json becomes one child run per started stage (idempotent), each
stage's events go into its own child, a failed stage's reason is the chain run's message, and cancel/resume of
a stage stand for its chain. chain.json is the trainer's own format (r1model.train.chains._State)."""
import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from lab.models import CheckpointRecord, Metric, Run, RunStatus
from lab.services.chains import ChainTails, chain_args, chain_create, chain_sync, settle_stage_runs
from lab.services.runs import run_cancel, run_resume
from r1model.train.chains import R1_MINI, _State


def _events(kind: str, steps: int, *, done: bool = True, checkpoint: str = "") -> list[dict]:
    events = [{"type": "status", "phase": "starting", "step": 0, "total_steps": steps}]
    for step in range(1, steps + 1):
        events.append({"type": "metric", "step": step, "metrics": {"reward" if kind == "grpo" else "train/loss": step / 10}})
        events.append({"type": "status", "phase": kind, "step": step, "total_steps": steps})
    if checkpoint:
        events.append({"type": "checkpoint", "step": steps, "path": checkpoint})
        events.append({"type": "eval", "step": steps, "benchmark": "heldout", "metric": "pass@1", "value": 0.5, "n": 4})
    if done:
        events.append({"type": "status", "phase": "done", "step": steps, "total_steps": steps})
    return [{"seq": seq, **event} for seq, event in enumerate(events)]


class FakeChain:
    """A chain directory as `recipe run r1-mini` leaves it, stage by stage (events, config, chain.json)."""

    def __init__(self, root):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.state = _State(R1_MINI, root, {"quick": True, "seed": None, "sets": []})

    def stage_dir(self, index: int):
        return self.root / self.state.stage(index)["dir"]

    def start(self, index: int, kind: str = "pretrain", steps: int = 3, done: bool = False):
        entry = self.state.stage(index)
        folder = self.stage_dir(index)
        folder.mkdir(parents=True, exist_ok=True)
        model = {"preset": "tiny", "source": "tiny"}
        if index > 0:
            prev = self.stage_dir(0) / "checkpoints" / "step-3"
            model["source"] = str(prev)
            entry["inputs"] = {"model.source": {"stage": "base", "artifact": "checkpoint",
                                                "path": str(prev.relative_to(self.root))}}
            self.state.data["lineage"].append({"from": "base", "artifact": "checkpoint", "to": entry["name"],
                                               "as": "model.source", "path": str(prev.relative_to(self.root))})
        (folder / "config.json").write_text(json.dumps({"kind": kind, "total_steps": steps, "model": model,
                                                         "datasets": [{"task": "addition", "path": None}]}))
        ckpt = str(folder / "checkpoints" / f"step-{steps}") if done else ""
        with (folder / "events.jsonl").open("w") as handle:
            for event in _events(kind, steps, done=done, checkpoint=ckpt):
                handle.write(json.dumps(event) + "\n")
        entry.update(status="running", attempts=entry["attempts"] + 1, started=1.7e9)
        self.state.data["status"] = "running"
        self.state.save()

    def complete(self, index: int, steps: int = 3):
        entry = self.state.stage(index)
        rel = str((self.stage_dir(index) / "checkpoints" / f"step-{steps}").relative_to(self.root))
        entry.update(status="completed", finished=1.7e9 + 60, artifacts={"checkpoint": rel,
                                                                          "events": entry["dir"] + "/events.jsonl"})
        self.state.save()

    def fail(self, index: int, reason: str):
        entry = self.state.stage(index)
        entry.update(status="failed", reason=reason, finished=1.7e9 + 60)
        self.state.data.update(status="failed", reason=f"stage {index + 1}/10 {entry['name']} failed: {reason}")
        self.state.save()


@pytest.fixture
def chain_run(lab, settings, tmp_path):
    settings.RUNS_DIR = tmp_path
    run = chain_create(team=lab.team, user=lab.owner, chain="r1-mini", name="mini", quick=True)
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING, attempt=1)
    run.refresh_from_db()
    return run


def test_chain_create_stores_a_chain_run_and_refuses_unknown_chains_and_server_paths(lab, chain_run):
    assert (chain_run.kind, chain_run.recipe, chain_run.quick) == ("chain", "r1-mini", True)
    assert chain_run.config == {"chain": "r1-mini", "quick": True}
    with pytest.raises(ValidationError) as err:
        chain_create(team=lab.team, user=lab.owner, chain="nope")
    assert "chain" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        chain_create(team=lab.team, user=lab.owner, chain="r1-mini", base_model="/etc/passwd")
    assert "base_model" in err.value.message_dict
    with pytest.raises(ValidationError):  # another team's checkpoint is not a reference of this team
        chain_create(team=lab.other, user=lab.outsider, chain="r1-mini", base_model=f"run:{lab.run.id}@20")
    run = chain_create(team=lab.team, user=lab.owner, chain="r1-mini", seed=3, base_model=f"run:{lab.run.id}@20")
    assert run.config["model"] == {"source": f"run:{lab.run.id}@20"} and run.config["seed"] == 3


def test_chain_args_run_the_chain_with_its_options_and_the_base_resolved(lab, chain_run, tmp_path):
    assert chain_args(chain_run, tmp_path) == ["recipe", "run", "r1-mini", "--run-dir", str(tmp_path), "--quick"]
    run = chain_create(team=lab.team, user=lab.owner, chain="r1-mini", seed=2, base_model="tiny-bpe")
    assert chain_args(run, tmp_path)[-4:] == ["--seed", "2", "--set", "base:model.source=tiny-bpe"]


def test_stage_runs_are_made_once_per_started_stage_and_take_their_stage_events(chain_run, tmp_path):
    root = Path(chain_run.run_dir)
    fake = FakeChain(root)
    assert chain_sync(chain_run, root) is not None
    assert not Run.objects.filter(parent=chain_run).exists()  # nothing started: no stage runs
    fake.start(0, "pretrain", done=True)
    tails = ChainTails()
    chain_sync(chain_run, root, tails)
    chain_sync(chain_run, root, tails)
    chain_sync(chain_run, root)  # a fresh supervisor (another attempt) reads everything again
    [base] = Run.objects.filter(parent=chain_run)
    assert (base.chain_stage, base.kind, base.status, base.name) == ("base", "pretrain", "running", "mini · 01 base")
    assert base.run_dir == str(fake.stage_dir(0))
    assert Metric.objects.filter(run=base).count() == 3 and base.ingested_seq >= 0
    fake.complete(0)
    fake.start(1, "grpo", steps=2)
    chain_sync(chain_run, root, tails)
    base.refresh_from_db()
    zero = Run.objects.get(parent=chain_run, chain_stage="zero")
    assert base.status == "completed" and base.finished_at is not None
    assert zero.status == "running" and zero.kind == "grpo" and zero.step == 2
    assert Metric.objects.filter(run=zero, name="reward").count() == 2
    assert Metric.objects.filter(run=base).count() == 3  # each stage's events in its own run, once
    assert CheckpointRecord.objects.filter(run=base, step=3).exists()
    # zero's model is base's checkpoint, as a reference: never a server path
    assert zero.config["model"]["source"] == f"run:{base.id}@3"
    assert str(tmp_path) not in json.dumps(zero.config)
    chain_run.refresh_from_db()
    assert (chain_run.step, chain_run.total_steps, chain_run.phase) == (1, 12, "zero")
    stages = chain_run.result["chain"]["stages"]
    assert [s["status"] for s in stages[:3]] == ["completed", "running", "pending"]
    assert stages[0]["artifacts"][0] == {"name": "checkpoint", "ref": f"run:{base.id}@3"}
    assert stages[1]["inputs"] == [{"as": "model.source", "stage": "base", "artifact": "checkpoint", "run": base.id,
                                    "ref": f"run:{base.id}@3"}]
    assert str(tmp_path) not in json.dumps(chain_run.result)


def test_a_stage_seen_before_its_config_json_takes_its_kind_once_the_config_appears(chain_run, tmp_path):
    root = Path(chain_run.run_dir)
    fake = FakeChain(root)
    entry = fake.state.stage(0)  # chain.json says "running" before the stage has written config.json
    entry.update(status="running", attempts=1, started=1.7e9)
    fake.state.save()
    tails = ChainTails()
    chain_sync(chain_run, root, tails)
    assert Run.objects.get(parent=chain_run, chain_stage="base").kind == "run"
    fake.start(0, "pretrain", done=True)
    chain_sync(chain_run, root, tails)
    base = Run.objects.get(parent=chain_run, chain_stage="base")
    assert base.kind == "pretrain" and base.config["kind"] == "pretrain"


def test_a_failed_stage_reason_is_the_chain_runs_message_and_its_stage_run_fails(chain_run, tmp_path):
    root = Path(chain_run.run_dir)
    fake = FakeChain(root)
    fake.start(0, done=True)
    fake.complete(0)
    fake.start(1, "grpo")
    fake.fail(1, f"no checkpoint in {root}/stages")
    chain_sync(chain_run, root, final=True, attempt=1)
    chain_run.refresh_from_db()
    zero = Run.objects.get(parent=chain_run, chain_stage="zero")
    assert zero.status == "failed" and zero.message.startswith("no checkpoint in <run>/stages")
    assert chain_run.message.startswith("stage 2/10 zero failed: no checkpoint in")
    assert str(tmp_path) not in chain_run.message
    assert chain_run.result["chain"]["status"] == "failed"


def test_a_stale_attempt_does_not_write_the_chain_run(chain_run, tmp_path):
    root = Path(chain_run.run_dir)
    FakeChain(root).start(0)
    chain_sync(chain_run, root, attempt=7)
    chain_run.refresh_from_db()
    assert chain_run.total_steps == 0 and "chain" not in chain_run.result


def test_cancel_and_resume_of_a_stage_stand_for_its_chain(lab, chain_run, tmp_path):
    root = Path(chain_run.run_dir)
    FakeChain(root).start(0)
    chain_sync(chain_run, root)
    base = Run.objects.get(parent=chain_run, chain_stage="base")
    assert run_cancel(run=base, user=lab.owner) == "cancelling"
    chain_run.refresh_from_db()
    base.refresh_from_db()
    assert chain_run.status == "cancelling" and base.status == "running"
    Run.objects.filter(id=chain_run.id).update(status="cancelled")
    assert settle_stage_runs(chain_run.id, "cancelled") == 1
    base.refresh_from_db()
    assert base.status == "cancelled"
    assert run_resume(run=base, user=lab.owner) == "queued"
    chain_run.refresh_from_db()
    assert chain_run.status == "queued"


def test_the_reaper_leaves_stage_runs_to_their_chain(lab, chain_run, tmp_path):
    from workers.reaper import reap_stale_runs

    root = Path(chain_run.run_dir)
    FakeChain(root).start(0)
    chain_sync(chain_run, root)
    Run.objects.filter(id=chain_run.id).update(heartbeat_at=None)
    reaped = dict(reap_stale_runs(60))
    assert chain_run.id in reaped
    assert Run.objects.get(parent=chain_run, chain_stage="base").status == "running"  # never requeued alone
