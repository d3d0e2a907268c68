"""Dataset pages speak plain language: the validation report as words and tables (no Python None, True,
[] or {} on the page), and the preview shows every column of the file."""
import json
import re

from django.core.files.uploadedfile import SimpleUploadedFile

from lab.models import Dataset

PYTHON_REPRS = ("None", "True", "False", "[]", "{}", "[\'", "{\'", "\': ")


def _main(html: str) -> str:
    return html.split("<main>", 1)[1].split("</main>", 1)[0]


def _reprs_in(html: str) -> list[str]:
    return [r for r in PYTHON_REPRS if r in _main(html)]


WIDE_COLUMNS = ["uid", "question", "final_answer", "source", "difficulty", "topic", "year", "author", "verified",
                "tags", "notes", "hint", "score", "license"]


def _wide_rows(n: int = 4) -> bytes:
    rows = []
    for i in range(n):
        rows.append({
            "uid": f"w-{i}", "question": f"What is {i} + 2?", "final_answer": str(i + 2), "source": "hand-made",
            "difficulty": None, "topic": "arithmetic", "year": 2024, "author": "ada", "verified": i % 2 == 0,
            "tags": [] if i else ["easy", "sum"], "notes": {}, "hint": "", "score": 0.5 * i, "license": "CC-BY",
        })
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _upload(client, name: str, content: bytes):
    return client.post("/datasets/new/", {"kind": "upload", "up-name": name, "up-file": SimpleUploadedFile(f"{name}.jsonl", content)})


def _header(html: str) -> list[str]:
    table = _main(html).split('<table class="grid preview">', 1)[1]
    head = table.split("</thead>", 1)[0]
    return re.findall(r"<th[^>]*>([^<]*)</th>", head)


def test_the_preview_shows_every_column_of_a_wide_file(owner_client, lab):
    response = _upload(owner_client, "wide", _wide_rows())
    html = response.content.decode()
    assert response.context["staged"].ok
    header = _header(html)
    # the lab's fields under their names (the file's uid / question / final_answer), then every other column
    assert header[:3] == ["id", "problem", "answer"]
    # the file's other columns, in the file's order
    assert header[3:] == [c for c in WIDE_COLUMNS if c not in ("uid", "question", "final_answer")], header
    assert "CC-BY" in html and "hand-made" in html and "easy, sum" in html
    assert "<td>2024</td>" in html and "<td>yes</td>" in html  # data as written: no "2,024", no "True"
    owner_client.post("/datasets/save", {"token": response.context["staged"].token})
    dataset = Dataset.objects.get(name="wide")
    detail = owner_client.get(f"/datasets/{dataset.id}/").content.decode()
    assert _header(detail) == header


def test_the_staged_report_of_an_upload_has_no_python_reprs(owner_client, lab):
    html = _upload(owner_client, "wide", _wide_rows()).content.decode()
    assert _reprs_in(html) == [], _reprs_in(html)
    main = _main(html)
    assert "Passed: every row has what a run needs." in main
    assert "Columns in the file" in main and "uid, question, final_answer, source" in main
    assert "Where each field comes from" in main and "<td>problem</td><td>question</td>" in main
    assert "Missing values</dt><dd>none" in main and "Repeated problems</dt><dd>none" in main


def test_a_report_full_of_empty_and_boolean_values_reads_as_words(owner_client, lab):
    report = {
        "format": "jsonl", "rows": 1200, "columns": [], "mapping": {}, "missing_fields": {"answer": [4, 7, 9]},
        "missing_counts": {"answer": 3}, "duplicates": 2, "duplicate_lines": [5, 8], "over_long_rows": 0,
        "over_long_lines": [], "encoding": "utf-8", "encoding_problems": 0, "answers_from_solution": 0,
        "first_bad_line": None, "first_bad_reason": "", "dropped": 0, "ok": True, "file": "qa.jsonl",
        "errors": [], "warnings": [], "checked": True, "split": None, "extra": {"nested": [None, False, {}]},
    }
    dataset = Dataset.objects.create(team=lab.team, name="reprs", source="upload", path="/nonexistent.jsonl",
                                      content_hash="cd" * 32, row_count=1200, report=report,
                                      generator={"task": "addition", "digits": None, "carry": True, "params": {}})
    html = owner_client.get(f"/datasets/{dataset.id}/").content.decode()
    assert _reprs_in(html) == [], _reprs_in(html)
    main = _main(html)
    assert "Rows read</dt><dd>1,200" in main
    assert "answer: 3 rows (lines 4, 7, 9)" in main
    assert "Repeated problems</dt><dd>2 rows (lines 5, 8)" in main
    assert "Checked</dt><dd>yes" in main and "Split</dt><dd>—" in main
    assert "carry=yes" in main and "digits=—" in main


def test_a_file_that_cannot_be_read_says_why_in_words(owner_client, lab):
    html = _upload(owner_client, "broken", b'{"problem": "1+1", "answer": "2"}\n{"problem": \n').content.decode()
    assert _reprs_in(html) == [], _reprs_in(html)
    assert "line 2" in _main(html)
