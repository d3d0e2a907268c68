"""lab_import_chain: a chain directory made by the CLI becomes a chain run with a run per stage, shown on the
Findings page like a chain the lab ran; importing again adds nothing; bad folders are refused by path."""
import json
import shutil
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from lab.models import CheckpointRecord, EvalResult, Metric, Project, Run, RunLog, RunStatus, Trace
from lab.services.chains import chain_import
from tests.lab.conftest import _client_for
from tests.trainer_cli import run_quick

CHAIN = "language-mixing"  # the quickest chain at --quick that writes a comparison.json with a verdict
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory):
    """A real chain directory: `python -m r1model recipe run language-mixing --quick --seed 0 --run-dir D`."""
    run_dir = tmp_path_factory.mktemp("cli") / "lm-seed0"
    run_quick(CHAIN, run_dir, "--seed", "0")
    return run_dir


def _state(run_dir: Path) -> dict:
    return json.loads((run_dir / "chain.json").read_text())


def _counts(team) -> dict:
    return {model.__name__: model.objects.filter(run__team=team).count()
            for model in (Metric, Trace, EvalResult, CheckpointRecord, RunLog)} | {"Run": Run.objects.filter(team=team).count()}


def test_import_makes_a_chain_run_with_a_run_per_stage_and_its_comparison(lab, chain_dir, capsys):
    state = _state(chain_dir)
    outcome = json.loads((chain_dir / "comparison.json").read_text())["verdict"]["outcome"]
    call_command("lab_import_chain", str(chain_dir), "--team", "alpha", "--project", "cli")
    parent = Run.objects.get(team=lab.team, kind="chain")
    out = capsys.readouterr().out
    assert f"imported chain run {parent.id}" in out and f"verdict {outcome}" in out
    assert f"{len(state['stages'])}/{len(state['stages'])} stages completed" in out
    assert parent.recipe == CHAIN and parent.quick and parent.project.name == "cli"
    assert parent.config == {"chain": CHAIN, "quick": True, "seed": 0}
    assert parent.status == RunStatus.COMPLETED and parent.finished_at is not None and parent.worker_id is None
    assert parent.step == parent.total_steps == len(state["stages"])
    # a child per stage, with chain.json's statuses and the stage's events
    children = {c.chain_stage: c for c in Run.objects.filter(parent=parent)}
    assert set(children) == {s["name"] for s in state["stages"]}
    for entry in state["stages"]:
        assert children[entry["name"]].status == {"completed": RunStatus.COMPLETED}[entry["status"]]
        assert children[entry["name"]].run_dir == str(chain_dir / entry["dir"])
    assert Metric.objects.filter(run=children["zero"]).exists()
    assert EvalResult.objects.filter(run=children["eval-zero"]).exists()
    assert CheckpointRecord.objects.filter(run=children["base"]).exists()
    # lineage between the child runs, the comparison and the seed stored as for a lab-launched chain
    result = parent.result
    lineage = {(link["from_run"], link["to_run"]) for link in result["chain"]["lineage"]}
    assert (children["base"].id, children["zero"].id) in lineage
    assert (children["zero"].id, children["eval-zero"].id) in lineage
    assert result["comparison"]["verdict"]["outcome"] == outcome and result["seed"] == 0
    # the commit of the code that ran the stages, as chain.json recorded it (the folder itself is in no checkout)
    from r1model.train.chains import code_commit

    assert result["commit"] == state["code"]["commit"] == code_commit()["commit"]
    assert all(entry["code"] == state["code"] for entry in state["stages"]) and "commit_at_import" not in result
    # no server path in a child's config
    assert str(chain_dir) not in json.dumps(children["zero"].config)


def test_a_chain_directory_without_recorded_code_shows_the_importing_checkouts_commit_marked(lab, chain_dir,
                                                                                            tmp_path, teammate_client):
    old = tmp_path / "old-chain"
    shutil.copytree(chain_dir, old)
    state = _state(old)
    state.pop("code")
    for entry in state["stages"]:
        entry.pop("code")
    (old / "chain.json").write_text(json.dumps(state))
    run = chain_import(team=lab.team, run_dir=old).run
    assert run.result["commit"] == "unknown" and run.result["commit_at_import"] is True  # tmp_path: no checkout
    row = teammate_client.get("/findings/").content.decode().split(f'<tr data-run="{run.id}">')[1].split("</tr>")[0]
    assert ">at import</span>" in row
    # a recorded commit (with local changes) is shown as recorded, and the mark goes
    state["code"] = {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True}
    (old / "chain.json").write_text(json.dumps(state))
    run = chain_import(team=lab.team, run_dir=old).run
    assert run.result["commit"] == state["code"]["commit"] and "commit_at_import" not in run.result
    html = teammate_client.get(f"/runs/{run.id}/chain/").content.decode()
    assert 'title="0123456789abcdef0123456789abcdef01234567"' in html and "+ local changes" in html
    assert "at import" not in html


def test_findings_page_lists_the_imported_chain_with_its_verdict(lab, chain_dir, teammate_client):
    run = chain_import(team=lab.team, run_dir=chain_dir).run
    outcome = json.loads((chain_dir / "comparison.json").read_text())["verdict"]["outcome"]
    html = teammate_client.get("/findings/").content.decode()
    assert f'id="finding-{CHAIN}"' in html
    row = html.split(f'<tr data-run="{run.id}">')[1].split("</tr>")[0]
    assert f"<td>{outcome}</td>" in row and f'href="/runs/{run.id}/chain/"' in row
    zero = Run.objects.get(parent=run, chain_stage="zero")
    assert f'href="/runs/{zero.id}/"' in row
    assert str(chain_dir) not in html
    assert teammate_client.get(f"/runs/{run.id}/chain/").status_code == 200


def test_importing_again_adds_nothing(lab, chain_dir, capsys):
    first = chain_import(team=lab.team, run_dir=chain_dir, name="first")
    assert first.created and first.new_stage_runs == len(_state(chain_dir)["stages"])
    before = _counts(lab.team)
    call_command("lab_import_chain", str(chain_dir), "--team", "alpha")
    assert "updated chain run" in capsys.readouterr().out
    again = chain_import(team=lab.team, run_dir=str(chain_dir) + "/")
    assert not again.created and again.new_stage_runs == 0 and again.run.id == first.run.id
    assert again.run.name == "first" and again.run.status == RunStatus.COMPLETED
    assert _counts(lab.team) == before


def test_a_failed_or_unfinished_chain_keeps_its_state_and_is_never_left_running(lab, chain_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(chain_dir, copy, ignore=shutil.ignore_patterns("*.safetensors", "*.pt"))
    state = _state(copy)
    state["status"], state["reason"] = "failed", f"stage 5/5 eval-language-rl failed: {copy}/x missing"
    state["stages"][-1].update(status="failed", reason=f"{copy}/x missing")
    (copy / "chain.json").write_text(json.dumps(state))
    run = chain_import(team=lab.team, run_dir=copy).run
    assert run.status == RunStatus.FAILED and str(copy) not in run.message and "eval-language-rl" in run.message
    assert Run.objects.get(parent=run, chain_stage="eval-language-rl").status == RunStatus.FAILED
    assert "comparison" not in run.result  # a comparison is read only from a completed chain
    # still running on the command line: shown cancelled (a running run without a worker would be requeued)
    state["status"], state["reason"] = "running", None
    state["stages"][-1].update(status="running", reason=None)
    (copy / "chain.json").write_text(json.dumps(state))
    run = chain_import(team=lab.team, run_dir=copy).run
    assert run.status == RunStatus.CANCELLED and "running" in run.message and run.dispatched_at is None
    assert Run.objects.get(parent=run, chain_stage="eval-language-rl").status == RunStatus.CANCELLED
    assert Run.objects.filter(team=lab.team, kind="chain").count() == 1


def test_folders_that_are_not_chains_are_refused_by_path(lab, chain_dir, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(CommandError, match=f"{plain}/chain.json: missing"):
        call_command("lab_import_chain", str(plain), "--team", "alpha")
    with pytest.raises(CommandError, match="--team"):
        call_command("lab_import_chain", str(chain_dir), "--team", "nope")
    bad = tmp_path / "bad"
    bad.mkdir()
    for text, message in (("{not json", "not valid JSON"),
                          (json.dumps({**_state(chain_dir), "chain": "nope"}), "unknown chain 'nope'"),
                          (json.dumps({**_state(chain_dir), "stages": "x"}), "stages: a list"),
                          (json.dumps({**_state(chain_dir), "options": {"quick": "yes"}}), "options.quick")):
        (bad / "chain.json").write_text(text)
        with pytest.raises(ValidationError, match=message) as caught:
            chain_import(team=lab.team, run_dir=bad)
        assert str(bad / "chain.json") in caught.value.messages[0]
    with pytest.raises(ValidationError, match="not a project of this team"):
        chain_import(team=lab.team, run_dir=chain_dir, project=Project.objects.create(team=lab.other, name="theirs"))
    assert not Run.objects.filter(kind="chain").exists()


def test_another_team_cannot_see_the_imported_chain(lab, chain_dir):
    run = chain_import(team=lab.team, run_dir=chain_dir).run
    child = Run.objects.filter(parent=run).first()
    outsider = _client_for(lab.outsider)
    for url in (f"/runs/{run.id}/", f"/runs/{run.id}/chain/", f"/runs/{child.id}/", f"/runs/{child.id}/traces/"):
        assert outsider.get(url).status_code == 404, url
    assert f'data-run="{run.id}"' not in outsider.get("/findings/").content.decode()
    # the same folder imported by the other team is that team's own run
    theirs = chain_import(team=lab.other, run_dir=chain_dir, user=lab.outsider).run
    assert theirs.id != run.id and theirs.team_id == lab.other.id


def test_the_imported_run_is_never_running_while_its_stages_are_stored(lab, chain_dir, monkeypatch):
    """The reaper requeues a running run that no worker holds: while chain_sync stores the stages (seconds for a
    big chain) the new parent must already carry its final status, or a worker runs the folder's chain again."""
    import lab.services.chains as chains

    seen = []
    real_sync = chains.chain_sync

    def sync(parent, **kwargs):
        seen.append(Run.objects.get(id=parent.id).status)
        return real_sync(parent, **kwargs)

    monkeypatch.setattr(chains, "chain_sync", sync)
    run = chain_import(team=lab.team, run_dir=chain_dir).run
    assert seen == [RunStatus.COMPLETED] and run.status == RunStatus.COMPLETED and run.dispatched_at is None
