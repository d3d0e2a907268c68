"""Datasets: stage (validate, normalise, report), then save as a new version of a named dataset.

Staging writes the normalised JSONL (one r1model Problem a line) under DATASETS_DIR/staging and returns
the validation report; nothing is stored in the database until the user saves it after reading the
report. Saving the same content again under the same name returns the existing version.
r1model.tasks (standard library only) does the reading, checking and generating.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.http import Http404

from lab.access import require_team_role
from lab.models import Dataset, Project, Team

PREVIEW_ROWS = 20
STAGING = "staging"


@dataclass
class StagedDataset:
    """A validated, normalised file waiting for the user's go-ahead."""

    token: str
    name: str
    source: str
    path: str
    content_hash: str
    row_count: int
    report: dict
    generator: dict = field(default_factory=dict)
    ok: bool = True

    def to_session(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_session(cls, data: dict) -> "StagedDataset":
        return cls(**data)


def _staging_dir() -> Path:
    path = Path(settings.DATASETS_DIR) / STAGING
    path.mkdir(parents=True, exist_ok=True)
    return path


def _as_dict(value) -> dict:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return {"summary": str(value)}


def _write_jsonl(problems, target: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    count = 0
    with target.open("w", encoding="utf-8") as handle:
        for problem in problems:
            record = problem.to_dict() if hasattr(problem, "to_dict") else dict(problem)
            line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
            digest.update(line.encode("utf-8"))
            handle.write(line)
            count += 1
    return digest.hexdigest(), count


def task_names() -> list[str]:
    from r1model.tasks import TASKS

    return sorted(TASKS)


def task_knobs(name: str) -> dict:
    from r1model.tasks import get_task

    return dict(get_task(name).difficulty)


def stage_generated(*, name: str, task: str, n: int, seed: int = 0, split: str = "train", params: dict | None = None) -> StagedDataset:
    """Generate `n` problems of a built-in task and stage them; ValidationError for bad parameters."""
    from r1model.tasks import get_task

    params = params or {}
    if not isinstance(params, dict):
        raise ValidationError({"params": "a JSON object of difficulty knobs"})
    try:
        problems = get_task(task).generate(split, n, seed=seed, **params)
    except (KeyError, ValueError, TypeError) as exc:
        raise ValidationError({"params": str(exc).strip("'\"")}) from None
    token = secrets.token_hex(12)
    path = _staging_dir() / f"{token}.jsonl"
    content_hash, count = _write_jsonl(problems, path)
    ids = {p.id for p in problems}
    report = {
        "rows": count,
        "valid_rows": count,
        "duplicates": count - len(ids),
        "errors": [],
        "warnings": [] if count == len(ids) else [f"{count - len(ids)} repeated problems (the train split samples with replacement)"],
        "task": task,
    }
    generator = {"task": task, "n": n, "seed": seed, "split": split, **params}
    return StagedDataset(token=token, name=name, source=Dataset.Source.GENERATOR, path=str(path), content_hash=content_hash, row_count=count, report=report, generator=generator)


def stage_upload(*, name: str, upload) -> StagedDataset:
    """Store an uploaded file, read it with r1model.tasks.dataset_io and stage the normalised rows.

    A file that cannot be read at all still comes back staged with ok=False and the reason in its
    report, so the page can show what is wrong; it can never be saved.
    """
    if upload.size > settings.LAB_MAX_UPLOAD_BYTES:
        raise ValidationError({"file": f"{upload.size:,} bytes is over the limit of {settings.LAB_MAX_UPLOAD_BYTES:,}"})
    token = secrets.token_hex(12)
    suffix = Path(upload.name).suffix.lower() or ".jsonl"
    raw = _staging_dir() / f"{token}-upload{suffix}"
    with raw.open("wb") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)
    target = _staging_dir() / f"{token}.jsonl"
    try:
        problems, report = load_with_report(raw)
    except Exception as exc:  # the reader's own error names the file, line and problem
        raw.unlink(missing_ok=True)
        report = {**_as_dict(getattr(exc, "report", None)), "errors": [str(exc).replace(str(raw), upload.name)], "warnings": []}
        report.pop("path", None)
        return StagedDataset(token=token, name=name, source=Dataset.Source.UPLOAD, path="", content_hash="", row_count=0, report=report, ok=False)
    raw.unlink(missing_ok=True)
    content_hash, count = _write_jsonl(problems, target)
    report = {**report, "file": upload.name}
    report.pop("path", None)  # the staging path means nothing to the user
    ok = count > 0 and report.get("ok", True)
    return StagedDataset(token=token, name=name, source=Dataset.Source.UPLOAD, path=str(target), content_hash=content_hash, row_count=count, report=report, ok=ok)


def load_with_report(path: Path):
    """(problems, report dict) from r1model.tasks.dataset_io.load_dataset, whatever shape it returns."""
    from r1model.tasks.dataset_io import load_dataset

    result = load_dataset(path)
    if isinstance(result, tuple) and len(result) == 2:
        problems, report = result
    else:
        problems = getattr(result, "problems", None) or getattr(result, "rows", None) or []
        report = getattr(result, "report", None)
    return list(problems), _as_dict(report) or {"rows": len(problems)}


def staged_preview(staged: StagedDataset, rows: int = PREVIEW_ROWS) -> list[dict]:
    return file_preview(staged.path, rows) if staged.path else []


def file_preview(path: str, rows: int = PREVIEW_ROWS) -> list[dict]:
    """The first rows of a normalised JSONL file (read lazily); a file damaged on disk previews the rows
    before the damage (dataset_integrity says what is wrong)."""
    preview = []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in islice(handle, rows):
                row = json.loads(line)
                if not isinstance(row, dict):
                    break
                preview.append(row)
    except (FileNotFoundError, IsADirectoryError, ValueError):
        pass
    return preview


INTEGRITY_CACHE_S = 3600  # a verdict is kept this long for an unchanged file (same size, mtime, inode)


@dataclass(frozen=True)
class DatasetIntegrity:
    """Whether a dataset's file on disk is still the one that was validated and saved."""

    state: str  # "ok" | "corrupted" | "missing"
    message: str = ""
    actual_hash: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_integrity(dataset: Dataset) -> DatasetIntegrity:
    """Check the dataset's file against the content hash stored when it was saved (the sha256 of the
    normalised file's bytes). Hashing reads the whole file, so a verdict is cached per file state
    (size, mtime, inode): a file that changes is hashed again on the next look, an unchanged one not."""
    from django.core.cache import cache

    path = Path(dataset.path)
    try:
        stat = path.stat()
    except OSError:
        return DatasetIntegrity("missing", "missing: the dataset's file is no longer on disk; runs using it will fail. "
                                           "Upload or generate it again.")
    key = f"lab:dataset-integrity:{dataset.id}:{dataset.content_hash}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"
    cached = cache.get(key)
    if cached is not None:
        return DatasetIntegrity(*cached)
    try:
        actual = _file_sha256(path)
    except OSError as exc:
        return DatasetIntegrity("missing", f"missing: the dataset's file cannot be read ({exc.strerror or exc})")
    if actual == dataset.content_hash:
        verdict = DatasetIntegrity("ok", actual_hash=actual)
    else:
        verdict = DatasetIntegrity(
            "corrupted",
            f"corrupted: the file changed on disk since it was saved (sha256 now {actual[:12]}…, saved "
            f"{dataset.content_hash[:12]}…); runs using it will fail. Upload or generate it again.",
            actual,
        )
    cache.set(key, (verdict.state, verdict.message, verdict.actual_hash), INTEGRITY_CACHE_S)
    return verdict


@transaction.atomic
def dataset_create(*, team: Team, user, staged: StagedDataset, project: Project | None = None) -> Dataset:
    """Save a staged dataset as the next version of its name (or return the version with the same content)."""
    require_team_role(user, team, "write")
    if not staged.ok or not staged.path or not os.path.exists(staged.path):
        raise ValidationError("this dataset did not pass validation (or was saved already); stage it again")
    if project is not None and project.team_id != team.id:
        raise ValidationError({"project": "not a project of this team"})
    same = Dataset.objects.filter(team=team, name=staged.name, content_hash=staged.content_hash).order_by("-version").first()
    if same is not None:
        Path(staged.path).unlink(missing_ok=True)
        return same
    version = (Dataset.objects.filter(team=team, name=staged.name).aggregate(v=Max("version"))["v"] or 0) + 1
    final_dir = Path(settings.DATASETS_DIR) / team.slug
    final_dir.mkdir(parents=True, exist_ok=True)
    final = final_dir / f"{staged.name}-v{version}-{staged.content_hash[:12]}.jsonl"
    shutil.move(staged.path, final)
    try:
        return Dataset.objects.create(
            team=team, project=project, name=staged.name, version=version, source=staged.source,
            generator=staged.generator, path=str(final), content_hash=staged.content_hash,
            row_count=staged.row_count, report=staged.report, created_by=user,
        )
    except IntegrityError:  # a concurrent save took this version number
        raise ValidationError("another version was saved at the same moment; try again") from None


def stage_accepted_rollouts(*, name: str, run_dir: Path, run_id: int) -> StagedDataset:
    """Rejection sampling: stage the samples a rejection-sampling run accepted.

    The trainer decides what is accepted (r1model/train/rejection_sampling.py: the checker said correct, each text
    once per problem) and writes those rows to <run_dir>/accepted.jsonl; every sample is in rollouts.jsonl.
    Each row keeps the problem and its gold answer (a problem set) and the accepted `prompt`/`completion`
    pair (SFT data, R1's ~600k reasoning samples in miniature). ValidationError when nothing was accepted.
    """
    run_dir = Path(run_dir)
    with (run_dir / "rollouts.jsonl").open("rb") as handle:
        sampled = sum(1 for line in handle if line.strip())
    accepted = []
    accepted_path = run_dir / "accepted.jsonl"
    if accepted_path.exists():
        with accepted_path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                try:
                    row = json.loads(line)
                    accepted.append({key: row[key] for key in ("id", "problem", "answer", "prompt", "completion")}
                                    | {"reward": row.get("reward")})
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise ValidationError(f"{accepted_path}: line {line_no} is not an accepted-sample row") from None
    if not accepted:
        raise ValidationError(f"rejection-sampling run {run_id}: none of {sampled} samples was accepted; no dataset made")
    token = secrets.token_hex(12)
    path = _staging_dir() / f"{token}.jsonl"
    content_hash, count = _write_jsonl(accepted, path)
    report = {"rows": count, "valid_rows": count, "duplicates": 0, "errors": [], "warnings": [],
              "sampled": sampled, "accepted": count, "acceptance_rate": round(count / max(1, sampled), 4)}
    return StagedDataset(token=token, name=name, source=Dataset.Source.ROLLOUT, path=str(path),
                         content_hash=content_hash, row_count=count, report=report,
                         generator={"run": run_id, "sampled": sampled, "accepted": count})


def rejection_sampling_dataset_create(run) -> Dataset | None:
    """After a rejection-sampling run completes: its accepted samples become the next version of a team dataset.

    Idempotent (saving the same content returns the existing version); None when the run is not a
    rejection-sampling run, wrote no samples, accepted nothing, or its creator can no longer write datasets.
    """
    path = Path(run.run_dir) / "rollouts.jsonl" if run.run_dir else None
    if run.kind != "rejection_sampling" or path is None or not path.exists() or run.created_by is None:
        return None
    try:
        staged = stage_accepted_rollouts(name=f"rollouts-run-{run.id}", run_dir=path.parent, run_id=run.id)
        return dataset_create(team=run.team, user=run.created_by, staged=staged, project=run.project)
    except (ValidationError, PermissionDenied, Http404):
        return None
