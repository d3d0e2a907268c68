"""Writes on runs: create (validate, store, dispatch on commit), cancel, resume.

A run's state changes are conditional updates (`filter(id=…, status=…).update(…)`) so a click that
races a worker's claim or finish never overwrites it: exactly one side wins, the other sees 0 rows.
Dispatch (lab.services.dispatch, the workers' side) is imported lazily and called after commit.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from lab.access import require_team_role
from lab.models import Project, Run, RunStatus, Team
from lab.services.dispatch import dispatch_run
from lab.services.references import benchmark_error, check_inputs, is_benchmark
from lab.services.run_config import config_schema, recipe_config, recipe_input_errors, recipe_names, validated_config

logger = logging.getLogger(__name__)

RESUMABLE = (RunStatus.FAILED, RunStatus.CANCELLED)
RESUME_ATTEMPTS = 3  # fresh attempts granted by a resume


def _dispatch(run_id: int) -> None:
    try:
        dispatch_run(run_id)
    except Exception:  # the run stays queued; the workers' reconciler sends it again
        logger.exception("run %s: dispatch failed; it stays queued", run_id)


@transaction.atomic
def run_create(
    *,
    team: Team,
    user,
    config: dict,
    name: str,
    queue: str = Run.Queue.CPU,
    project: Project | None = None,
    recipe: str = "",
    quick: bool = False,
    parent: Run | None = None,
    parent_step: int | None = None,
    eval_every: int = 0,
    eval_benchmarks: list[str] | None = None,
    client_token: str = "",
    gpus: int = 0,
) -> Run:
    """Validate `config` (r1model RunConfig), store a queued run and send it to `queue` after commit.

    `gpus` = N > 0: only a worker with N free GPUs claims the run (lab.services.dispatch), on the gpu queue;
    its supervisor starts one trainer process per GPU, so N > 1 needs distributed.backend "deepspeed"
    (distributed.nproc_per_node is set to N; a different value there is an error).

    Inputs that name files (model.source, datasets' paths, benchmarks) must be references of `team`
    (run:ID@STEP, dataset:ID; lab.services.references): a server path is a field error, and nothing is read.

    `eval_every` = K > 0: every checkpoint at a multiple of K steps is evaluated by a child run of kind
    "evaluate" on `eval_benchmarks` (default: the config's evaluation.benchmarks); lab.services.evaluations.
    """
    require_team_role(user, team, "write")
    client_token = (client_token or "").strip()
    if client_token:  # the same request again (a retried POST, a double click): the run it made, not a second
        existing = _made_by_token(user, client_token)
        if existing is not None:
            return existing
    errors: dict[str, list[str]] = {}
    if len(client_token) > 100:
        errors["client_token"] = ["at most 100 characters"]
    name = (name or "").strip()
    if not name:
        errors["name"] = ["required"]
    if queue not in Run.Queue.values:
        errors["queue"] = [f"must be one of {', '.join(Run.Queue.values)}"]
    if project is not None and project.team_id != team.id:
        errors["project"] = ["not a project of this team"]
    if parent is not None and parent.team_id != team.id:
        errors["parent"] = ["not a run of this team"]
    if parent_step is not None and parent is None:
        errors["parent_step"] = ["needs a parent run"]
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 0:
        errors["eval_every"] = ["must be a whole number of steps, 0 or more (0 = no evaluation jobs)"]
    if eval_benchmarks is not None and (
        not isinstance(eval_benchmarks, list) or not all(isinstance(b, str) and b.strip() for b in eval_benchmarks)
    ):
        errors["eval_benchmarks"] = ["must be a list of benchmark names"]
    elif eval_benchmarks and not all(is_benchmark(team.id, b.strip()) for b in eval_benchmarks):
        errors["eval_benchmarks"] = [benchmark_error([b for b in eval_benchmarks if not is_benchmark(team.id, b.strip())])]
    if isinstance(gpus, bool) or not isinstance(gpus, int) or not 0 <= gpus <= 64:
        errors["gpus"] = ["must be a whole number of GPUs from 0 to 64 (0 = a CPU run)"]
    elif gpus > 0:
        queue = Run.Queue.GPU
    if recipe and recipe not in recipe_names():
        errors["recipe"] = [f"unknown recipe {recipe!r}"]
    if errors:
        raise ValidationError(errors)
    if recipe:  # the recipe's own config, with whatever the user changed on top (datasets, seed, ...)
        config = recipe_config(recipe, quick=quick, overrides=config)
    if config and not config.get("name") and "name" in config_schema().get("properties", {}):
        config = {**config, "name": name[:200]}
    if gpus > 1:
        config = _ranks_for_gpus(config, gpus)
    validated = {}
    if config:
        run_config = validated_config(config)  # the one validation of the run's config
        missing = recipe_input_errors(recipe, run_config) if recipe else {}  # e.g. evaluate without a checkpoint
        if missing:
            raise ValidationError(missing)
        # files and folders only as references of this team (lab.services.references)
        validated = check_inputs(team.id, run_config.model_dump(mode="json"))
    return create_and_dispatch(
        team=team, project=project, name=name[:200], kind=str(validated.get("kind") or ("recipe" if recipe else "grpo"))[:24],
        recipe=recipe, quick=quick, config=validated, queue=queue, parent=parent, parent_step=parent_step,
        eval_every=eval_every, eval_benchmarks=[b.strip() for b in eval_benchmarks or []], created_by=user,
        client_token=client_token, gpu_count=gpus,
    )


def create_and_dispatch(**fields) -> Run:
    """Store a queued run (once per client token: a concurrent twin gets the run the first one made) and
    send it to its queue after commit."""
    client_token = fields.get("client_token", "")
    try:
        with transaction.atomic():  # a savepoint: a concurrent twin that wins the token leaves this one usable
            run = _create_row(**fields)
    except IntegrityError:
        existing = _made_by_token(fields["created_by"], client_token) if client_token else None
        if existing is None:
            raise
        return existing
    transaction.on_commit(lambda: _dispatch(run.id))
    return run


def _ranks_for_gpus(config: dict, gpus: int) -> dict:
    """One trainer process per GPU: distributed.nproc_per_node = gpus, under backend deepspeed."""
    dist = dict(config.get("distributed") or {})
    if not config or config.get("kind") == "chain":
        raise ValidationError({"gpus": [f"{gpus} GPUs need a config (not a chain) with distributed.backend 'deepspeed'"]})
    if dist.get("backend") != "deepspeed":
        raise ValidationError({"gpus": [f"{gpus} GPUs run one process per GPU: set distributed.backend to 'deepspeed'"]})
    if int(dist.get("nproc_per_node") or 1) not in (1, gpus):
        raise ValidationError({"gpus": [f"{gpus} GPUs but distributed.nproc_per_node is {dist['nproc_per_node']}: "
                                        "one process per GPU"]})
    return {**config, "distributed": {**dist, "nproc_per_node": gpus}}


def _made_by_token(user, client_token: str) -> Run | None:
    run = Run.objects.filter(created_by=user, client_token=client_token).first()
    if run is not None:
        run.replayed = True  # the API answers 200 (not 201) and says so
    return run


def _create_row(**fields) -> Run:
    run = Run.objects.create(status=RunStatus.QUEUED, last_activity_at=timezone.now(), **fields)
    run.run_dir = str(settings.RUNS_DIR / f"run-{run.id}")
    run.save(update_fields=["run_dir"])
    return run


def run_cancel(*, run: Run, user) -> str:
    """queued → cancelled at once; starting/running → cancelling (the worker stops the trainer).

    Returns the new status; ValidationError when the run has finished already.
    """
    require_team_role(user, run.team_id, "write")
    run = _chain_of(run)  # a chain's stage: its chain is cancelled (one trainer runs every stage)
    now = timezone.now()
    note = f"cancelled by {user.get_username()}"
    if Run.objects.filter(id=run.id, status=RunStatus.QUEUED).update(
        status=RunStatus.CANCELLED, finished_at=now, message=note, last_activity_at=now
    ):
        run.status = RunStatus.CANCELLED
        return run.status
    if Run.objects.filter(id=run.id, status__in=(RunStatus.STARTING, RunStatus.RUNNING)).update(
        status=RunStatus.CANCELLING, message=note, last_activity_at=now
    ):
        run.status = RunStatus.CANCELLING
        return run.status
    current = Run.objects.filter(id=run.id).values_list("status", flat=True).first()
    if current == RunStatus.CANCELLING:
        return current
    raise ValidationError(f"a {current} run cannot be cancelled")


def _chain_of(run: Run) -> Run:
    """A stage run of a chain (lab.services.chains) stands for its chain run in cancel and resume."""
    if run.chain_stage and run.parent_id:
        return Run.objects.get(id=run.parent_id)
    return run


def run_resume(*, run: Run, user) -> str:
    """failed/cancelled → queued (continuing from its last checkpoint), then dispatch again. A chain resumes
    itself: completed stages are kept, the failed or stopped one resumes from its checkpoints."""
    require_team_role(user, run.team_id, "write")
    run = _chain_of(run)
    now = timezone.now()
    with transaction.atomic():
        changed = Run.objects.filter(id=run.id, status__in=RESUMABLE).update(
            status=RunStatus.QUEUED,
            worker=None,
            heartbeat_at=None,
            finished_at=None,
            eta_s=None,
            max_attempts=F("attempt") + RESUME_ATTEMPTS,
            message=f"resumed by {user.get_username()}",
            retry_reason=f"resumed by {user.get_username()}"[:300],
            last_activity_at=now,
        )
        if not changed:
            current = Run.objects.filter(id=run.id).values_list("status", flat=True).first()
            raise ValidationError(f"a {current} run cannot be resumed (only failed or cancelled runs)")
        transaction.on_commit(lambda: _dispatch(run.id))
    run.status = RunStatus.QUEUED
    return run.status

