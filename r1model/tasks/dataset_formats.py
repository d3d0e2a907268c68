"""Reading dataset files into raw records, with errors that name the file and the line.

JSONL (or a .json array), CSV/TSV, Parquet, Arrow and HF `datasets` save_to_disk folders. Text files are
read line by line in bounded pieces (a 100 MB line is refused without being read whole), decoded as
strict UTF-8, and refused when binary. Standard library plus pyarrow (imported only for Arrow formats).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

SNIFF_BYTES = 8192
MAX_ROW_BYTES = 1 << 20  # a row (line) over 1 MiB is refused: no problem needs that much


class DatasetError(ValueError):
    """A file that cannot be imported; the message names the file, the line and the problem."""

    def __init__(self, message: str, report: "ValidationReport | None" = None):
        super().__init__(message)
        self.report = report


# --- reading the raw records ------------------------------------------------------------------------------
def _sniff(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(SNIFF_BYTES)


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "hf-disk"
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    head = _sniff(path)[:4]
    if head == b"PAR1" or suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".arrow",):
        return "arrow"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".jsonl", ".json", ".ndjson", ""):
        return "jsonl"
    raise DatasetError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl, .csv, .parquet, "
                       "or a folder written by datasets.save_to_disk")


def _check_text_start(path: Path) -> str:
    """Refuse binary and non-UTF-8 files from their first bytes; return the encoding name."""
    head = _sniff(path)
    if not head:
        raise DatasetError(f"{path}: the file is empty")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DatasetError(f"{path}: line 1: the file is UTF-16 encoded; re-save it as UTF-8")
    if b"\x00" in head:
        raise DatasetError(f"{path}: this is a binary file (NUL bytes near the start), not JSONL/CSV text")
    return "utf-8-sig" if head.startswith(b"\xef\xbb\xbf") else "utf-8"


def iter_text_lines(path: Path, max_row_bytes: int):
    """(line_number, text) for each line, decoded as strict UTF-8, never holding more than
    max_row_bytes + 1 bytes of one line in memory."""
    with open(path, "rb") as f:
        number = 0
        while True:
            raw = f.readline(max_row_bytes + 1)
            if not raw:
                return
            number += 1
            if len(raw) > max_row_bytes and not raw.endswith(b"\n"):
                raise DatasetError(f"{path}: line {number} is longer than {max_row_bytes:,} bytes "
                                   f"(the limit for one row); nothing was imported")
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if b"\x00" in raw:
                raise DatasetError(f"{path}: line {number} contains NUL bytes: binary data, not text")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DatasetError(f"{path}: line {number}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at "
                                   f"column {exc.start + 1}); re-save the file as UTF-8") from None
            yield number, text


def read_jsonl(path: Path, max_row_bytes: int, limit: int | None = None):
    """(line_number, record) for each non-blank line."""
    count = 0
    for number, text in iter_text_lines(path, max_row_bytes):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: line {number}: malformed JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(record, dict):
            raise DatasetError(f"{path}: line {number}: expected a JSON object, found {type(record).__name__}")
        yield number, record
        count += 1
        if limit is not None and count >= limit:
            return


def read_json_array(path: Path, max_row_bytes: int, limit: int | None = None):
    """A .json file holding one array of objects (read whole: its size is already capped by max_bytes)."""
    for _ in iter_text_lines(path, max_row_bytes):  # encoding and line length, with line numbers
        pass
    text = path.read_text(encoding="utf-8-sig")
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: line {exc.lineno}: malformed JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(records, list):
        raise DatasetError(f"{path}: line 1: expected a JSON array of objects or JSON Lines, found "
                           f"{type(records).__name__}")
    for index, record in enumerate(records[:limit] if limit is not None else records, start=1):
        if not isinstance(record, dict):
            raise DatasetError(f"{path}: item {index}: expected a JSON object, found {type(record).__name__}")
        yield index, record


def _starts_with_array(path: Path) -> bool:
    return _sniff(path).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")


def read_csv(path: Path, max_row_bytes: int, limit: int | None = None):
    """(line_number, record); the whole file is first checked line by line (encoding, length)."""
    for _ in iter_text_lines(path, max_row_bytes):
        pass
    csv.field_size_limit(max_row_bytes)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        if not reader.fieldnames:
            raise DatasetError(f"{path}: line 1: no header row")
        count = 0
        try:
            for record in reader:
                if None in record:
                    raise DatasetError(f"{path}: line {reader.line_num}: more values than the "
                                       f"{len(reader.fieldnames)} header columns")
                yield reader.line_num, record
                count += 1
                if limit is not None and count >= limit:
                    return
        except csv.Error as exc:
            raise DatasetError(f"{path}: line {reader.line_num}: malformed CSV: {exc}") from None


def _arrow_tables(path: Path, fmt: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if fmt == "parquet":
            yield pq.read_table(path)
        elif fmt == "arrow":
            yield _read_arrow_file(path, pa)
        else:
            for arrow_file in _hf_arrow_files(path):
                yield _read_arrow_file(arrow_file, pa)
    except DatasetError:
        raise
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise DatasetError(f"{path}: cannot be read as {fmt}: {exc}") from None


def _read_arrow_file(path: Path, pa):
    """HF save_to_disk writes the Arrow streaming format; plain Arrow files are accepted too."""
    if path.stat().st_size == 0:
        raise DatasetError(f"{path}: the file is empty")
    try:
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_stream(source).read_all()
    except pa.ArrowInvalid:
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_file(source).read_all()


def _hf_arrow_files(folder: Path) -> list[Path]:
    """The data files of a save_to_disk folder (a Dataset; for a DatasetDict, its 'train' split or the
    only split)."""
    if (folder / "dataset_dict.json").exists():
        splits = json.loads((folder / "dataset_dict.json").read_text()).get("splits", [])
        if "train" in splits:
            folder = folder / "train"
        elif len(splits) == 1:
            folder = folder / splits[0]
        else:
            raise DatasetError(f"{folder}: a DatasetDict with splits {splits}; point at one split's folder")
    files = sorted(folder.glob("*.arrow"))
    if not files:
        raise DatasetError(f"{folder}: no .arrow files: not a folder written by datasets.save_to_disk")
    if (folder / "state.json").exists():
        listed = [f["filename"] for f in json.loads((folder / "state.json").read_text()).get("_data_files", [])]
        if listed:
            files = [folder / name for name in listed]
    return files


def read_arrow_rows(path: Path, fmt: str, max_row_bytes: int, limit: int | None = None):
    count = 0
    for table in _arrow_tables(path, fmt):
        for batch in table.to_batches(max_chunksize=1024):
            for record in batch.to_pylist():
                count += 1
                size = sum(len(v) if isinstance(v, (str, bytes)) else 16 for v in record.values())
                if size > max_row_bytes:
                    raise DatasetError(f"{path}: row {count} is larger than {max_row_bytes:,} bytes; "
                                       "nothing was imported")
                yield count, record
                if limit is not None and count >= limit:
                    return


def read_records(path: Path, max_row_bytes: int = MAX_ROW_BYTES, limit: int | None = None):
    fmt = detect_format(path)
    if fmt in ("jsonl", "csv"):
        _check_text_start(path)
        if fmt == "jsonl" and path.suffix.lower() == ".json" and _starts_with_array(path):
            return "json", read_json_array(path, max_row_bytes, limit)
        reader = read_jsonl if fmt == "jsonl" else read_csv
        return fmt, reader(path, max_row_bytes, limit)
    return fmt, read_arrow_rows(path, fmt, max_row_bytes, limit)
