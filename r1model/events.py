"""The run's event stream: `events.jsonl`, one JSON object a line, the only seam between trainer and lab.

Every event has `seq` (0, 1, 2, ... with no gaps), `type` (metric | trace | checkpoint | eval | status |
log) and `time` (Unix seconds). The lab ingests idempotently on (run, seq).

Exactly once across crashes: a checkpoint stores the writer's `next_seq`. A resumed run calls
`EventWriter.resume(next_seq)`, which cuts the file back to the events before that seq (the ones the dead
attempt wrote after its checkpoint) and numbers from there, so the re-run steps reuse the same seqs.
A torn last line (a crash in the middle of a write) is dropped when the writer opens the file.

A file that cannot be written (permissions, a full disk) raises EventWriteError, one line naming the file
and the cause: "cannot write events to runs/x/events.jsonl: Permission denied".

Only rank 0 writes (the seam for multi-process training); other ranks' writers accept every call and
write nothing. Standard library only.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator

EVENT_TYPES = ("metric", "trace", "checkpoint", "eval", "status", "log")
EVENTS_FILE = "events.jsonl"
TRACE_STATUSES = ("correct", "wrong", "unparseable", "skipped")


class EventWriteError(RuntimeError):
    """The events file cannot be written; the message names the file and the cause."""


def _json_safe(value: Any) -> Any:
    """NaN/inf become null (JSON has no such numbers); tensors/numpy scalars become Python numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # torch / numpy scalar
        return _json_safe(value.item())
    return value


def _complete_events(path: Path) -> tuple[list[tuple[int, int]], int]:
    """[(seq, end offset)] of the file's complete, parseable lines, and the offset where they end."""
    out: list[tuple[int, int]] = []
    good_end = 0
    offset = 0
    with path.open("rb") as handle:
        for line in handle:
            offset += len(line)
            if not line.endswith(b"\n"):
                break  # torn: written without its newline
            try:
                event = json.loads(line)
                seq = event["seq"]
            except (ValueError, KeyError, TypeError):
                break  # garbage from a torn write: everything after it is suspect
            out.append((int(seq), offset))
            good_end = offset
    return out, good_end


class EventWriter:
    """Appends events to `<run_dir>/events.jsonl`; each call is one fsync'd append (or one per `batch()`)."""

    def __init__(self, run_dir: str | os.PathLike, rank: int = 0):
        self.run_dir = Path(run_dir)
        self.rank = rank
        self.path = self.run_dir / EVENTS_FILE
        self.next_seq = 0
        self.last_step = 0  # the step of the last event written with one (what failed/stopped statuses report)
        self._handle = None
        self._batch_depth = 0
        if rank != 0:
            return
        with self._writing():
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                events, good_end = _complete_events(self.path)
                if good_end != self.path.stat().st_size:
                    os.truncate(self.path, good_end)
                self.next_seq = events[-1][0] + 1 if events else 0
            self._handle = self.path.open("ab")

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Any OSError inside becomes an EventWriteError naming the file and the cause."""
        try:
            yield
        except OSError as exc:
            raise EventWriteError(f"cannot write events to {self.path}: {exc.strerror or exc}") from exc

    # --- exact-once resume ------------------------------------------------------------------------
    def resume(self, next_seq: int) -> int:
        """Continue from a checkpoint that recorded `next_seq`: drop every event with seq >= next_seq.
        Returns how many events were dropped."""
        if self.rank != 0:
            self.next_seq = next_seq
            return 0
        with self._writing():
            self._handle.close()
            events, _ = _complete_events(self.path)
            keep_end = 0
            dropped = 0
            for seq, end in events:
                if seq < next_seq:
                    keep_end = end
                else:
                    dropped += 1
            os.truncate(self.path, keep_end)
            self._fsync_path()
            self.next_seq = next_seq
            self._handle = self.path.open("ab")
        return dropped

    # --- writing ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group several events under one fsync (e.g. the G traces of a group)."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                self._sync()

    def emit(self, type: str, **fields) -> int:
        """Append one event; returns its seq (-1 on ranks that do not write)."""
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}; expected one of {EVENT_TYPES}")
        if self.rank != 0:
            return -1
        seq = self.next_seq
        event = {"seq": seq, "type": type, "time": round(time.time(), 3), **_json_safe(fields)}
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._writing():
            self._handle.write(line.encode("utf-8"))
        self.next_seq = seq + 1
        if isinstance(fields.get("step"), int):
            self.last_step = fields["step"]
        if self._batch_depth == 0:
            self._sync()
        return seq

    def metric(self, step: int, values: dict[str, float], phase: str | None = None) -> int:
        fields: dict[str, Any] = {"step": int(step), "values": dict(values)}
        if phase:
            fields["phase"] = phase
        return self.emit("metric", **fields)

    def trace(
        self,
        step: int,
        group_id: str,
        prompt: str,
        completion: str,
        think: str | None,
        answer: str | None,
        rewards: dict[str, float | None],
        reward: float,
        advantage: float | None,
        correct: bool | None,
        status: str,
        tokens: int,
        truncated: bool,
        **extra,
    ) -> int:
        """One sampled completion of a group. status: correct | wrong | unparseable | skipped.
        extra: optional fields the lab keeps (prompt_id, gold: the reference answer, has_reflection,
        language_mix, source)."""
        if status not in TRACE_STATUSES:
            raise ValueError(f"unknown trace status {status!r}; expected one of {TRACE_STATUSES}")
        return self.emit(
            "trace", step=int(step), group_id=str(group_id), prompt=prompt, completion=completion,
            think=think, answer=answer, rewards=rewards, reward=reward, advantage=advantage,
            correct=correct, status=status, tokens=int(tokens), truncated=bool(truncated), **extra,
        )

    def checkpoint(self, step: int, path: str) -> int:
        return self.emit("checkpoint", step=int(step), path=str(path))

    def eval(self, step: int, benchmark: str, metric: str, value: float, n: int) -> int:
        return self.emit("eval", step=int(step), benchmark=benchmark, metric=metric, value=value, n=int(n))

    def status(
        self, phase: str, step: int, total: int, eta_s: float | None = None, message: str = "",
        stage: str | None = None, stages: list[dict] | None = None,
    ) -> int:
        """phase: starting | pretrain | sft | grpo | eval | rollout | checkpointing | done | failed | stopped.
        stage: which stage of the run `step` of `total` counts in — "base" (the base pretraining before the
        main job) or "main" (the job itself); each stage counts its steps from 0 to its own total.
        stages: the run's plan, [{"name", "total_steps"}] in order (the runner's "starting" status)."""
        fields = {"stage": stage} if stage else {}
        if stages is not None:
            fields["stages"] = stages
        return self.emit("status", phase=phase, step=int(step), total_steps=int(total), total=int(total),
                         eta_s=eta_s, message=message, **fields)

    def log(self, msg: str, level: str = "info", **fields) -> int:
        """A message; `fields` are extra JSON-ready data the lab may show (e.g. datasets' split sizes)."""
        return self.emit("log", message=str(msg), level=level, **fields)

    # --- plumbing ---------------------------------------------------------------------------------
    def _sync(self) -> None:
        if self._handle is not None:
            with self._writing():
                self._handle.flush()
                os.fsync(self._handle.fileno())

    def _fsync_path(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        try:
            with self._writing():
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            with contextlib.suppress(OSError):  # a failed flush above already said why
                handle.close()

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_events(path: str | os.PathLike, after_seq: int = -1, types: tuple[str, ...] | None = None) -> list[dict]:
    """The complete events of an events file with seq > after_seq (a torn last line is left out)."""
    path = Path(path)
    if path.is_dir():
        path = path / EVENTS_FILE
    if not path.exists():
        return []
    out = []
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict) or not isinstance(event.get("seq"), int):
                continue
            if event["seq"] > after_seq and (types is None or event.get("type") in types):
                out.append(event)
    return out
