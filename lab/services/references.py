"""A run's inputs are references the lab resolves inside the run's team — never server paths.

Every RunConfig field that names a file or folder holds, in the lab, one of these (INPUT_FIELDS):

    model.source              a model preset ("tiny", …), a checkpoint of a run: "run:ID@STEP"
                              ("run:ID" = that run's latest checkpoint, pinned to its step when the run is made),
                              a registered model of the team: "model:ID" (the Models page), or a Hugging
                              Face hub id: "hf:org/name[@revision]" (a name on the hub, not a server path)
    datasets[i].path          a dataset version of the team: "dataset:ID"
    base.datasets[i].path     the same
    evaluation.benchmarks[i]  "heldout", a built-in benchmark name, or "dataset:ID"
    rewards[i].model          refused: a reward model's checkpoint (prm) is passed by its chain, never by the lab

`check_inputs` runs when a run is created (the form, the API, a fork, a child run): it reads the database
only — never the file system, so an answer cannot tell which server paths exist — and any other string
(an absolute path, `..`, another team's run) is a field error. `resolve_inputs` runs on the worker just
before the trainer starts: it turns each reference into the folder or file on the data volume, and
refuses any that leads outside its run directory, the datasets folder or its model root (a symlink
included); a hub model becomes the trainer's 'hf:org/name@revision', downloaded there into HF_HOME.
The CLI (`python -m r1model`, local and trusted) keeps taking paths; only the lab speaks references.
"""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from lab.models import CheckpointRecord, Dataset, RegisteredModel, Run
from lab.services.model_registry import ModelFolderError, model_folder_path, parse_hub_reference
from r1model.model.config import PRESETS

CHECKPOINT_REF = re.compile(r"run:(?P<run>\d{1,18})(?:@(?P<step>\d{1,18}))?")
DATASET_REF = re.compile(r"dataset:(?P<id>\d{1,18})")
MODEL_REF = re.compile(r"model:(?P<id>\d{1,18})")
HUB_PREFIX = "hf:"
HELDOUT = "heldout"
INPUT_DIR = "input-checkpoint"  # an evaluation child's own copy of its parent's checkpoint

MODEL_HELP = (
    "a model preset ({presets}), a checkpoint of one of this team's runs, written run:ID@STEP "
    "(run:ID = its latest), a registered model of this team, written model:ID (the Models page lists them), "
    "or a Hugging Face hub id, written hf:org/name or hf:org/name@revision; server paths are not accepted"
)
DATASET_HELP = "a dataset of this team, written dataset:ID (the datasets page lists them); server paths are not accepted"


class InputError(Exception):
    """A reference that cannot be resolved when the trainer is about to start (deleted, rotated away)."""


def _benchmark_names() -> set[str]:
    from r1model.evaluate.benchmarks import list_benchmarks  # torch-free; imported when first needed

    return set(list_benchmarks())


def checkpoint_ref(run_id: int, step: int) -> str:
    return f"run:{run_id}@{step}"


def dataset_ref(dataset_id: int) -> str:
    return f"dataset:{dataset_id}"


def model_ref(model_id: int) -> str:
    return f"model:{model_id}"


def _dataset_fields(config: dict):
    """(field name, spec dict) for every dataset spec of the run and of its base stage."""
    for i, spec in enumerate(config.get("datasets") or []):
        if isinstance(spec, dict):
            yield f"datasets.{i}.path", spec
    base = config.get("base") or {}
    for i, spec in enumerate(base.get("datasets") or []):
        if isinstance(spec, dict):
            yield f"base.datasets.{i}.path", spec


def check_inputs(team_id: int, config: dict) -> dict:
    """`config` (a validated RunConfig dict) with every input a reference of team `team_id`, normalised
    (run:ID pinned to its latest checkpoint's step); ValidationError naming each field that is not."""
    config = copy.deepcopy(config)
    errors: dict[str, list[str]] = {}
    model = config.get("model") or {}
    source = model.get("source")
    if isinstance(source, str) and source not in PRESETS:
        normalised = _check_checkpoint(team_id, source) or _check_model(team_id, source)
        if normalised is None:
            errors["model.source"] = [f"{source!r} is not " + MODEL_HELP.format(presets=", ".join(sorted(PRESETS)))]
        else:
            model["source"] = normalised
    for field, spec in _dataset_fields(config):
        path = spec.get("path")
        if path is not None and _dataset(team_id, path) is None:
            errors[field] = [f"{path!r} is not " + DATASET_HELP]
    for i, reward in enumerate(config.get("rewards") or []):
        if isinstance(reward, dict) and reward.get("model") is not None:  # the prm reward's checkpoint: a path
            errors[f"rewards.{i}.model"] = ["a reward model is not an input the lab takes (server paths are not "
                                            "accepted); the prm-vs-orm chain trains and passes its own"]
    benchmarks = (config.get("evaluation") or {}).get("benchmarks") or []
    bad = [b for b in benchmarks if not is_benchmark(team_id, b)]
    if bad:
        errors["evaluation.benchmarks"] = [benchmark_error(bad)]
    if errors:
        raise ValidationError(errors)
    return config


def is_benchmark(team_id: int, name) -> bool:
    """'heldout', a built-in benchmark name, or a dataset reference of the team."""
    if not isinstance(name, str):
        return False
    return name == HELDOUT or name in _benchmark_names() or _dataset(team_id, name) is not None


def benchmark_error(bad: list) -> str:
    known = ", ".join(sorted(_benchmark_names() | {HELDOUT}))
    return f"unknown benchmark {bad[0]!r}: use one of {known}, or a dataset of this team (dataset:ID)"


def _check_checkpoint(team_id: int, source: str) -> str | None:
    match = CHECKPOINT_REF.fullmatch(source)
    if match is None:
        return None
    checkpoints = CheckpointRecord.objects.filter(run_id=int(match["run"]), run__team_id=team_id)
    if match["step"] is not None:
        checkpoints = checkpoints.filter(step=int(match["step"]))
    latest = checkpoints.order_by("-step").values_list("step", flat=True).first()
    return None if latest is None else checkpoint_ref(int(match["run"]), latest)


def _registered(team_id: int, reference: str) -> RegisteredModel | None:
    match = MODEL_REF.fullmatch(reference) if isinstance(reference, str) else None
    if match is None:
        return None
    return RegisteredModel.objects.filter(id=int(match["id"]), team_id=team_id).first()


def _check_model(team_id: int, source: str) -> str | None:
    """model:ID of a registered model of the team, or hf:org/name[@rev] (syntax only: no network)."""
    if source.startswith(HUB_PREFIX):
        return source if parse_hub_reference(source[len(HUB_PREFIX):]) is not None else None
    return source if _registered(team_id, source) is not None else None


def _dataset(team_id: int, reference: str) -> Dataset | None:
    match = DATASET_REF.fullmatch(reference) if isinstance(reference, str) else None
    if match is None:
        return None
    return Dataset.objects.filter(id=int(match["id"]), team_id=team_id).first()


# --- on the worker: references → paths on the data volume -----------------------------------------------

def resolve_inputs(run: Run) -> dict:
    """The run's config with each reference replaced by its server path, checked again against the run's
    team (a dataset or run may have been deleted since) and confined to the data volume's folders.
    InputError names the field and the reference."""
    config = copy.deepcopy(run.config)
    model = config.get("model") or {}
    source = model.get("source")
    if isinstance(source, str) and source not in PRESETS:
        if source.startswith(HUB_PREFIX) or MODEL_REF.fullmatch(source):
            model["source"] = _model_source(run.team_id, source)
        else:
            model["source"] = str(_checkpoint_path(run, source))
    for field, spec in _dataset_fields(config):
        if spec.get("path") is not None:
            spec["path"] = str(_dataset_path(run.team_id, field, spec["path"]))
    evaluation = config.get("evaluation") or {}
    evaluation_benchmarks = evaluation.get("benchmarks") or []
    for i, name in enumerate(evaluation_benchmarks):
        if isinstance(name, str) and DATASET_REF.fullmatch(name):
            evaluation_benchmarks[i] = str(_dataset_path(run.team_id, f"evaluation.benchmarks.{i}", name))
    return config


def _inside(path: Path, root: Path) -> bool:
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    return real == real_root or real.startswith(real_root + os.sep)


def _checkpoint_path(run: Run, source: str) -> Path:
    match = CHECKPOINT_REF.fullmatch(source)
    if match is None or match["step"] is None:
        raise InputError(f"model.source: {source!r} is not a checkpoint reference (run:ID@STEP)")
    parent_id, step = int(match["run"]), int(match["step"])
    # an evaluation child reads its own pinned copy (the parent may rotate the original away meanwhile)
    own_copy = Path(run.run_dir) / INPUT_DIR if run.run_dir else None
    if run.parent_id == parent_id and run.parent_step == step and own_copy and (own_copy / "config.json").is_file():
        return own_copy
    record = (CheckpointRecord.objects.filter(run_id=parent_id, run__team_id=run.team_id, step=step)
              .select_related("run").order_by("-seq").first())
    if record is None or not record.run.run_dir:
        raise InputError(f"model.source: no checkpoint {source} in this team")
    path = Path(record.path)
    if not path.is_absolute():
        path = Path(record.run.run_dir) / path
    if not _inside(path, Path(record.run.run_dir)):
        raise InputError(f"model.source: checkpoint {source} lies outside its run's directory")
    if not (path / "config.json").is_file():
        raise InputError(f"model.source: checkpoint {source} is no longer on disk (rotated away by keep_checkpoints?)")
    return path


def _model_source(team_id: int, source: str) -> str:
    """hf:org/name@rev stays so (the trainer then only asks the hub); model:ID → hf:<its hub id>, or its
    folder confined to its model root."""
    if source.startswith(HUB_PREFIX):
        parsed = parse_hub_reference(source[len(HUB_PREFIX):])
        if parsed is None:
            raise InputError(f"model.source: {source!r} is not a hub id (hf:org/name[@revision])")
        return HUB_PREFIX + (f"{parsed[0]}@{parsed[1]}" if parsed[1] else parsed[0])
    model = _registered(team_id, source)
    if model is None:
        raise InputError(f"model.source: no registered model {source} in this team")
    if model.kind == RegisteredModel.Kind.HUB:
        if parse_hub_reference(model.hub_source) is None:
            raise InputError(f"model.source: registered model {source} has no valid hub id")
        return HUB_PREFIX + model.hub_source
    try:
        path = model_folder_path(model.root, model.folder)
    except ModelFolderError as exc:
        raise InputError(f"model.source: registered model {source}: {exc}") from None
    if not (path / "config.json").is_file():
        raise InputError(f"model.source: registered model {source} has no config.json in its folder")
    return str(path)


def _dataset_path(team_id: int, field: str, reference: str) -> Path:
    dataset = _dataset(team_id, reference)
    if dataset is None:
        raise InputError(f"{field}: no dataset {reference} in this team")
    path = Path(dataset.path)
    if not _inside(path, Path(settings.DATASETS_DIR)):
        raise InputError(f"{field}: dataset {reference} lies outside the datasets folder")
    return path


def redact_paths(text: str) -> str:
    """`text` (a trainer's message or log tail) with the data volume's location hidden."""
    root = str(settings.LAB_DATA_DIR)
    return text.replace(root, "<data>") if text else text
