"""Dataset pages in plain language: the validation report as sentences and the preview with every column.

The report is a dict from r1model.tasks.dataset_io (ValidationReport.to_dict) or the generator; nothing of
it reaches the page as a Python repr (no None, True, [] or {}). The template escapes every string returned
here."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from django import template

register = template.Library()

EMPTY = "—"
PROBLEM_CHARS = 300
CELL_CHARS = 120
SHOWN_LINES = 20  # the report keeps the first 20 line numbers of each kind


def plain(value) -> str:
    """Any report or row value as words: None → —, booleans → yes/no, numbers with separators, lists
    joined by commas, mappings as 'key: value'."""
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return EMPTY if not math.isfinite(value) else (f"{value:,.0f}" if value.is_integer() else f"{value:.4g}")
    if isinstance(value, str):
        return value if value.strip() else EMPTY
    if isinstance(value, (list, tuple, set)):
        items = [plain(v) for v in value]
        return ", ".join(items) if items else "none"
    if isinstance(value, dict):
        items = [f"{_label(k)}: {plain(v)}" for k, v in value.items()]
        return "; ".join(items) if items else "none"
    return str(value)


def _label(key) -> str:
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else EMPTY


def _count(n, one: str, many: str | None = None) -> str:
    n = int(n or 0)
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _lines(numbers, total: int | None = None) -> str:
    numbers = [n for n in (numbers or []) if isinstance(n, int)]
    if not numbers:
        return ""
    shown = ", ".join(f"{n:,}" for n in numbers[:SHOWN_LINES])
    more = " and more" if (total or 0) > len(numbers[:SHOWN_LINES]) else ""
    return f" (line{'s' if len(numbers) > 1 else ''} {shown}{more})"


@dataclass
class ReadableReport:
    verdict: str = ""  # "" when the report does not say
    passed: bool | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)
    mapping: list[tuple[str, str]] = field(default_factory=list)  # (field the lab uses, column of the file)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# keys rendered by readable_report itself (the rest are shown by their name)
_HANDLED = {
    "path", "ok", "file", "format", "rows", "valid_rows", "task", "columns", "mapping", "missing_fields", "missing_counts",
    "duplicates", "duplicate_lines", "over_long_rows", "over_long_lines", "encoding", "encoding_problems",
    "answers_from_solution", "first_bad_line", "first_bad_reason", "dropped", "errors", "warnings",
}


@register.filter
def readable_report(report) -> ReadableReport:
    """The validation report as labelled sentences (what was read, what is missing or repeated, where)."""
    report = report if isinstance(report, dict) else ({"summary": report} if report else {})
    out = ReadableReport()
    facts = out.facts
    if "ok" in report:
        out.passed = bool(report["ok"]) and not report.get("errors")
        out.verdict = "Passed: every row has what a run needs." if out.passed else "Did not pass: see the problems below."
    if report.get("file"):
        facts.append(("File", plain(report["file"])))
    if report.get("format"):
        facts.append(("Format", str(report["format"]).upper()))
    if "task" in report:
        facts.append(("Task", plain(report["task"])))
    if "rows" in report:
        facts.append(("Rows read", plain(report["rows"])))
    if "valid_rows" in report:
        facts.append(("Valid rows", plain(report["valid_rows"])))
    if "columns" in report:
        facts.append(("Columns in the file", plain(report["columns"])))
    mapping = report.get("mapping")
    if isinstance(mapping, dict):
        out.mapping = [(str(k), plain(v)) for k, v in mapping.items()]
    counts = report.get("missing_counts") or {}
    where = report.get("missing_fields") or {}
    if "missing_counts" in report or "missing_fields" in report:
        if counts or where:
            missing = [f"{name}: {_count(counts.get(name, len(where.get(name) or [])), 'row')}{_lines(where.get(name), counts.get(name))}"
                       for name in dict.fromkeys([*counts, *where])]
            facts.append(("Missing values", "; ".join(missing)))
        else:
            facts.append(("Missing values", "none"))
    if "duplicates" in report:
        n = report.get("duplicates") or 0
        facts.append(("Repeated problems", f"{_count(n, 'row')}{_lines(report.get('duplicate_lines'), n)}" if n else "none"))
    if report.get("over_long_rows"):
        n = report["over_long_rows"]
        facts.append(("Very long rows", f"{_count(n, 'row')}{_lines(report.get('over_long_lines'), n)} (imported; check they are meant to be this long)"))
    if report.get("encoding"):
        facts.append(("Text encoding", str(report["encoding"]).upper()))
    if report.get("encoding_problems"):
        facts.append(("Damaged characters", f"{_count(report['encoding_problems'], 'row')} hold characters that were damaged before upload (shown as �)"))
    if report.get("answers_from_solution"):
        facts.append(("Answers from solutions", f"{_count(report['answers_from_solution'], 'row')}: the answer was taken from the worked solution"))
    if report.get("dropped"):
        facts.append(("Rows left out", _count(report["dropped"], "row")))
    if report.get("first_bad_line") is not None:
        reason = report.get("first_bad_reason") or "cannot be used"
        facts.append(("First problem", f"line {plain(report['first_bad_line'])}: {plain(reason)}"))
    for key, value in report.items():
        if key not in _HANDLED:
            facts.append((_label(key), plain(value)))
    out.errors = [plain(e) for e in _as_list(report.get("errors"))]
    out.warnings = [plain(w) for w in _as_list(report.get("warnings"))]
    return out


def _as_list(value) -> list:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


# --- the preview: every column ------------------------------------------------------------------------
FIRST_COLUMNS = ("id", "problem", "answer", "solution", "task", "tests", "entry_point")
ALWAYS = ("id", "problem", "answer")


@dataclass
class PreviewTable:
    columns: list[dict]  # {"label", "title"}
    rows: list[list[dict]]  # per row, per column: {"text", "cls"}


def _data(value) -> str:
    """A row's value as text: the data as written (no thousands separators), empty stays empty."""
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return EMPTY if not math.isfinite(value) else f"{value:g}"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ", ".join(_data(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_data(v)}" for k, v in value.items())
    return str(value)


def _cell(value, limit: int) -> str:
    text = _data(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@register.filter
def preview_table(rows, file_columns=None) -> PreviewTable:
    """Every column of the previewed rows: the lab's fields first (a field empty in every row is left out,
    except id, problem and answer), then the file's other columns (kept in each row's meta) by their own
    names, in the file's order (`file_columns`, the report's "columns") where known."""
    rows = [r for r in (rows or []) if isinstance(r, dict)]
    order = {str(name): i for i, name in enumerate(file_columns)} if isinstance(file_columns, (list, tuple)) else {}
    keys: dict[tuple[str, str], None] = {}
    for name in FIRST_COLUMNS:
        if name in ALWAYS or any(r.get(name) not in (None, "", [], {}) for r in rows):
            keys[("", name)] = None
    for r in rows:
        for name in r:
            if name != "meta" and name not in FIRST_COLUMNS:
                keys.setdefault(("", name), None)
    extra: dict[str, None] = {}
    for r in rows:
        meta = r.get("meta")
        if isinstance(meta, dict):
            for name in meta:
                extra.setdefault(str(name), None)
    for name in sorted(extra, key=lambda n: order.get(n, len(order))):  # stable: unknown ones as first seen
        keys.setdefault(("meta", name), None)
    top = {name for where, name in keys if not where}
    columns = []
    for where, name in keys:
        if where:
            label = f"meta.{name}" if name in top else name
            columns.append({"label": label, "title": f"the file's column “{name}” (kept with the row)"})
        else:
            columns.append({"label": name, "title": ""})
    body = []
    for r in rows:
        meta = r.get("meta") if isinstance(r.get("meta"), dict) else {}
        cells = []
        for where, name in keys:
            value = meta.get(name) if where else r.get(name)
            if name == "problem" and not where:
                cells.append({"text": _cell(value, PROBLEM_CHARS), "cls": "text"})
            elif name == "id" and not where:
                cells.append({"text": _cell(value, CELL_CHARS), "cls": "mono small"})
            else:
                cells.append({"text": _cell(value, CELL_CHARS), "cls": ""})
        body.append(cells)
    return PreviewTable(columns=columns, rows=body)


@register.filter(name="plain")
def plain_filter(value) -> str:
    return plain(value)
