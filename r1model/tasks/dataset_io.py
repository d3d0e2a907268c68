"""Dataset import: JSONL (or a .json array), CSV, Parquet and HF `datasets` save_to_disk folders,
validated before use.

    loaded = load_dataset("train.jsonl")            # -> LoadedDataset(rows, report, content_hash)
    loaded.report.to_dict()                          # rows, missing fields, duplicates, ...
    train, test = split_rows(loaded.rows, test_fraction=0.1, seed=0)
    preview("train.jsonl", n=5)

Rows come out in one shape: {'id', 'problem', 'answer', 'solution', 'tests', 'entry_point', 'meta'}
(fields found under other names are mapped; see FIELD_ALIASES). Every problem raises DatasetError with
the file, the line and what is wrong — binary file, empty file, wrong encoding, malformed JSON, a line
over max_row_bytes (read in bounded pieces, never whole) — and nothing is returned half-imported.

Standard library plus pyarrow (Parquet, Arrow); no torch, no `datasets` package.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from r1model.tasks.base import stable_hash
from r1model.tasks.dataset_formats import MAX_ROW_BYTES, DatasetError, read_jsonl, read_records

__all__ = ["DatasetError", "LoadedDataset", "ValidationReport", "load_dataset", "preview", "read_jsonl",
           "rows_to_problems", "split_rows"]

MAX_BYTES = 2 << 30  # 2 GiB per file
LONG_ROW_CHARS = 16_000  # rows over this are imported but reported as over-long

# canonical field -> names accepted in the source, first match wins
FIELD_ALIASES = {
    "id": ("id", "task_id", "idx", "uid", "unique_id"),
    "problem": ("problem", "question", "prompt", "input", "query"),
    "answer": ("answer", "final_answer", "gold", "target", "expected_answer"),
    "solution": ("solution", "reasoning", "rationale", "canonical_solution"),
    "tests": ("tests", "test", "test_cases", "test_list"),
    "entry_point": ("entry_point",),
}
REQUIRED = ("problem", "answer")


@dataclass
class ValidationReport:
    """What was found in a file, shown to the user before the data is used."""

    path: str
    format: str
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)  # canonical field -> source column
    missing_fields: dict[str, list[int]] = field(default_factory=dict)  # field -> line numbers (first 20)
    missing_counts: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    duplicate_lines: list[int] = field(default_factory=list)  # first 20
    over_long_rows: int = 0
    over_long_lines: list[int] = field(default_factory=list)
    encoding: str = "utf-8"
    encoding_problems: int = 0  # rows holding U+FFFD (text damaged before it reached us)
    answers_from_solution: int = 0  # rows whose answer was taken from the solution's \boxed{} / ####
    first_bad_line: int | None = None
    first_bad_reason: str = ""
    dropped: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing_counts and self.first_bad_line is None

    def note_bad(self, line: int, reason: str) -> None:
        if self.first_bad_line is None:
            self.first_bad_line, self.first_bad_reason = line, reason

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


@dataclass
class LoadedDataset:
    rows: list[dict]
    report: ValidationReport
    content_hash: str  # sha256 of the file bytes (of every file, in name order, for a folder)


# --- mapping to the canonical row -------------------------------------------------------------------------
_HASHES = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)


def resolve_mapping(columns: list[str], mapping: dict[str, str] | None) -> dict[str, str]:
    """canonical -> source column. `mapping` may be given either way round ({'question': 'problem'} or
    {'problem': 'question'}); unmapped fields are looked up by FIELD_ALIASES."""
    resolved: dict[str, str] = {}
    for key, value in (mapping or {}).items():
        if key in FIELD_ALIASES and value in columns:
            resolved[key] = value
        elif value in FIELD_ALIASES and key in columns:
            resolved[value] = key
        else:
            raise DatasetError(f"mapping {key!r} -> {value!r}: need one side to be a column ({columns}) and "
                               f"the other a field ({list(FIELD_ALIASES)})")
    lower = {c.lower(): c for c in columns}
    for canonical, aliases in FIELD_ALIASES.items():
        if canonical not in resolved:
            found = next((lower[a] for a in aliases if a in lower and lower[a] not in resolved.values()), None)
            if found:
                resolved[canonical] = found
    return resolved


def answer_from_solution(solution: str) -> str | None:
    """The final answer inside a worked solution: after '####' (GSM8K) or the last \\boxed{} (MATH)."""
    match = _HASHES.search(solution)
    if match:
        return match.group(1).strip()
    from r1model.evaluate.answer_check import find_last_boxed

    return find_last_boxed(solution)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def canonical_row(record: dict, mapping: dict[str, str], index: int) -> dict:
    row = {name: _text(record.get(column)) for name, column in mapping.items()}
    row.setdefault("id", "")
    row["id"] = row["id"] or f"row-{index}"
    for name in ("problem", "answer", "solution", "tests", "entry_point"):
        row.setdefault(name, "")
    used = set(mapping.values())
    row["meta"] = {k: v for k, v in record.items() if k not in used and _jsonable(v)}
    return row


def _jsonable(value) -> bool:
    return isinstance(value, (str, int, float, bool, type(None), list, dict))


# --- the public entry points --------------------------------------------------------------------------
def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _total_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def load_dataset(path, mapping: dict[str, str] | None = None, max_row_bytes: int = MAX_ROW_BYTES,
                 max_bytes: int = MAX_BYTES, strict: bool = True, require_answer: bool = True) -> LoadedDataset:
    """Read, map and validate a whole file; raise DatasetError or return every row.

    strict: a row without a problem or answer is an error (naming its line); with strict=False such
    rows are dropped and counted in the report. require_answer=False accepts rows without answers
    (code datasets judged by tests, prompt-only sets)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    size = _total_bytes(path)
    if size > max_bytes:
        raise DatasetError(f"{path}: {size:,} bytes is over the {max_bytes:,}-byte limit for one dataset")
    if size == 0:
        raise DatasetError(f"{path}: the file is empty")
    fmt, records = read_records(path, max_row_bytes)
    report = ValidationReport(path=str(path), format=fmt)
    rows, seen, resolved = [], {}, None
    required = REQUIRED if require_answer else ("problem",)
    for number, record in records:
        if resolved is None:
            report.columns = list(record.keys())
            resolved = resolve_mapping(report.columns, mapping)
            report.mapping = dict(resolved)
        row = canonical_row(record, resolved, len(rows) + report.dropped)
        if not row["answer"].strip() and row["solution"].strip():
            # code rows are judged by their tests: the reference solution is the answer as it is
            extracted = row["solution"] if row["tests"].strip() else answer_from_solution(row["solution"])
            if extracted:
                row["answer"] = extracted
                report.answers_from_solution += 1
        needed = ("problem",) if row["tests"].strip() else required  # tests judge code, not an answer
        missing = [name for name in needed if not row[name].strip()]
        if missing:
            for name in missing:
                report.missing_counts[name] = report.missing_counts.get(name, 0) + 1
                lines = report.missing_fields.setdefault(name, [])
                if len(lines) < 20:
                    lines.append(number)
            report.note_bad(number, f"missing {', '.join(missing)}")
            if strict:
                raise DatasetError(f"{path}: line {number}: missing {' and '.join(missing)} (columns: "
                                   f"{', '.join(report.columns)}; map one with mapping=...); nothing was "
                                   "imported", report)
            report.dropped += 1
            continue
        key = row["problem"].strip()
        if key in seen:
            report.duplicates += 1
            if len(report.duplicate_lines) < 20:
                report.duplicate_lines.append(number)
        seen.setdefault(key, number)
        if sum(len(v) for v in row.values() if isinstance(v, str)) > LONG_ROW_CHARS:
            report.over_long_rows += 1
            if len(report.over_long_lines) < 20:
                report.over_long_lines.append(number)
        if any("\ufffd" in v for v in row.values() if isinstance(v, str)):
            report.encoding_problems += 1
        rows.append(row)
    if not rows and not report.dropped:
        raise DatasetError(f"{path}: no rows (only blank lines or a header)")
    report.rows = len(rows)
    return LoadedDataset(rows=rows, report=report, content_hash=content_hash(path))


def preview(path, n: int = 5, mapping: dict[str, str] | None = None,
            max_row_bytes: int = MAX_ROW_BYTES) -> list[dict]:
    """The first n rows, mapped, reading no further than needed (CSV files are checked whole first)."""
    path = Path(path)
    fmt, records = read_records(path, max_row_bytes, limit=n)
    rows, resolved = [], None
    for index, (_, record) in enumerate(records):
        resolved = resolved or resolve_mapping(list(record.keys()), mapping)
        rows.append(canonical_row(record, resolved, index))
    return rows


def split_rows(rows: list[dict], test_fraction: float = 0.1, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """A seeded train/test split: rows are ordered by a hash of (seed, problem text) and the first
    round(n × test_fraction) go to test. Disjoint, the same for the same seed, and a row keeps its side
    when other rows are added (duplicates of a problem always land together)."""
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be within [0, 1], not {test_fraction}")
    keyed = sorted(range(len(rows)), key=lambda i: (stable_hash(f"{seed}|{rows[i]['problem']}"), i))
    n_test = round(len(rows) * test_fraction)
    test_keys = {rows[i]["problem"] for i in keyed[:n_test]}
    train = [row for row in rows if row["problem"] not in test_keys]
    test = [row for row in rows if row["problem"] in test_keys]
    return train, test


def rows_to_problems(rows: list[dict], task: str = "math", check_mode: str = "auto") -> list:
    """Problems for rewards and evaluation from imported rows (code rows keep tests and entry point)."""
    from r1model.tasks.problem import Problem

    problems = []
    for row in rows:
        meta = dict(row.get("meta") or {})
        if row.get("tests"):  # code: the problem text is also the prompt a body-only answer continues
            meta.update(tests=row["tests"], entry_point=row.get("entry_point", ""), prompt=row["problem"])
        else:
            meta.setdefault("check_mode", check_mode)
        problems.append(Problem(id=row["id"], problem=row["problem"], answer=row["answer"],
                                solution=row.get("solution", ""), task="code" if row.get("tests") else task,
                                meta=meta))
    return problems


