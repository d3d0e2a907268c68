"""The Findings page draws any chain from comparison.json's general shape (finding, metrics, verdict, table,
charts, headline, note): per run its verdict and seed, over seeds mean ± sd with the chain's verdict applied to
the means; the chain form launches one run per seed; a run's checkpoint gets a think-budget evaluation whose page
draws accuracy and length against the budget."""
import json

import pytest
from django.utils import timezone

from lab.models import CheckpointRecord, EvalResult, Run, RunStatus
from r1model.train.chains import L2S_METHODS, long2short_verdict

XSS = '<img src=x onerror="alert(1)">'


def _l2s(long, length_penalty, seed_note=""):
    """A long2short comparison in the general shape: (accuracy, token efficiency) of the long model and of the
    length-penalty RL; the other methods score as the long model."""
    scores = {"long": long, "length-penalty": length_penalty, "shortest-rejection": long, "merge": long}
    metrics = {}
    for method, (acc, eff) in scores.items():
        metrics.update({f"{method}.accuracy": acc, f"{method}.token_efficiency": eff, f"{method}.mean_length": acc / eff})
    return {
        "finding": "Long answers can be made shorter " + XSS,
        "metrics": metrics,
        "verdict": long2short_verdict(metrics),
        "table": {"columns": ["method", "accuracy"], "rows": [[m, scores[m][0]] for m in L2S_METHODS] + [[XSS, None]]},
        "charts": [{"title": "accuracy vs think budget", "x_label": "think budget (tokens)", "y_label": "pass@1",
                    "series": [{"name": f"long {XSS}", "x": [8, 16], "y": [long[0] / 2, long[0]]}]}],
        "headline": {"name": "long2short_best_token_efficiency", "value": length_penalty[1]},
        "note": "measured greedily " + seed_note,
    }


def _chain_run(lab, recipe, seed, comparison, *, name=None, quick=True):
    run = Run.objects.create(team=lab.team, name=name or f"{recipe} seed {seed}", kind="chain", recipe=recipe, quick=quick,
                             status=RunStatus.COMPLETED, created_by=lab.owner, finished_at=timezone.now(),
                             config={"chain": recipe, "quick": quick, "seed": seed})
    stage = Run.objects.create(team=lab.team, name=f"{run.name} · long", kind="grpo", parent=run, chain_stage="long",
                               status=RunStatus.COMPLETED, created_by=lab.owner)
    run.result = {"seed": seed, "commit": f"c0ffee{seed}00deadbeef", "comparison": comparison,
                  "chain": {"stages": [{"name": "base", "run": None, "status": "completed"},
                                       {"name": "long", "run": stage.id, "status": "completed"}]}}
    run.save(update_fields=["result"])
    return run, stage


@pytest.fixture
def three_seeds(lab):
    # seed 0 and 1: the length-penalty RL is more token-efficient at similar accuracy; seed 2: it lost accuracy.
    # Means: long 0.5 / 0.01, length-penalty 0.45 / 0.03 → reproduced on the means though seed 2 alone is not.
    return [_chain_run(lab, "long2short", 0, _l2s((0.5, 0.01), (0.5, 0.03))),
            _chain_run(lab, "long2short", 1, _l2s((0.5, 0.01), (0.5, 0.03))),
            _chain_run(lab, "long2short", 2, _l2s((0.5, 0.01), (0.35, 0.03), seed_note="seed two"))]


def _charts(html: str) -> list[dict]:
    return json.loads(html.split('id="findings-charts" type="application/json">')[1].split("</script>")[0])


def test_findings_page_draws_a_general_comparison_with_three_seeds_and_the_verdict_on_means(lab, three_seeds, owner_client):
    html = owner_client.get("/findings/").content.decode()
    assert 'id="finding-long2short"' in html and "3 completed runs" in html
    assert "Long answers can be made shorter &lt;img" in html and XSS not in html  # the finding, escaped
    # each seed: its own verdict, seed, commit, stage run link
    assert html.count("Verdict: reproduced") == 2 and html.count("Verdict: not reproduced") == 1
    assert "length-penalty: accuracy 0.35 is 0.15 below the long model&#x27;s" in html
    for seed, (run, stage) in enumerate(three_seeds):
        assert f'href="/runs/{run.id}/chain/"' in html and f"c0ffee{seed}00dea" in html
        assert f'href="/runs/{stage.id}/"' in html
    # over the seeds: mean ± sd of each metric and the chain's verdict on the means
    assert "Over seeds 2, 1, 0" in html or "Over seeds 0, 1, 2" in html
    assert "length-penalty.accuracy</td><td class=\"num\">0.45 ± 0.087 (n=3)" in html
    assert "Verdict on the means of 3 seeds: reproduced</strong> — length-penalty: token efficiency 0.0300 vs 0.0100 at accuracy 0.45 (long 0.50)" in html
    # the table and the headline of each run
    assert "long2short_best_token_efficiency" in html and "&lt;img src=x" in html
    # charts: one per title, every run's series named by run and seed; names stay data for the script
    charts = _charts(html)
    curve = next(c for c in charts if c["title"] == "accuracy vs think budget")
    assert len(curve["series"]) == 3 and all(XSS in s["name"] and " · seed " in s["name"] for s in curve["series"])
    assert "<img" not in html.split('id="findings-charts"')[1].split("</script>")[0]  # json_script escapes <
    assert "Re-run on my model" in html


def test_seeds_of_another_setup_are_not_averaged_together(lab, owner_client):
    _chain_run(lab, "long2short", 0, _l2s((0.5, 0.01), (0.5, 0.03)), quick=True)
    _chain_run(lab, "long2short", 1, _l2s((0.5, 0.01), (0.5, 0.03)), quick=False)
    html = owner_client.get("/findings/").content.decode()
    assert "2 completed runs" in html and "Verdict on the means" not in html


def test_a_stored_comparison_without_metrics_still_renders(lab, owner_client):
    old_l2s = {"headline": "token_efficiency", "best": "merge", "note": "old note",
               "methods": {"long": {"accuracy": 0.5, "mean_length": 40.0, "token_efficiency": 0.0125},
                           "length-penalty": {"accuracy": 0.5, "mean_length": 10.0, "token_efficiency": 0.05}}}
    _chain_run(lab, "long2short", 0, old_l2s, name="old long2short")
    _chain_run(lab, "r1-mini", 3, {"baseline": {"accuracy": 0.5}, "final": {"accuracy": 0.5}, "note": "x"},
               name="old mini without rates")
    _chain_run(lab, "no-such-chain", 1, {"note": "from a chain this lab no longer has"}, name="gone chain")
    page = owner_client.get("/findings/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "old long2short" in html and "old note" in html
    assert "Verdict: reproduced</strong> — length-penalty: token efficiency 0.0500 vs 0.0125" in html
    assert "merge: not evaluated" not in html  # reproduced: only what held is listed
    assert "old mini without rates" in html and "accuracy or format rate missing" in html
    assert "gone chain" in html and "no metrics stored for this run" in html
    chain = Run.objects.get(name="old long2short")
    assert "Verdict: reproduced" in owner_client.get(f"/runs/{chain.id}/chain/").content.decode()


def test_chain_page_shows_the_general_comparison_with_its_charts(lab, three_seeds, owner_client):
    run, _ = three_seeds[2]
    html = owner_client.get(f"/runs/{run.id}/chain/").content.decode()
    assert "Verdict: not reproduced" in html and "seed two" in html and XSS not in html
    assert "Verdict rule." in html and "at accuracy at most 0.05 below the long model" in html
    assert [c["title"] for c in _charts(html)] == ["accuracy vs think budget"]
    assert 'href="/findings/#finding-long2short"' in html


def test_rerun_opens_the_form_with_the_chain_chosen_and_the_base_model_focused(lab, three_seeds, owner_client):
    html = owner_client.get("/findings/").content.decode()
    assert 'href="/chains/new/?chain=long2short&amp;focus=base_model"' in html
    form = owner_client.get("/chains/new/?chain=long2short&focus=base_model").content.decode()
    assert '<option value="long2short" selected>' in form
    assert 'data-chain="r1-mini" hidden' in form and 'data-chain="long2short">' in form  # the script swaps plans
    assert 'name="base_model"' in form and "autofocus" in form.split('id="base_model"')[1].split(">")[0]
    assert "autofocus" not in owner_client.get("/chains/new/?chain=long2short").content.decode()


def test_one_launch_with_three_seeds_queues_three_chain_runs(lab, owner_client, settings, tmp_path):
    settings.RUNS_DIR = tmp_path
    made = owner_client.post("/chains/new/", {"chain": "r1-mini", "name": "sweep", "quick": "1", "seed": "0, 1,2",
                                              "base_model": "tiny-bpe", "client_token": "tok-1"})
    runs = list(Run.objects.filter(kind="chain", name__startswith="sweep").order_by("id"))
    assert [r.config["seed"] for r in runs] == [0, 1, 2] and [r.name for r in runs] == [
        "sweep · seed 0", "sweep · seed 1", "sweep · seed 2"]
    assert all(r.config["model"]["source"] == "tiny-bpe" and r.status == "queued" for r in runs)
    assert made["Location"] == f"/runs/{runs[0].id}/chain/"
    assert "seed 0 · commit" in owner_client.get(made["Location"]).content.decode()  # queued: from its config
    # the same POST again (a double click) makes no more runs
    owner_client.post("/chains/new/", {"chain": "r1-mini", "name": "sweep", "quick": "1", "seed": "0,1,2",
                                       "base_model": "tiny-bpe", "client_token": "tok-1"})
    assert Run.objects.filter(kind="chain", name__startswith="sweep").count() == 3
    for bad, message in (("0,0", "each seed once"), ("1,x", "whole numbers"), ("-1", "whole numbers"),
                         (",".join(str(i) for i in range(11)), "at most 10")):
        page = owner_client.post("/chains/new/", {"chain": "r1-mini", "name": "bad", "seed": bad})
        assert page.status_code == 400 and message in page.content.decode()
    bad_base = owner_client.post("/chains/new/", {"chain": "r1-mini", "name": "bad", "seed": "0,1",
                                                  "base_model": "/etc/passwd"})
    assert bad_base.status_code == 400 and not Run.objects.filter(name__startswith="bad").exists()


# ------------------------------------------------------------------------------------------- think budgets

@pytest.fixture
def trained(lab, settings, tmp_path):
    settings.RUNS_DIR = tmp_path
    run = Run.objects.create(team=lab.team, project=lab.project, name="grpo <i>run</i>", kind="grpo",
                             status=RunStatus.COMPLETED, created_by=lab.owner, run_dir=str(tmp_path / "run-x"),
                             config={"kind": "grpo", "datasets": [{"task": "addition", "path": None, "eval_size": 8}],
                                     "evaluation": {"benchmarks": ["heldout"], "max_new_tokens": 48}})
    CheckpointRecord.objects.create(run=run, seq=5, step=40, path=str(tmp_path / "run-x" / "checkpoints" / "step-40"))
    return run


def test_think_budget_launch_creates_an_evaluate_run_with_the_budgets(lab, trained, owner_client):
    run_page = owner_client.get(f"/runs/{trained.id}/").content.decode()
    assert f'href="/runs/{trained.id}/think-budget/?step=40"' in run_page
    form = owner_client.get(f"/runs/{trained.id}/think-budget/?step=40").content.decode()
    assert "run:%d@40" % trained.id in form and "below 48" in form
    made = owner_client.post(f"/runs/{trained.id}/think-budget/", {"step": "40", "budgets": "16, 8,32,8"})
    child = Run.objects.get(parent=trained, kind="evaluate")
    assert made["Location"] == f"/runs/{child.id}/"
    assert child.config["evaluation"]["think_budgets"] == [8, 16, 32]
    assert child.config["model"]["source"] == f"run:{trained.id}@40" and child.status == "queued"
    assert child.config["datasets"][0]["task"] == "addition" and child.config["evaluation"]["benchmarks"] == ["heldout"]
    assert child.parent_step is None and "think budgets @ step 40" in child.name


@pytest.mark.parametrize("budgets, message", [
    ("0", "0 is not a budget"), ("-4", "-4 is not a budget"), ("1", "below the answer tags"),
    ("8,abc", "is not a whole number"), ("", "at least one"), ("8,48", "not below the evaluation&#x27;s max_new_tokens"),
])
def test_bad_budgets_are_refused_naming_the_field(lab, trained, owner_client, budgets, message):
    page = owner_client.post(f"/runs/{trained.id}/think-budget/", {"step": "40", "budgets": budgets})
    html = page.content.decode()
    assert page.status_code == 400 and "think budgets:" in html and message in html
    assert 'aria-invalid="true"' in html and not Run.objects.filter(kind="evaluate").exists()


def test_think_budget_refuses_reviewers_outsiders_and_missing_checkpoints(lab, trained, teammate_client, outsider_client,
                                                                         owner_client):
    assert teammate_client.post(f"/runs/{trained.id}/think-budget/", {"step": "40", "budgets": "8"}).status_code == 403
    assert "think-budget curve" not in teammate_client.get(f"/runs/{trained.id}/").content.decode()
    assert outsider_client.get(f"/runs/{trained.id}/think-budget/").status_code == 404
    missing = owner_client.post(f"/runs/{trained.id}/think-budget/", {"step": "7", "budgets": "8"})
    assert missing.status_code == 400 and "no checkpoint at step 7" in missing.content.decode()
    assert not Run.objects.filter(kind="evaluate").exists()


def test_the_evaluate_runs_page_draws_accuracy_and_length_against_the_budget(lab, trained, owner_client):
    owner_client.post(f"/runs/{trained.id}/think-budget/", {"step": "40", "budgets": "8,16"})
    child = Run.objects.get(parent=trained, kind="evaluate")
    assert 'id="think-budget-curve"' not in owner_client.get(f"/runs/{child.id}/").content.decode()  # nothing yet
    seq = iter(range(100))
    for benchmark, acc, length in (("heldout", 0.75, 30.0), ("heldout@think<=8", 0.25, 12.0),
                                   ("heldout@think<=16", 0.5, 20.0)):
        EvalResult.objects.create(run=child, seq=next(seq), step=0, benchmark=benchmark, metric="pass@1", value=acc, n=8)
        EvalResult.objects.create(run=child, seq=next(seq), step=0, benchmark=benchmark, metric="mean_length",
                                  value=length, n=8)
    html = owner_client.get(f"/runs/{child.id}/").content.decode()
    assert 'id="think-budget-curve"' in html and "lab/findings.js" in html
    charts = {c["title"]: c for c in _charts(html)}
    accuracy = charts["accuracy vs think budget"]["series"]
    assert accuracy[0] == {"name": "heldout", "x": [8, 16], "y": [0.25, 0.5]}
    assert accuracy[1]["dash"] and accuracy[1]["y"] == [0.75, 0.75]  # the unbudgeted evaluation
    assert charts["mean length vs think budget"]["series"][0]["y"] == [12.0, 20.0]
    assert "<td class=\"num\">none</td>" in html  # the table's unbudgeted row
