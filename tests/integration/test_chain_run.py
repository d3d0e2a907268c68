"""A chain launched through the lab on a real worker: `recipe run r1-mini --quick` (the real trainer, ~25 s of
one CPU thread for the training), every stage a child run that completes with its own events, and the chain on
the Findings page."""
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_r1_mini_quick_chain_runs_through_the_lab_and_shows_on_findings(fs_lab):
    lab = fs_lab
    lab.start_worker(pool="solo")
    [chain_id] = lab.django("""
        from django.contrib.auth import get_user_model
        from django.db import transaction
        from lab.models import Membership, Role, Team
        from lab.services.chains import chain_create
        team = Team.objects.create(slug="t", name="T")
        user = get_user_model().objects.create_user("owner", password="owner-password-1")
        Membership.objects.create(team=team, user=user, role=Role.ADMIN)
        with transaction.atomic():
            run = chain_create(team=team, user=user, chain="r1-mini", name="mini", quick=True)
        result = [run.id]
    """)
    state = lab.wait_finished(chain_id, timeout=600)
    assert state["status"] == "completed", state["message"] + "\n" + lab.worker_log()[-3000:]
    stages = lab.query("SELECT chain_stage, status, kind, ingested_seq, run_dir FROM lab_run WHERE parent_id = ? "
                       "ORDER BY id", (chain_id,))
    assert [s[0] for s in stages] == ["base", "zero", "zero-samples", "cold-start-data", "cold-start-sft",
                                      "reasoning-rl", "rejection-sampling", "sft-data", "sft", "final-rl",
                                      "eval-zero", "eval-r1-mini"]
    assert all(s[1] == "completed" for s in stages), stages
    assert [s[2] for s in stages][:4] == ["pretrain", "grpo", "rejection_sampling", "data"]
    assert all(s[3] >= 0 for s in stages if s[2] != "data")  # each run stage's events stored in its own run
    page = lab.django(f"""
        from django.contrib.auth import get_user_model
        from django.test import Client
        from lab.models import Run
        client = Client(HTTP_HOST="localhost")
        client.force_login(get_user_model().objects.get(username="owner"))
        run = Run.objects.get(id={chain_id})
        findings = client.get("/findings/")
        chain = client.get("/runs/{chain_id}/chain/")
        result = {{"findings": findings.content.decode(), "chain": chain.content.decode(), "codes":
                  [findings.status_code, chain.status_code], "step": [run.step, run.total_steps],
                  "comparison": run.result.get("comparison"), "commit": run.result.get("commit")}}
    """)
    assert page["codes"] == [200, 200] and page["step"] == [12, 12]
    assert page["comparison"]["baseline"]["stage"] == "eval-zero" and page["comparison"]["final"]["stage"] == "eval-r1-mini"
    assert page["commit"]
    assert 'id="finding-r1-mini"' in page["findings"] and "Verdict" in page["findings"]
    assert "12 of 12 stages completed" in page["chain"]
    assert str(lab.data) not in page["findings"] + page["chain"]
