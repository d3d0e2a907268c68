"""Registered models: team members register hub ids; only an admin (a management command, Django admin)
registers a folder, by a root's name (LAB_MODEL_ROOTS) and a path relative to it — users never type a
server path. The web process never touches the network: a hub model's info stays unknown until a worker
downloads it."""
from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from lab.access import require_team_role
from lab.models import RegisteredModel, Team
from lab.services.model_info import read_model_info
from r1model.model.config import parse_hub_id

HUB_HELP = "a Hugging Face hub id, written org/name or org/name@revision"


class ModelFolderError(ValueError):
    """A folder model's root is not configured, or its folder is missing or leads out of the root."""


def parse_hub_reference(text: str) -> tuple[str, str] | None:
    """(repo, revision or "") of 'org/name[@revision]', or None: no whitespace, no '..' segment in the
    revision (the trainer would otherwise be handed a string that also reads as a relative path)."""
    if not isinstance(text, str) or not text or text != text.strip() or any(c.isspace() for c in text):
        return None
    parsed = parse_hub_id(text)
    if parsed is None:
        return None
    repo, revision = parsed
    if revision is not None and (revision.startswith("/") or ".." in revision.split("/") or revision.endswith("/")):
        return None
    if len(repo) > 200 or len(revision or "") > 100:
        return None
    return repo, revision or ""


def model_roots() -> dict[str, str]:
    return dict(getattr(settings, "LAB_MODEL_ROOTS", {}) or {})


def model_folder_path(root: str, folder: str) -> Path:
    """root's path / folder, confined: the real path (symlinks followed) must lie inside the root's real
    path and be a folder. ModelFolderError otherwise (the message names the root, never its path)."""
    roots = model_roots()
    if root not in roots:
        raise ModelFolderError(f"no model root named {root!r} (LAB_MODEL_ROOTS)")
    if not folder or os.path.isabs(folder) or ".." in Path(folder).parts or "\x00" in folder:
        raise ModelFolderError(f"{root}:{folder} must be a relative folder inside the root, without '..'")
    base = Path(roots[root])
    path = base / folder
    real, real_root = os.path.realpath(path), os.path.realpath(base)
    if real == real_root or not real.startswith(real_root + os.sep):
        raise ModelFolderError(f"{root}:{folder} leads outside its model root")
    if not os.path.isdir(real):
        raise ModelFolderError(f"{root}:{folder} is not a folder")
    return Path(real)


def _check_name(team: Team, name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["required"]})
    if len(name) > 100:
        raise ValidationError({"name": ["at most 100 characters"]})
    if RegisteredModel.objects.filter(team=team, name=name).exists():
        raise ValidationError({"name": [f"this team already has a model named {name!r}"]})
    return name


def _create(**fields) -> RegisteredModel:
    try:
        with transaction.atomic():
            return RegisteredModel.objects.create(**fields)
    except IntegrityError:  # a concurrent registration took the name
        raise ValidationError({"name": ["this team already has a model of that name"]}) from None


@transaction.atomic
def model_register_hub(*, team: Team, user, name: str, hub_id: str) -> RegisteredModel:
    """Register hub id 'org/name[@revision]' under `name` (team write role). Nothing is downloaded."""
    require_team_role(user, team, "write")
    name = _check_name(team, name)
    parsed = parse_hub_reference((hub_id or "").strip())
    if parsed is None:
        raise ValidationError({"hub_id": [f"{(hub_id or '').strip()!r} is not {HUB_HELP}"]})
    repo, revision = parsed
    return _create(team=team, name=name, kind=RegisteredModel.Kind.HUB, hub_id=repo, revision=revision,
                   created_by=user)


@transaction.atomic
def model_register_folder(*, team: Team, name: str, root: str, folder: str, user=None) -> RegisteredModel:
    """Register folder `folder` of model root `root` (trusted callers only: the management command, the
    admin). Reads its info (config, tokenizer, safetensors headers) once, now."""
    name = _check_name(team, name)
    folder = (folder or "").strip().strip("/")
    try:
        path = model_folder_path(root, folder)
    except ModelFolderError as exc:
        raise ValidationError({"folder": [str(exc)]}) from None
    if not (path / "config.json").is_file():
        raise ValidationError({"folder": [f"{root}:{folder} has no config.json (not a model folder)"]})
    return _create(team=team, name=name, kind=RegisteredModel.Kind.FOLDER, root=root, folder=folder,
                   info=read_model_info(path), created_by=user)


@transaction.atomic
def model_refresh_info(*, model: RegisteredModel) -> RegisteredModel:
    """Read a folder model's info again (after its files changed)."""
    if model.kind == RegisteredModel.Kind.FOLDER:
        try:
            path = model_folder_path(model.root, model.folder)
        except ModelFolderError as exc:
            raise ValidationError({"folder": [str(exc)]}) from None
        model.info = read_model_info(path)
        model.save(update_fields=["info"])
    return model
