"""Chain runs in the lab (r1model.train.chains): one parent run per chain, one child run per stage.

Launching a chain (`chain_create`) stores one run of kind "chain" (recipe = the chain's name, config = the
chain's options: {"chain", "quick", "seed"?, "model": {"source": a reference}?}); the worker runs
`recipe run CHAIN --run-dir RUN_DIR [...]` (`chain_args`) in that run's directory, and each poll calls
`chain_sync`, which reads RUN_DIR/chain.json and, for every stage that has started:
- makes sure a child run exists (parent = the chain run, chain_stage = the stage's name, run_dir = the
  stage's directory, kind = the stage config's kind or "data"): idempotent (unique (parent, chain_stage));
- stores the stage's events.jsonl into that child (lab.services.ingest, one EventTail per stage);
- mirrors the stage's status and one-line reason onto the child;
and stores on the chain run its progress (step = stages completed, total_steps = stages), the failed
stage's reason, and in `result` the stages as the pages show them (artifacts as references: run:ID@STEP
for checkpoints, file names for the rest; lineage between child runs) and, once written, comparison.json.
Pages read the database only; nothing here is read from disk per request. No server path is stored in a
child's config, a message or `result`.

`chain_import` brings a chain directory made on the command line (bench/finding_*.py) in the same way: one
chain run found again by its directory, then `chain_sync` with final=True; nothing is dispatched.
"""
from __future__ import annotations

import copy
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from lab.access import require_team_role
from lab.models import Project, Run, RunStatus, Team
from lab.services.ingest import EventTail, ingest_events
from lab.services.references import check_inputs, checkpoint_ref, redact_paths, resolve_inputs
from r1model.train.chains import CHAIN_JSON, COMMIT, COMPARISON_JSON, chain_plan, get_chain, git_head
from r1model.train.findings import CHAINS

logger = logging.getLogger(__name__)

CHAIN_KIND = "chain"
STAGE_STATUS = {"running": RunStatus.RUNNING, "completed": RunStatus.COMPLETED, "failed": RunStatus.FAILED,
                "stopped": RunStatus.CANCELLED}
CHECKPOINT_DIR = re.compile(r"(?:^|/)checkpoints/step-(\d+)$")
INGEST_PER_POLL = 50_000
MAX_SEEDS = 10  # chain runs one launch may queue (one per seed)


def chain_names() -> list[str]:
    return list(CHAINS)


def is_chain(name: str) -> bool:
    return name in CHAINS


def chain_description(name: str) -> dict:
    """The chain's plan without paths (stages, what each runs, where its inputs come from), for the pages."""
    plan = chain_plan(get_chain(name))
    for stage in plan["stages"]:
        stage.pop("dir", None)
    return plan


# --------------------------------------------------------------------------------------------- launching

@transaction.atomic
def chain_create(*, team: Team, user, chain: str, name: str = "", quick: bool = False, seed: int | None = None,
                 base_model: str = "", queue: str = Run.Queue.CPU, project: Project | None = None,
                 client_token: str = "") -> Run:
    """A queued chain run of `chain` (dispatched after commit). `base_model`: the base stage's model.source,
    a preset or a reference of the team (run:ID@STEP, model:ID, hf:…) — never a server path."""
    from lab.services.runs import _made_by_token, create_and_dispatch

    require_team_role(user, team, "write")
    client_token = (client_token or "").strip()
    if client_token:
        existing = _made_by_token(user, client_token)
        if existing is not None:
            return existing
    errors: dict[str, list[str]] = {}
    if chain not in CHAINS:
        errors["chain"] = [f"unknown chain {chain!r}; known: {', '.join(sorted(CHAINS))}"]
    name = (name or "").strip() or chain
    if queue not in Run.Queue.values:
        errors["queue"] = [f"must be one of {', '.join(Run.Queue.values)}"]
    if project is not None and project.team_id != team.id:
        errors["project"] = ["not a project of this team"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        errors["seed"] = ["must be a whole number, 0 or more"]
    if len(client_token) > 100:
        errors["client_token"] = ["at most 100 characters"]
    config: dict = {"chain": chain, "quick": bool(quick)}
    if seed is not None and "seed" not in errors:
        config["seed"] = seed
    base_model = (base_model or "").strip()
    if base_model:
        try:
            config["model"] = {"source": check_inputs(team.id, {"model": {"source": base_model}})["model"]["source"]}
        except ValidationError as exc:
            errors["base_model"] = [m for messages in exc.message_dict.values() for m in messages]
    if errors:
        raise ValidationError(errors)
    return create_and_dispatch(team=team, project=project, name=name[:200], kind=CHAIN_KIND, recipe=chain,
                               quick=bool(quick), config=config, queue=queue, created_by=user, client_token=client_token)


def parse_seeds(text: str) -> list[int | None]:
    """The form's seeds field: "" → [None] (the recipes' default), "3" → [3], "0,1,2" → three seeds (at most
    MAX_SEEDS, each a whole number ≥ 0, none twice); ValidationError on `seed` otherwise."""
    parts = [p.strip() for p in (text or "").split(",")]
    if parts == [""]:
        return [None]
    if any(not re.fullmatch(r"[0-9]{1,9}", p) for p in parts):
        raise ValidationError({"seed": [f"seeds: whole numbers 0 or more, separated by commas (e.g. 0,1,2); got {text!r}"[:300]]})
    seeds = [int(p) for p in parts]
    if len(set(seeds)) != len(seeds):
        raise ValidationError({"seed": ["seeds: each seed once"]})
    if len(seeds) > MAX_SEEDS:
        raise ValidationError({"seed": [f"seeds: at most {MAX_SEEDS} at once"]})
    return seeds


def chain_args(run: Run, run_dir: Path) -> list[str]:
    """The trainer's arguments for a chain run (on the worker: the base model's reference resolved here)."""
    config = run.config or {}
    args = ["recipe", "run", run.recipe, "--run-dir", str(run_dir)]
    if config.get("quick", run.quick):
        args.append("--quick")
    if isinstance(config.get("seed"), int):
        args += ["--seed", str(config["seed"])]
    if (config.get("model") or {}).get("source"):
        source = resolve_inputs(run)["model"]["source"]
        args += ["--set", f"base:model.source={source}"]
    return args


# --------------------------------------------------------------------------------------------- the worker's side

class ChainTails:
    """What one supervisor keeps between polls: an EventTail per stage, and the stages ingested to the end."""

    def __init__(self):
        self.tails: dict[str, EventTail] = {}
        self.done: set[tuple[str, int]] = set()


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _when(stamp) -> datetime | None:
    return datetime.fromtimestamp(stamp, tz=dt_timezone.utc) if isinstance(stamp, (int, float)) else None


def _stage_ref(artifact: str, path: str, child: Run | None) -> str:
    """An artifact as the pages show it: run:ID@STEP for a checkpoint, else the file's name."""
    match = CHECKPOINT_DIR.search(path or "")
    if artifact == "checkpoint" and match and child is not None:
        return checkpoint_ref(child.id, int(match.group(1)))
    return Path(path or artifact).name


def _child_config(root: Path, stage_dir: Path, entry: dict, children: dict[str, Run]) -> dict:
    """The stage's config.json with its inputs as references (run:ID@STEP) or names, never server paths."""
    config = read_json(stage_dir / "config.json")
    if config is None:
        return {}
    config = copy.deepcopy(config)
    inputs = entry.get("inputs") or {}
    for field, origin in inputs.items():
        ref = _stage_ref(origin.get("artifact", ""), origin.get("path", ""), children.get(origin.get("stage")))
        if field == "model.source" and isinstance(config.get("model"), dict):
            config["model"]["source"] = ref
        elif field == "datasets":
            for spec in config.get("datasets") or []:
                if isinstance(spec, dict) and spec.get("path"):
                    spec["path"] = f"{origin.get('stage')}/{ref}"
    return _redacted(root, config)


def _scrub(root: Path, text: str) -> str:
    """`text` without the chain's directory (→ "<run>") or the data volume's location (→ "<data>")."""
    return redact_paths(text.replace(str(root), "<run>")) if text else text


def _redacted(root: Path, value):
    if isinstance(value, str):
        return _scrub(root, value)
    if isinstance(value, list):
        return [_redacted(root, v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(root, v) for k, v in value.items()}
    return value


def _child_create(parent: Run, root: Path, entry: dict, index: int, kind: str) -> Run:
    fields = dict(team_id=parent.team_id, project_id=parent.project_id, created_by_id=parent.created_by_id,
                  name=f"{parent.name} · {index:02d} {entry['name']}"[:200], kind=kind[:24],
                  recipe=str(entry.get("recipe") or "")[:64], quick=parent.quick, queue=parent.queue,
                  status=RunStatus.RUNNING, run_dir=str(root / entry["dir"]), max_attempts=1,
                  last_activity_at=timezone.now())
    try:
        with transaction.atomic():
            child, _ = Run.objects.get_or_create(parent=parent, chain_stage=entry["name"], defaults=fields)
    except IntegrityError:  # a concurrent sync made it
        child = Run.objects.get(parent=parent, chain_stage=entry["name"])
    return child


def chain_sync(parent: Run, root: Path | None = None, tails: ChainTails | None = None, *, final: bool = False,
               attempt: int | None = None, commit: str | None = None, commit_at_import: bool = False) -> dict | None:
    """Bring the chain run and its stage runs in line with ROOT/chain.json (ROOT: the chain run's directory);
    returns chain.json's content (None before it exists). Idempotent; `attempt` fences the parent's writes.
    The run's commit is the one chain.json records for its code, else `commit` (the worker's checkout; with
    `commit_at_import`, the importing checkout's HEAD, marked as not the measured one)."""
    root = Path(root or parent.run_dir)
    tails = tails if tails is not None else ChainTails()
    state = read_json(root / CHAIN_JSON)
    if state is None or not isinstance(state.get("stages"), list):
        return None
    children = {c.chain_stage: c for c in Run.objects.filter(parent_id=parent.id).exclude(chain_stage="")}
    stages_view, completed = [], 0
    for index, entry in enumerate(state["stages"], 1):
        name, status = entry.get("name"), entry.get("status", "pending")
        if not isinstance(name, str) or not isinstance(entry.get("dir"), str):
            continue
        completed += status == "completed"
        stage_dir = root / entry["dir"]
        child = children.get(name)
        if child is None and status != "pending":
            config = read_json(stage_dir / "config.json") or {}
            kind = "data" if entry.get("kind") == "data" else str(config.get("kind") or "run")
            child = children[name] = _child_create(parent, root, entry, index, kind)
        if child is not None:
            _sync_child(root, child, entry, stage_dir, status, tails, final, children)
        stages_view.append(_stage_view(root, index, entry, child, children))
    view = {"chain": state.get("chain"), "status": state.get("status"),
            "reason": _scrub(root, state.get("reason") or ""), "options": _redacted(root, state.get("options") or {}),
            "stages": stages_view, "lineage": [_lineage_view(link, children) for link in state.get("lineage") or []
                                               if isinstance(link, dict)]}
    result = dict(Run.objects.filter(id=parent.id).values_list("result", flat=True).first() or {})
    result["chain"] = view
    recorded = recorded_code(state)
    if recorded is not None:  # the code the chain's stages ran, as chain.json recorded it
        result.update(commit=recorded["commit"], commit_dirty=recorded["dirty"])
        result.pop("commit_at_import", None)
    elif commit is not None and "commit" not in result:
        result["commit"] = commit
        if commit_at_import:
            result["commit_at_import"] = True
    options = state.get("options") or {}
    result["seed"] = options.get("seed")
    comparison = read_json(root / COMPARISON_JSON) if state.get("status") == "completed" else None
    if comparison is not None:
        result["comparison"] = _redacted(root, comparison)
        result.setdefault("measured_at", timezone.now().isoformat())
    running = next((s for s in stages_view if s["status"] == "running"), None)
    update = {"result": result, "step": completed, "total_steps": len(stages_view),
              "phase": (running["name"] if running else str(state.get("status") or ""))[:32],
              "last_activity_at": timezone.now()}
    if state.get("status") == "failed":
        update["message"] = view["reason"][:4000]
    rows = Run.objects.filter(id=parent.id)
    if attempt is not None:
        rows = rows.filter(attempt=attempt)
    rows.update(**update)
    return state


def _sync_child(root: Path, child: Run, entry: dict, stage_dir: Path, status: str, tails: ChainTails, final: bool,
                children: dict[str, Run]) -> None:
    attempts = int(entry.get("attempts") or 0)
    finished = status in ("completed", "failed", "stopped")
    if not child.config and entry.get("kind") != "data":  # first: ingestion reads the stage plan from it
        config = _child_config(root, stage_dir, entry, children)
        if config:
            # The stage may have started before it wrote config.json: its kind comes with the config.
            kind = str(config.get("kind") or child.kind)[:24]
            Run.objects.filter(id=child.id).update(config=config, kind=kind)
            child.config, child.kind = config, kind
    if entry.get("kind") != "data" and (entry.get("name"), attempts) not in tails.done:
        tail = tails.tails.setdefault(entry["name"], EventTail())
        ingest_events(child, stage_dir / "events.jsonl", tail=tail, final=final or finished,
                      max_events=None if final or finished else INGEST_PER_POLL)
        if finished:
            tails.done.add((entry["name"], attempts))
    update: dict = {}
    new_status = STAGE_STATUS.get(status)
    if new_status and child.status != new_status:
        update["status"] = new_status
    message = _scrub(root, entry.get("reason") or "")
    if entry.get("kind") == "data" and isinstance(entry.get("summary"), dict):
        update["result"] = {"summary": _redacted(root, entry["summary"])}
        if not message and status == "completed":
            message = _data_summary_line(entry["summary"])
    if message != child.message:
        update["message"] = message[:4000]
    started, ended = _when(entry.get("started")), _when(entry.get("finished")) if finished else None
    if started and child.started_at != started:
        update["started_at"] = started
    if child.finished_at != ended:
        update["finished_at"] = ended
    if update:
        Run.objects.filter(id=child.id).update(**update, last_activity_at=timezone.now())
        for key, value in update.items():
            setattr(child, key, value)


def _data_summary_line(summary: dict) -> str:
    rows = summary.get("rows", summary.get("kept"))
    return f"{rows} rows" if isinstance(rows, int) else ""


def _stage_view(root: Path, index: int, entry: dict, child: Run | None, children: dict[str, Run]) -> dict:
    artifacts = [{"name": key, "ref": _stage_ref(key, path, child)}
                 for key, path in sorted((entry.get("artifacts") or {}).items()) if isinstance(path, str)]
    inputs = []
    for field, origin in sorted((entry.get("inputs") or {}).items()):
        source = children.get(origin.get("stage"))
        inputs.append({"as": field, "stage": origin.get("stage"), "artifact": origin.get("artifact"),
                       "run": source.id if source else None,
                       "ref": _stage_ref(origin.get("artifact", ""), origin.get("path", ""), source)})
    view = {"index": index, "name": entry.get("name"), "kind": entry.get("kind"), "recipe": entry.get("recipe"),
            "make": entry.get("make"), "description": entry.get("description", ""),
            "status": entry.get("status", "pending"), "reason": _scrub(root, entry.get("reason") or ""),
            "attempts": entry.get("attempts", 0), "run": child.id if child else None,
            "artifacts": artifacts, "inputs": inputs}
    if isinstance(entry.get("summary"), dict):
        view["summary"] = _redacted(root, entry["summary"])
    return view


def _lineage_view(link: dict, children: dict[str, Run]) -> dict:
    source, target = children.get(link.get("from")), children.get(link.get("to"))
    return {"from": link.get("from"), "to": link.get("to"), "artifact": link.get("artifact"), "as": link.get("as"),
            "from_run": source.id if source else None, "to_run": target.id if target else None,
            "ref": _stage_ref(link.get("artifact", ""), link.get("path", ""), source)}


def settle_stage_runs(parent_id: int, status: str, message: str = "") -> int:
    """The chain run has ended (`status`): its stage runs still shown running end the same way."""
    if status not in (RunStatus.CANCELLED, RunStatus.FAILED):
        return 0
    return Run.objects.filter(parent_id=parent_id, status__in=(RunStatus.RUNNING, RunStatus.CANCELLING)).exclude(
        chain_stage="").update(status=status, finished_at=timezone.now(),
                               message=message or f"the chain run was {status}")


def recorded_code(state: dict) -> dict | None:
    """{"commit", "dirty"} of the code that wrote the chain's comparison (else its last started stage's), as
    chain.json records it (r1model.train.chains.code_commit); None for a chain directory from before that."""
    stages = [s for s in state.get("stages") or [] if isinstance(s, dict)]
    for code in [state.get("code")] + [s.get("code") for s in reversed(stages)]:
        if isinstance(code, dict) and isinstance(code.get("commit"), str) and (
                COMMIT.fullmatch(code["commit"]) or code["commit"] == "unknown"):
            return {"commit": code["commit"], "dirty": bool(code.get("dirty"))}
    return None



# --------------------------------------------------------------------------------------------- importing

CHAIN_STATES = ("pending", "running", "completed", "failed", "stopped")
# chain.json's status → the chain run's; an unfinished chain (still running on the command line, or killed)
# is shown cancelled, never running: a running run without a worker would be requeued by the reaper.
IMPORT_STATUS = {"completed": RunStatus.COMPLETED, "failed": RunStatus.FAILED, "stopped": RunStatus.CANCELLED}


@dataclass
class ChainImportResult:
    run: Run
    created: bool
    new_stage_runs: int


def _read_chain_json(run_dir: Path) -> dict:
    """ROOT/chain.json, checked: a known chain, a stage list, options as run_chain writes them."""
    path = run_dir / CHAIN_JSON
    if not path.is_file():
        raise ValidationError(f"{path}: missing; is this a chain directory (`recipe run CHAIN --run-dir DIR`)?")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(state, dict):
        raise ValidationError(f"{path}: not a chain.json (a JSON object expected)")
    chain = state.get("chain")
    if not isinstance(chain, str) or chain not in CHAINS:
        raise ValidationError(f"{path}: unknown chain {str(chain)[:100]!r}; known: {', '.join(sorted(CHAINS))}")
    options = state.get("options")
    problems = []
    if not isinstance(state.get("stages"), list) or not all(
            isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("dir"), str)
            for s in state["stages"]):
        problems.append("stages: a list of stages, each with a name and a dir")
    if state.get("status") not in CHAIN_STATES:
        problems.append(f"status: one of {', '.join(CHAIN_STATES)}")
    if not isinstance(options, dict):
        problems.append("options: an object")
    else:
        if not isinstance(options.get("quick", False), bool):
            problems.append("options.quick: true or false")
        seed = options.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            problems.append("options.seed: a whole number, 0 or more, or null")
        if not isinstance(options.get("sets", []), list):
            problems.append("options.sets: a list")
    if problems:
        raise ValidationError(f"{path}: not a valid chain.json ({'; '.join(problems)})")
    return state


def chain_import(*, team: Team, run_dir: str | Path, project: Project | None = None, name: str = "",
                 user=None) -> ChainImportResult:
    """A chain directory made by the CLI (`recipe run CHAIN --run-dir DIR`, bench/finding_*.py) as a chain run
    of `team`, as if the lab had run it: found again by its directory within the team, else made (recipe = the
    chain, config = its options as chain_create stores them, plus the `--set` changes when there were any);
    then `chain_sync` stores a run per started stage, their events, lineage and comparison.json. Idempotent;
    nothing is dispatched. The commit is the one chain.json records for its stages' code; a directory from before
    chains recorded it gets the checkout holding DIR at the first import ("unknown" outside one), marked as such."""
    if user is not None:
        require_team_role(user, team, "write")
    run_dir = Path(run_dir).resolve()
    if not run_dir.is_dir():
        raise ValidationError(f"{run_dir}: not a directory")
    state = _read_chain_json(run_dir)
    if project is not None and project.team_id != team.id:
        raise ValidationError("project: not a project of this team")
    options = state["options"]
    config: dict = {"chain": state["chain"], "quick": bool(options.get("quick", False))}
    if isinstance(options.get("seed"), int):
        config["seed"] = options["seed"]
    if options.get("sets"):
        config["sets"] = _redacted(run_dir, options["sets"])
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(team=team, kind=CHAIN_KIND, run_dir=str(run_dir)).first()
        created = run is None
        if created:
            run = Run.objects.create(
                team=team, project=project, name=((name or "").strip() or f"{state['chain']} · {run_dir.name}")[:200],
                kind=CHAIN_KIND, recipe=state["chain"][:64], quick=config["quick"], config=config,
                # final from the start: a running run without a worker would be requeued by the reaper while
                # chain_sync below stores the stages' events, and a worker would run the folder's chain again
                status=IMPORT_STATUS.get(state.get("status"), RunStatus.CANCELLED), run_dir=str(run_dir),
                created_by=user, max_attempts=1,
                message="imported from a command-line chain directory")
    before = Run.objects.filter(parent_id=run.id).count()
    state = chain_sync(run, root=run_dir, final=True, commit=git_head(run_dir), commit_at_import=True) or state
    run.refresh_from_db()
    # a chain the lab itself runs (a worker holds it, or it waits for one) keeps its state
    if run.worker_id is None and run.status not in (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.CANCELLING):
        status = IMPORT_STATUS.get(state.get("status"), RunStatus.CANCELLED)
        update = {"status": status, "eta_s": None,
                  "finished_at": _when(state.get("updated")) or run.finished_at or timezone.now()}
        started = [s["started"] for s in state["stages"] if isinstance(s.get("started"), (int, float))]
        if started:
            update["started_at"] = _when(min(started))
        if status == RunStatus.CANCELLED:
            update["message"] = (f"chain.json says {state.get('status')}: "
                                 f"{_scrub(run_dir, state.get('reason') or 'not finished')}; import again once it ends")[:4000]
        elif status == RunStatus.COMPLETED:
            update["message"] = ""
        Run.objects.filter(id=run.id).update(**update)
        settle_stage_runs(run.id, status, f"the chain is {state.get('status')} in chain.json")
        run.refresh_from_db()
    return ChainImportResult(run=run, created=created, new_stage_runs=Run.objects.filter(parent_id=run.id).count() - before)
