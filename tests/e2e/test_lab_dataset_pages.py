"""A wide upload in real headless Chromium: the validation report reads as words and the preview shows
every column (scrolling sideways when it must). Screenshots: tests/artifacts/lab-dataset-wide-*.png."""
import pytest

from tests.e2e.lab_browser import chromium_page, login, make_member, save_staged_dataset, shot
from tests.lab.test_lab_dataset_pages import PYTHON_REPRS, WIDE_COLUMNS, _wide_rows

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "browser-password-1"


def test_a_wide_upload_reads_as_words_and_previews_every_column(live_server, db, tmp_path):
    make_member("lin", PASSWORD, slug="data", team_name="Data lab")
    wide = tmp_path / "wide.jsonl"
    wide.write_bytes(_wide_rows(6))
    base = live_server.url
    with chromium_page(base) as page:
        login(page, base, "lin", PASSWORD)
        page.goto(f"{base}/datasets/new/")
        page.fill("#id_up-name", "wide")
        page.set_input_files("#id_up-file", str(wide))
        page.locator("form[enctype='multipart/form-data'] button.primary").click()
        page.wait_for_selector("text=Validation report")
        text = page.inner_text("main")
        assert [r for r in PYTHON_REPRS if r in text] == []
        assert "Passed: every row has what a run needs." in text
        header = page.locator("table.preview thead th").all_inner_texts()
        assert set(WIDE_COLUMNS) - {"uid", "question", "final_answer"} <= set(header)
        shot(page, "lab-dataset-wide-report")
        save_staged_dataset(page)
        assert page.locator("table.preview thead th").all_inner_texts() == header
        text = page.inner_text("main")
        assert [r for r in PYTHON_REPRS if r in text] == []
        shot(page, "lab-dataset-wide-detail")
        assert page.lab_events["console_errors"] == []
