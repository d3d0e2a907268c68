"""Datasets: generator and upload are validated and previewed before anything is saved; versions."""
import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from lab.models import Dataset


def _generate(client, name="sums", n=20, seed=0):
    return client.post("/datasets/new/", {"kind": "generator", "gen-name": name, "gen-task": "addition", "gen-n": n, "gen-seed": seed, "gen-split": "train", "gen-params": '{"digits": 3}'})


def _save(client, response):
    return client.post("/datasets/save", {"token": response.context["staged"].token})


def test_generator_shows_a_report_and_saves_only_on_confirmation(owner_client, lab):
    response = _generate(owner_client)
    assert response.status_code == 200 and "Validation report" in response.content.decode()
    assert not Dataset.objects.filter(name="sums").exists()
    saved = _save(owner_client, response)
    dataset = Dataset.objects.get(team=lab.team, name="sums")
    assert saved.status_code == 302 and dataset.version == 1 and dataset.row_count == 20
    assert dataset.generator["task"] == "addition" and dataset.generator["digits"] == 3
    detail = owner_client.get(f"/datasets/{dataset.id}/").content.decode()
    assert "Versions" in detail and dataset.content_hash[:12] in detail


def test_same_content_keeps_its_version_and_new_content_gets_the_next(owner_client, lab):
    _save(owner_client, _generate(owner_client))
    _save(owner_client, _generate(owner_client))
    assert list(Dataset.objects.filter(name="sums").values_list("version", flat=True)) == [1]
    _save(owner_client, _generate(owner_client, seed=1))
    assert sorted(Dataset.objects.filter(name="sums").values_list("version", flat=True)) == [1, 2]


def test_bad_generator_parameters_are_reported_by_field(owner_client, lab):
    response = owner_client.post("/datasets/new/", {"kind": "generator", "gen-name": "x", "gen-task": "addition", "gen-n": 5, "gen-seed": 0, "gen-split": "train", "gen-params": '{"nonsense": 1}'})
    assert response.status_code == 200 and "nonsense" in response.content.decode()
    assert not Dataset.objects.exists() or not Dataset.objects.filter(name="x").exists()


def test_uploaded_jsonl_is_validated_previewed_and_saved(owner_client, lab):
    rows = "".join(json.dumps({"question": f"What is {i}+1?", "answer": str(i + 1)}) + "\n" for i in range(5))
    upload = SimpleUploadedFile("qa.jsonl", rows.encode(), content_type="application/json")
    response = owner_client.post("/datasets/new/", {"kind": "upload", "up-name": "qa", "up-file": upload})
    body = response.content.decode()
    assert "Save dataset" in body and "What is 3+1?" in body
    _save(owner_client, response)
    assert Dataset.objects.get(name="qa").row_count == 5


def test_malformed_upload_names_the_line_and_cannot_be_saved(owner_client, lab):
    upload = SimpleUploadedFile("bad.jsonl", b'{"problem": "1+1", "answer": "2"}\n{"problem": \n')
    response = owner_client.post("/datasets/new/", {"kind": "upload", "up-name": "bad", "up-file": upload})
    body = response.content.decode()
    assert "line 2" in body and "Save dataset" not in body
    assert owner_client.post("/datasets/save", {"token": response.context["staged"].token}).status_code == 302
    assert not Dataset.objects.filter(name="bad").exists()


@override_settings(LAB_MAX_UPLOAD_BYTES=100)
def test_upload_over_the_size_limit_is_refused(owner_client, lab):
    upload = SimpleUploadedFile("big.jsonl", b"x" * 200)
    response = owner_client.post("/datasets/new/", {"kind": "upload", "up-name": "big", "up-file": upload})
    assert "the limit is 100" in response.content.decode()


def _upload_errors(client, name, content):
    response = client.post("/datasets/new/", {"kind": "upload", "up-name": "bad", "up-file": SimpleUploadedFile(name, content)})
    return response.context["staged"].report["errors"], response.content.decode()


def test_malformed_json_upload_names_the_line_and_the_real_column(owner_client, lab):
    good = b'{"problem": "1+1", "answer": "2"}\n'
    bad = b'{"problem": "2+2", "answer": "4", "xyz": tru}\n'  # the bad value starts at column 42
    assert bad.index(b"tru") + 1 == 42
    errors, body = _upload_errors(owner_client, "bad.jsonl", good + bad)
    assert errors == ["bad.jsonl: line 2: malformed JSON: Expecting value (column 42)"], errors
    assert "line 2: malformed JSON: Expecting value (column 42)" in body
    errors, _ = _upload_errors(owner_client, "bad.json", b"[" + good.strip() + b",\n " + bad.strip() + b"]\n")
    assert errors == ["bad.json: line 2: malformed JSON: Expecting value (column 43)"], errors  # one space in


def _saved_dataset(client):
    _save(client, _generate(client, name="kept", n=30))
    return Dataset.objects.get(name="kept")


def test_a_dataset_whose_file_is_intact_says_so(owner_client, lab):
    dataset = _saved_dataset(owner_client)
    body = owner_client.get(f"/datasets/{dataset.id}/").content.decode()
    assert "matches the content hash" in body and "corrupted" not in body and "Start a run on this dataset" in body


def test_a_dataset_file_changed_on_disk_shows_as_corrupted(owner_client, lab):
    from pathlib import Path

    dataset = _saved_dataset(owner_client)
    assert "matches the content hash" in owner_client.get(f"/datasets/{dataset.id}/").content.decode()  # verdict cached
    path = Path(dataset.path)
    data = bytearray(path.read_bytes())
    data[40:48] = b"\x00garbage"  # damage inside the first row
    path.write_bytes(bytes(data))
    response = owner_client.get(f"/datasets/{dataset.id}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "corrupted: the file changed on disk since it was saved" in body and dataset.content_hash[:12] in body
    assert "matches the content hash" not in body and "Start a run on this dataset" not in body


def test_a_dataset_whose_file_is_gone_shows_as_missing(owner_client, lab):
    body = owner_client.get(f"/datasets/{lab.dataset.id}/").content.decode()  # path /nonexistent.jsonl
    assert "missing: the dataset&#x27;s file is no longer on disk" in body and "matches the content hash" not in body
