"""Train on your own model, in real headless Chromium against a real `lab_run` (gunicorn + one Celery worker +
the real trainer): an admin registers a Qwen2 folder (the tiny test fixture, built here) under a model root
with `manage.py lab_register_model`; the user finds it on the Models page, starts a run from it
(model.source = model:ID), sets a tiny GRPO, queues it, watches it complete, and finds its checkpoint on the
Models page with its lineage (base model → run → checkpoint), ready to start the next run from.
Screenshots: tests/artifacts/e2e-real-model-*.png."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from tests.e2e.lab_browser import chromium_page, login, shot
from tests.e2e.test_lab_full_flow import ROOT, START_TIMEOUT_S, live_lab, watch_until_finished

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUN_TIMEOUT_S = 420  # trainer start-up + 2 GRPO steps on a tiny Qwen2; well under a minute when idle
MODEL_NAME = "qwen2-tiny"


def register_folder(lab, root_name: str, folder: str) -> str:
    """`manage.py lab_register_model` against the live lab's database, as an admin would run it."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(DEBUG="true", LAB_DATA_DIR=str(lab.data_dir), DJANGO_SETTINGS_MODULE="lab.settings")
    done = subprocess.run(
        [sys.executable, "manage.py", "lab_register_model", "--team", "demo", "--name", MODEL_NAME,
         "--root", root_name, "--folder", folder],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def config_field(page, name: str):
    """The run form's field `name`, its collapsed config section opened first (as a user clicks it open)."""
    field = page.locator(f"[name='{name}']")
    section = page.locator("details.config-section", has=field)
    if section.count() and not section.evaluate("details => details.open"):
        section.locator("summary").first.click()
    return field


@pytest.mark.timeout(START_TIMEOUT_S + RUN_TIMEOUT_S + 300)
def test_register_a_qwen2_folder_train_grpo_on_it_and_find_its_checkpoint_with_lineage(tmp_path, monkeypatch):
    from r1model.testing.fixtures import make_tiny_hf_model

    root = tmp_path / "models"
    make_tiny_hf_model(root / "qwen2-tiny-instruct", "qwen2")
    monkeypatch.setenv("LAB_MODEL_ROOTS", f"fixtures={root}")  # lab_run, its worker and the command see it
    with live_lab(tmp_path) as lab:
        password = lab.wait_ready()
        printed = register_folder(lab, "fixtures", "qwen2-tiny-instruct")
        found = re.search(r"registered model:(\d+)", printed)
        assert found and "Qwen2ForCausalLM" in printed, printed
        model_id = int(found.group(1))
        base = lab.base
        with chromium_page(base) as page:
            # 1. The Models page lists the folder model with what its config says.
            login(page, base, "demo", password)
            page.click("header nav >> text=Models")
            row = page.locator(f"#model-{model_id}")
            row.wait_for()
            text = row.inner_text()
            assert MODEL_NAME in text and "Qwen2ForCausalLM" in text and f"model:{model_id}" in text, text
            assert "fixtures" in text and str(tmp_path) not in page.inner_text("main")  # the root's name, no path
            shot(page, "e2e-real-model-registered")

            # 2. Start a run from it: the form starts on model:ID; a tiny GRPO on the cpu queue.
            row.locator("a.start-from").click()
            page.wait_for_url(re.compile(r".*/runs/new/\?model=model%3A\d+"), wait_until="domcontentloaded")
            assert page.input_value("[name='cfg-model.source']") == f"model:{model_id}"
            page.fill("#id_name", "grpo on qwen2-tiny (e2e)")
            page.select_option("#id_queue", "cpu")
            assert page.input_value("[name='cfg-kind']") == "grpo"
            config_field(page, "cfg-total_steps").fill("2")
            config_field(page, "cfg-checkpoint_interval").fill("0")  # the final checkpoint only
            config_field(page, "cfg-grpo.group_size").fill("2")
            config_field(page, "cfg-grpo.prompts_per_step").fill("2")
            config_field(page, "cfg-sampling.max_new_tokens").fill("16")
            config_field(page, "cfg-evaluation.benchmarks").fill("[]")
            # last a checkbox: its change event fires at once, and so does the textarea's (on blur), each
            # adding a "was …" note above the button; clicking while a text field still has the focus would
            # move the button under the pointer (the note appears on blur) and miss it
            config_field(page, "cfg-evaluation.at_start").uncheck()
            page.wait_for_timeout(200)
            shot(page, "e2e-real-model-run-new")
            page.click("form.run-form button.primary")
            try:  # the redirect to the run's page (the POST queues the run first: slow on a loaded machine)
                page.wait_for_url(re.compile(r".*/runs/\d+/$"), wait_until="commit", timeout=120_000)
            except Exception:
                shot(page, "e2e-real-model-run-new-refused")
                raise
            page.wait_for_selector("#run-status")
            run_id = int(re.search(r"/runs/(\d+)/$", page.url).group(1))
            assert "queued on cpu" in page.inner_text("main")

            # 3. A real worker runs the real trainer on the Qwen2 folder until the run completes.
            watch_until_finished(page, lab, run_id, RUN_TIMEOUT_S)
            assert re.search(r"step 2 / 2", page.inner_text("#run-status")), page.inner_text("#run-status")
            shot(page, "e2e-real-model-run-completed")

            # 4. The Models page: the run counts as a user of the model, and its checkpoint is listed with
            #    its lineage, base model → run → checkpoint (the checkpoint record arrives with the events).
            checkpoint = page.locator(f"#checkpoint-{run_id}-2")
            settle = time.monotonic() + 60
            while True:
                page.goto(f"{base}/models/")
                page.wait_for_selector("#checkpoint-models")
                if checkpoint.count() or time.monotonic() > settle:
                    break
                page.wait_for_timeout(2000)
            assert checkpoint.count() == 1, page.inner_text("#checkpoint-models")
            lineage = checkpoint.inner_text()
            assert f"run:{run_id}@2" in lineage and MODEL_NAME in lineage and "grpo on qwen2-tiny (e2e)" in lineage, lineage
            assert checkpoint.locator(f"a[href='#model-{model_id}']").count() == 1  # the base links to the model
            assert "grpo on qwen2-tiny (e2e)" in page.locator(f"#model-{model_id}").inner_text()
            shot(page, "e2e-real-model-lineage")

            # 5. The checkpoint is a model to start the next run from.
            checkpoint.locator("a.start-from").click()
            page.wait_for_url(re.compile(rf".*/runs/new/\?parent={run_id}&step=2"), wait_until="domcontentloaded")
            assert page.input_value("[name='cfg-model.source']") == f"run:{run_id}@2"
            shot(page, "e2e-real-model-next-run")

            assert page.lab_events["dialogs"] == []
            assert page.lab_events["offsite_requests"] == []
            assert page.lab_events["console_errors"] == []

        assert lab.stop() == 0, lab.output()[-3000:]
        time.sleep(1)
        assert lab.leftovers() == [], f"processes left behind: {lab.leftovers()}"
