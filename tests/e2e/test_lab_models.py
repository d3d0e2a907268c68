"""The Models page in real headless Chromium: register a hub id, see it listed beside an admin-registered
folder model and the run checkpoints with their lineage, then start a run from it.
Screenshots: tests/artifacts/lab-models-*.png."""
import pytest

from tests.e2e.lab_browser import chromium_page, login, make_member, shot
from tests.lab.test_lab_models import make_folder

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "browser-password-1"


def test_register_a_hub_model_and_start_a_run_from_it(live_server, db, tmp_path, settings):
    from lab.models import CheckpointRecord, RegisteredModel, Run
    from lab.services.model_registry import model_register_folder

    user, team = make_member("mia", PASSWORD, slug="models", team_name="Model lab")
    settings.LAB_MODEL_ROOTS = {"shared": str(tmp_path / "root")}
    make_folder(tmp_path / "root" / "qwen-moe", moe=True, sharded=True)
    local = model_register_folder(team=team, name="local-moe", root="shared", folder="qwen-moe")
    base = Run.objects.create(team=team, name="zero-on-local", created_by=user, status="completed",
                              config={"kind": "grpo", "model": {"source": local.reference}})
    CheckpointRecord.objects.create(run=base, seq=1, step=40, path="checkpoints/step-40")
    Run.objects.create(team=team, name="sft-next", created_by=user, parent=base, parent_step=40, kind="sft",
                       config={"kind": "sft", "model": {"source": f"run:{base.id}@40"}})
    url = live_server.url
    with chromium_page(url) as page:
        login(page, url, "mia", PASSWORD)
        page.click("header nav >> text=Models")
        page.wait_for_selector("#register-model")
        page.fill("#id_name", "qwen-small")
        page.fill("#id_hub_id", "Qwen/Qwen2.5-0.5B-Instruct@main")
        page.click("#register-model button[type=submit]")
        model = RegisteredModel.objects.get(team=team, name="qwen-small")
        row = page.locator(f"#model-{model.id}")
        row.wait_for()
        assert "not downloaded yet" in row.inner_text() and "Qwen/Qwen2.5-0.5B-Instruct@main" in row.inner_text()
        local_row = page.locator(f"#model-{local.id}").inner_text()
        assert "Qwen2MoeForCausalLM" in local_row and "estimate" in local_row and "zero-on-local" in local_row
        assert str(tmp_path) not in page.inner_text("main")
        lineage = page.locator(f"#checkpoint-{base.id}-40").inner_text()
        assert "local-moe" in lineage and "zero-on-local" in lineage and "sft-next" in lineage
        assert page.locator("header nav a.active").inner_text() == "Models"
        shot(page, "lab-models-page")
        row.locator("a.start-from").click()
        page.wait_for_url(f"{url}/runs/new/?model=model%3A{model.id}")
        page.wait_for_selector("form")
        shot(page, "lab-models-start-run")
        assert page.locator("main h1").inner_text() == "New run"
        assert page.input_value("[name='cfg-model.source']") == f"model:{model.id}"  # the form starts on that model
        assert page.lab_events["console_errors"] == [] and page.lab_events["offsite_requests"] == []
