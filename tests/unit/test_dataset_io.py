"""Dataset import: formats, field mapping, validation report, and every bad-file case."""
import json
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from r1model.tasks.dataset_io import DatasetError, load_dataset, preview, rows_to_problems, split_rows

ROWS = [{"id": f"q{i}", "question": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(10)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def assert_refused(path, *fragments, **kwargs):
    """The file is refused with a message naming it and the problem; nothing comes back."""
    loaded = None
    with pytest.raises(DatasetError) as info:
        loaded = load_dataset(path, **kwargs)
    assert loaded is None
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return info.value


# --- formats ------------------------------------------------------------------------------------------------
def test_jsonl_is_mapped_to_the_canonical_fields(tmp_path):
    loaded = load_dataset(write_jsonl(tmp_path / "d.jsonl", ROWS))
    assert len(loaded.rows) == 10 and loaded.report.ok
    assert loaded.rows[3] == {"id": "q3", "problem": "What is 3+3?", "answer": "6", "solution": "",
                              "tests": "", "entry_point": "", "meta": {}}
    assert loaded.report.mapping == {"id": "id", "problem": "question", "answer": "answer"}


def test_csv_parquet_and_hf_save_to_disk_give_the_same_rows_as_jsonl(tmp_path):
    expected = load_dataset(write_jsonl(tmp_path / "d.jsonl", ROWS)).rows
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("id,question,answer\n" + "".join(f"{r['id']},{r['question']},{r['answer']}\n" for r in ROWS),
                        encoding="utf-8")
    table = pa.Table.from_pylist(ROWS)
    pq.write_table(table, tmp_path / "d.parquet")
    folder = tmp_path / "saved"
    folder.mkdir()
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    (folder / "dataset_info.json").write_text("{}")
    for path in (csv_path, tmp_path / "d.parquet", folder):
        assert load_dataset(path).rows == expected, path


def test_hf_dataset_dict_folder_reads_its_train_split(tmp_path):
    root = tmp_path / "dd"
    (root / "train").mkdir(parents=True)
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    table = pa.Table.from_pylist(ROWS[:3])
    with pa.OSFile(str(root / "train" / "data-00000-of-00001.arrow"), "wb") as sink:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    assert [r["id"] for r in load_dataset(root).rows] == ["q0", "q1", "q2"]


def test_explicit_mapping_either_way_round(tmp_path):
    rows = [{"q": "1+1", "gold": "2", "problem": "ignored"}]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    for mapping in ({"q": "problem"}, {"problem": "q"}):
        loaded = load_dataset(path, mapping=mapping)
        assert loaded.rows[0]["problem"] == "1+1" and loaded.rows[0]["answer"] == "2"
    with pytest.raises(DatasetError, match="need one side to be a column"):
        load_dataset(path, mapping={"nope": "problem"})


def test_answer_is_taken_from_a_solution_when_missing(tmp_path):
    rows = [{"problem": "p1", "solution": "so \\boxed{\\frac12}."}, {"problem": "p2", "solution": "3+4=7\n#### 7"}]
    loaded = load_dataset(write_jsonl(tmp_path / "d.jsonl", rows))
    assert [r["answer"] for r in loaded.rows] == ["\\frac12", "7"]
    assert loaded.report.answers_from_solution == 2


def test_code_rows_keep_tests_and_become_code_problems(tmp_path):
    rows = [{"task_id": "t/0", "prompt": "def f():", "canonical_solution": "  return 1", "test": "def check(c): pass",
             "entry_point": "f"}]
    loaded = load_dataset(write_jsonl(tmp_path / "d.jsonl", rows), require_answer=False)
    problem = rows_to_problems(loaded.rows)[0]
    assert problem.task == "code" and problem.meta["entry_point"] == "f" and problem.meta["tests"]


# --- validation report ---------------------------------------------------------------------------------------
def test_report_counts_duplicates_over_long_rows_and_damaged_text(tmp_path):
    rows = ROWS[:3] + [ROWS[0], {"question": "x" * 20_000, "answer": "1"}, {"question": "caf\ufffd", "answer": "2"}]
    report = load_dataset(write_jsonl(tmp_path / "d.jsonl", rows)).report.to_dict()
    assert report["rows"] == 6 and report["duplicates"] == 1 and report["duplicate_lines"] == [4]
    assert report["over_long_rows"] == 1 and report["over_long_lines"] == [5]
    assert report["encoding_problems"] == 1 and report["ok"] is True


def test_missing_field_names_the_line_and_imports_nothing(tmp_path):
    path = tmp_path / "d.jsonl"
    write_jsonl(path, ROWS[:4] + [{"question": "no answer here"}] + ROWS[4:])
    error = assert_refused(path, "line 5", "missing answer", "nothing was imported")
    assert error.report.first_bad_line == 5


def test_non_strict_import_drops_and_counts_rows_with_missing_fields(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS[:4] + [{"question": "no answer"}, {"answer": "1"}])
    loaded = load_dataset(path, strict=False)
    assert len(loaded.rows) == 4 and loaded.report.dropped == 2 and not loaded.report.ok
    assert loaded.report.missing_fields == {"answer": [5], "problem": [6]}


# --- bad files -------------------------------------------------------------------------------------------------
def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)))
    assert_refused(path, "binary file")


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"")
    assert_refused(path, "empty")


def test_blank_lines_only_is_refused(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n\n  \n")
    assert_refused(path, "no rows")


def test_wrong_encoding_names_the_line_and_byte(tmp_path):
    path = tmp_path / "d.jsonl"
    lines = [json.dumps(r) for r in ROWS[:2]] + ['{"question": "caf\xe9", "answer": "1"}']
    path.write_bytes(("\n".join(lines[:2]) + "\n").encode() + lines[2].encode("latin-1") + b"\n")
    assert_refused(path, "line 3", "not valid UTF-8", "0xe9")


def test_utf16_file_is_refused_with_advice(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(json.dumps(ROWS[0]).encode("utf-16"))
    assert_refused(path, "UTF-16", "UTF-8")


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(ROWS[0]).encode() + b"\n")
    assert load_dataset(path).rows[0]["id"] == "q0"


def test_malformed_json_names_line_k(tmp_path):
    path = tmp_path / "d.jsonl"
    lines = [json.dumps(r) for r in ROWS]
    lines[6] = '{"question": "oops", "answer": 1'
    path.write_text("\n".join(lines) + "\n")
    assert_refused(path, "line 7", "malformed JSON")


def test_json_line_that_is_not_an_object_is_refused(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n[1, 2]\n")
    assert_refused(path, "line 2", "expected a JSON object")


def test_100_mb_single_line_is_refused_without_reading_it_whole(tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "wb") as f:
        f.write(json.dumps(ROWS[0]).encode() + b"\n")
        f.write(b'{"question": "')
        chunk = b"x" * (1 << 20)
        for _ in range(100):
            f.write(chunk)
        f.write(b'", "answer": "1"}\n')
    tracemalloc.start()
    try:
        assert_refused(path, "line 2", "longer than")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * (1 << 20)  # a few MiB, not the 100 MB line


def test_file_over_max_bytes_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    assert_refused(path, "limit", max_bytes=100)


def test_csv_with_too_many_values_names_the_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("question,answer\n1+1,2\n2+2,4,extra\n")
    assert_refused(path, "line 3", "more values")


def test_garbage_parquet_is_refused(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    assert_refused(path, "cannot be read as parquet")


def test_unsupported_extension_and_missing_file(tmp_path):
    (tmp_path / "d.xlsx").write_bytes(b"PK\x03\x04")
    assert_refused(tmp_path / "d.xlsx", "unsupported file type")
    assert_refused(tmp_path / "nope.jsonl", "no such file")


# --- split, preview, hash ----------------------------------------------------------------------------------------
def test_split_is_seeded_disjoint_and_stable_when_rows_are_added(tmp_path):
    rows = [{"problem": f"p{i}", "answer": "1"} for i in range(200)]
    train, test = split_rows(rows, test_fraction=0.2, seed=3)
    assert len(test) == 40 and len(train) == 160
    assert not {r["problem"] for r in train} & {r["problem"] for r in test}
    assert split_rows(rows, 0.2, seed=3) == (train, test)
    assert split_rows(rows, 0.2, seed=4)[1] != test


def test_preview_reads_only_the_first_rows(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS[:3]) + "\n{broken\n")
    assert [r["id"] for r in preview(path, n=3)] == ["q0", "q1", "q2"]


def test_content_hash_changes_with_the_content(tmp_path):
    a = load_dataset(write_jsonl(tmp_path / "a.jsonl", ROWS)).content_hash
    b = load_dataset(write_jsonl(tmp_path / "b.jsonl", ROWS)).content_hash
    c = load_dataset(write_jsonl(tmp_path / "c.jsonl", ROWS[:-1])).content_hash
    assert a == b != c and len(a) == 64


def test_json_array_file_is_read_like_jsonl(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(ROWS, indent=1))
    assert load_dataset(path).rows == load_dataset(write_jsonl(tmp_path / "d.jsonl", ROWS)).rows


def test_malformed_json_array_names_the_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n{"question": "a", "answer": "1"},\n{"question": "b" "answer": "2"}\n]\n')
    assert_refused(path, "line 3", "malformed JSON")
