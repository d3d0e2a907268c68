"""The chain page, the Findings page and the chain form: what a teammate sees, what an outsider cannot."""
import json
from pathlib import Path

import pytest

from lab.models import EvalResult, Run, RunStatus
from lab.services.chains import chain_create, chain_sync
from r1model.train.chains import R1_MINI
from tests.lab.conftest import _client_for
from tests.lab.test_lab_chains import FakeChain

COMPARISON = {
    "baseline": {"stage": "zero", "accuracy": 0.5, "format_rate": 0.25, "mixing_rate": 0.0, "mean_length": 40.0},
    "final": {"stage": "final-rl", "accuracy": 0.5, "format_rate": 1.0, "mixing_rate": 0.0, "mean_length": 30.0},
    "difference": {"accuracy": 0.0, "format_rate": 0.75, "mixing_rate": 0.0, "mean_length": -10.0},
    "note": "mixing rate: ...; the model's tokenizer is 'char', which cannot write non-ASCII text",
}


def _completed_chain(lab, name: str, seed=None, comparison=COMPARISON) -> Run:
    run = chain_create(team=lab.team, user=lab.owner, chain="r1-mini", name=name, quick=True, seed=seed)
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING, attempt=1)
    root = Path(run.run_dir)
    fake = FakeChain(root)
    fake.state.data["options"]["seed"] = seed
    for index in range(len(R1_MINI.stages)):
        fake.start(index, "grpo" if index else "pretrain", done=True)
        fake.complete(index)
    fake.state.data["status"] = "completed"
    fake.state.save()
    (root / "comparison.json").write_text(json.dumps(comparison))
    chain_sync(run, root, final=True, commit="abc123def4567")
    Run.objects.filter(id=run.id).update(status=RunStatus.COMPLETED)
    run.refresh_from_db()
    return run


@pytest.fixture
def chains(lab, settings, tmp_path):
    settings.RUNS_DIR = tmp_path
    return [_completed_chain(lab, "mini <b>one</b>", seed=1),
            _completed_chain(lab, "mini two", seed=2, comparison={**COMPARISON, "difference": {
                **COMPARISON["difference"], "format_rate": 0.5}})]


def test_chain_page_lists_stages_with_runs_artifacts_and_lineage(lab, chains, owner_client, tmp_path):
    run = chains[0]
    page = owner_client.get(f"/runs/{run.id}/chain/")
    assert page.status_code == 200
    html = page.content.decode()
    base = Run.objects.get(parent=run, chain_stage="base")
    assert "12 of 12 stages completed" in html and f"run:{base.id}@3" in html
    assert f'href="/runs/{base.id}/"' in html and 'id="chain-lineage"' in html
    assert "mini &lt;b&gt;one&lt;/b&gt;" in html and "<b>one</b>" not in html
    assert str(tmp_path) not in html
    assert "Verdict: reproduced" in html
    # a stage's page points to its chain; its chain page is the chain's
    assert f'href="/runs/{run.id}/chain/"' in owner_client.get(f"/runs/{base.id}/").content.decode()
    assert owner_client.get(f"/runs/{base.id}/chain/")["Location"] == f"/runs/{run.id}/chain/"


def test_outsiders_get_404_and_see_no_findings(lab, chains):
    outsider = _client_for(lab.outsider)
    assert outsider.get(f"/runs/{chains[0].id}/chain/").status_code == 404
    html = outsider.get("/findings/").content.decode()
    assert "No completed chain runs yet" in html and "mini two" not in html


def test_findings_page_shows_each_run_verdict_seeds_commit_and_stage_links(lab, chains, teammate_client):
    zero = Run.objects.get(parent=chains[0], chain_stage="zero")
    EvalResult.objects.create(run=zero, seq=999, step=9, benchmark="heldout", metric="pass@1", value=0.75, n=4)
    page = teammate_client.get("/findings/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="finding-r1-mini"' in html and "2 completed runs" in html
    # stored before the general shape (no `metrics`): read through r1-mini's own reader, verdict included
    assert html.count("Verdict: reproduced") == 2 and "Verdict on the means of 2 seeds: reproduced" in html
    assert "0.625 ± 0.177 (n=2)" in html  # format rate difference over seeds 1 and 2
    assert "abc123def4567" in html or "abc123def4" in html
    assert f'href="/runs/{zero.id}/"' in html
    charts = json.loads(html.split('id="findings-charts" type="application/json">')[1].split("</script>")[0])
    assert charts[0]["series"][0]["x"][1] == "zero"
    assert 0.75 in [s["y"][1] for s in charts[0]["series"]]
    assert "Re-run on my model" not in html  # a reviewer cannot start runs
    assert "Findings</a>" in html


def test_a_seed_run_again_counts_once_in_the_means_and_the_older_run_is_named(lab, chains, teammate_client):
    again = _completed_chain(lab, "mini one again", seed=1, comparison={**COMPARISON, "difference": {
        **COMPARISON["difference"], "format_rate": -0.5}})
    html = teammate_client.get("/findings/").content.decode()
    assert "3 completed runs" in html and "Over seeds 1, 2" in html and "Over seeds 1, 1, 2" not in html
    assert "Verdict on the means of 2 seeds" in html and "· 2 runs · commit <code" in html  # both at abc123def4567
    assert "0.000 ± 0.707 (n=2)" in html or "0 ± 0.707 (n=2)" in html  # format rate: the new seed 1 (-0.5) and seed 2 (0.5)
    assert f"run {chains[0].id} (seed 1, superseded by run {again.id})" in html
    charts = json.loads(html.split('id="findings-charts" type="application/json">')[1].split("</script>")[0])
    assert {s["name"] for s in charts[0]["series"]} == {f"run {again.id} · seed 1", f"run {chains[1].id} · seed 2"}
    # a run with other --set changes is another setup, not a seed of this one
    Run.objects.filter(id=again.id).update(config={**again.config, "sets": [["zero:total_steps", 3]]})
    html = teammate_client.get("/findings/").content.decode()
    assert "superseded" not in html and "Verdict on the means of 2 seeds" in html
    assert "0.625 ± 0.177 (n=2)" in html  # seeds 1 and 2 of the first setup again


def test_verdict_names_what_did_not_reproduce(lab, settings, tmp_path, owner_client):
    settings.RUNS_DIR = tmp_path
    worse = {**COMPARISON, "difference": {"accuracy": -0.25, "format_rate": -0.1, "mixing_rate": 0.2, "mean_length": 0}}
    _completed_chain(lab, "worse", comparison=worse)
    html = owner_client.get("/findings/").content.decode()
    assert "Verdict: not reproduced</strong> — format rate fell by 0.10; mixing rate rose by 0.20; accuracy fell by 0.25" in html
    assert 'href="/chains/new/?chain=r1-mini&amp;focus=base_model"' in html


def test_chain_form_starts_a_chain_and_refuses_server_paths_and_reviewers(lab, owner_client, teammate_client):
    assert 'id="chain-plan"' in owner_client.get("/chains/new/?chain=r1-mini").content.decode()
    bad = owner_client.post("/chains/new/", {"chain": "r1-mini", "base_model": "/data/secret", "quick": "1"})
    assert bad.status_code == 400 and "server paths are not accepted" in bad.content.decode()
    assert teammate_client.post("/chains/new/", {"chain": "r1-mini"}).status_code == 403
    made = owner_client.post("/chains/new/", {"chain": "r1-mini", "name": "mine", "quick": "1", "seed": "4",
                                              "base_model": "tiny-bpe"})
    run = Run.objects.get(name="mine")
    assert made["Location"] == f"/runs/{run.id}/chain/"
    assert (run.kind, run.recipe, run.status, run.config["seed"], run.config["model"]["source"]) == (
        "chain", "r1-mini", "queued", 4, "tiny-bpe")
    page = owner_client.get(made["Location"]).content.decode()
    assert "0 of 12 stages completed" in page and "cold-start-data" in page  # the plan, all pending


def test_an_old_r1_mini_comparison_is_judged_by_the_chain_verdict():
    from lab.selectors.chains import read_comparison

    same = read_comparison("r1-mini", {"difference": {"accuracy": 0.0, "format_rate": 0.0, "mixing_rate": 0.0}})
    assert same["verdict"]["outcome"] == "inconclusive" and "no better" in same["verdict"]["reasons"][0]
    better = read_comparison("r1-mini", {"difference": {"accuracy": 0.0, "format_rate": 0.0, "mixing_rate": -0.2}})
    assert better["verdict"]["outcome"] == "reproduced" and better["metrics"]["difference.mixing_rate"] == -0.2


def test_overlaid_charts_name_each_runs_series_and_draw_a_common_target_line_once():
    from types import SimpleNamespace

    from lab.selectors.chains import overlay_charts

    def row(run_id, seed, curve):
        series = [{"name": "Zero", "x": [0, 10], "y": curve}, {"name": "target 0.3", "x": [0, 60], "y": [0.3, 0.3]}]
        return {"run": SimpleNamespace(id=run_id), "seed": seed,
                "result": {"charts": [{"title": "accuracy", "x_label": "RL step", "y_label": "pass@1", "series": series}]}}

    (chart,) = overlay_charts([row(1, 0, [0.0, 0.4]), row(2, 1, [0.0, 0.5])])
    assert [s["name"] for s in chart["series"]] == ["run 1 · seed 0 · Zero", "target 0.3", "run 2 · seed 1 · Zero"]
    assert [bool(s.get("reference")) for s in chart["series"]] == [False, True, False]  # drawn dashed
    # a measured curve is each run's own even when the runs' are equal; a reference line that differs, too
    other = row(3, 2, [0.1, 0.2])
    other["result"]["charts"][0]["series"][1]["y"] = [0.5, 0.5]
    assert len(overlay_charts([row(1, 0, [0.0, 0.4]), row(2, 1, [0.0, 0.4])])[0]["series"]) == 3
    (chart,) = overlay_charts([row(1, 0, [0.0, 0.4]), other])
    assert [s["name"] for s in chart["series"]] == ["run 1 · seed 0 · Zero", "run 1 · seed 0 · target 0.3",
                                                    "run 3 · seed 2 · Zero", "run 3 · seed 2 · target 0.3"]
