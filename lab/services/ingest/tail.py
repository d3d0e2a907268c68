"""Reading an events file as it grows: where the last read stopped, whole-line blocks, JSON decoding.

A line without its newline is a write in progress (or torn by a crash): it is left for the next read.
A complete line that is not a JSON object with an integer `seq` and a known `type`, or whose seq is not
above the one before, is skipped and logged.
"""
from __future__ import annotations

import json
import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

READ_CHUNK = 4 << 20  # bytes read per pass over the file
MARK_BYTES = 128  # the bytes before the offset, to notice a file rewritten behind the reader's back


@dataclass
class EventTail:
    """Where reading one events file stopped: just past the last complete line."""

    offset: int = 0  # bytes
    lines: int = 0  # complete lines before offset (for error messages)
    seq: int = -1  # the last seq read
    inode: int | None = None
    mark: bytes = b""  # the file's bytes just before offset when they were read

    def restart(self, inode: int) -> None:
        self.offset, self.lines, self.seq, self.inode, self.mark = 0, 0, -1, inode, b""

    def open_blocks(self, handle):
        """Blocks of complete lines after this tail (from the start when the file is not the one read)."""
        if rewritten(handle, self):
            self.restart(os.fstat(handle.fileno()).st_ino)
        return blocks(handle, self.offset)

    def advance(self, block: bytes, events: list[dict]) -> None:
        """`block` (whose valid events are `events`) has been stored."""
        if events:
            self.seq = events[-1]["seq"]
        self.offset += len(block)
        self.lines += block.count(b"\n")
        self.mark = block[-MARK_BYTES:]


def blocks(handle, offset: int):
    """Runs of complete lines from `offset` on, about READ_CHUNK bytes each; a line in progress is left."""
    size = READ_CHUNK
    while True:
        handle.seek(offset)
        chunk = handle.read(size)
        end = chunk.rfind(b"\n")
        if end < 0:
            if len(chunk) < size:
                return  # only a line in progress
            size *= 2  # one line longer than a chunk
            continue
        yield chunk[: end + 1]
        if len(chunk) < size:
            return
        offset += end + 1
        size = READ_CHUNK


def rewritten(handle, tail: EventTail) -> bool:
    """Is the file not the one (or no longer the content) this tail read up to its offset?"""
    stat = os.fstat(handle.fileno())
    if stat.st_ino != tail.inode or stat.st_size < tail.offset:
        return True
    if tail.mark:
        handle.seek(tail.offset - len(tail.mark))
        return handle.read(len(tail.mark)) != tail.mark
    return False


class Prefetch:
    """Runs a call now, or in one helper thread (started when first needed) while the caller goes on.

    Preparing a block (JSON parsing, building rows) is pure Python; storing one mostly waits on the
    database server (the driver releases the GIL then), so on a long file the two overlap. A poll that
    finds one block starts no thread.
    """

    def __init__(self):
        self.pool: ThreadPoolExecutor | None = None

    def now(self, fn, *args) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future

    def later(self, fn, *args) -> Future:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-prepare")
        return self.pool.submit(fn, *args)

    def __enter__(self) -> "Prefetch":
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def parse_lines(data: bytes, path: Path, lines_before: int, last_seq: int, types) -> list[dict]:
    """The valid events of `data` (complete lines), in file order, each seq above the one before and of
    one of `types`."""
    events = []
    text = data.decode("utf-8", "replace")  # once per chunk: json.loads(bytes) re-detects the encoding per line
    for number, line in enumerate(text.split("\n")[:-1], start=lines_before + 1):
        try:
            event = decode(line)
        except ValueError as exc:
            if line.strip():
                logger.warning("%s line %d: not JSON (%s); line skipped", path, number, exc)
            continue
        seq = event.get("seq") if type(event) is dict else None
        if type(seq) is not int:  # bool is an int subclass but no seq
            logger.warning("%s line %d: no integer 'seq'; line skipped", path, number)
            continue
        if event.get("type") not in types:
            logger.warning("%s line %d: unknown type %r; line skipped", path, number, event.get("type"))
            continue
        if seq <= last_seq:
            logger.warning("%s line %d: seq %d after seq %d; line skipped", path, number, seq, last_seq)
            continue
        events.append(event)
        last_seq = seq
    return events


_raw_decode = json.JSONDecoder().raw_decode


def decode(line: str):
    """json.loads(line) less its per-call set-up: one JSON value, JSON whitespace around it allowed."""
    try:
        value, end = _raw_decode(line)
    except ValueError:
        value, end = _raw_decode(line, len(line) - len(line.lstrip(" \t\r")))  # leading whitespace
    if end != len(line) and line[end:].strip(" \t\r"):
        raise ValueError(f"Extra data at column {end + 1}")
    return value
