"""Think-budget curves (Kimi k1.5 §2.4; r1model.generation.budget): an evaluate run of one checkpoint with
`evaluation.think_budgets`, so that its page can draw accuracy and mean length against the budget.

The evaluate run is an ordinary run of the team (lab.services.runs.run_create): model.source is the checkpoint's
reference run:ID@STEP, the datasets, template and evaluation settings are the checkpoint's run's own (its
'heldout' benchmark is their test split), and it is a child of that run (parent_step left empty: the run's
scheduled evaluation of that step, lab.services.evaluations, is another run)."""
from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from lab.models import CheckpointRecord, Run, Team
from lab.services.evaluations import evaluation_config
from lab.services.references import checkpoint_ref

ANSWER_TAGS = ("<answer>", "</answer>")  # one special token each in the lab's tokenizers (r1model.model.tokenizer)
MIN_BUDGET = len(ANSWER_TAGS)
MAX_BUDGETS = 12
DEFAULT_BUDGETS = "8,16,32"
FIELD = "think_budgets"


def parse_budgets(text: str, max_new_tokens: int | None = None) -> list[int]:
    """"8, 16,32" → [8, 16, 32] (sorted, once each). ValidationError on `think_budgets` for anything else: not a
    comma-separated list of whole numbers, a budget ≤ 0 or below the answer tags' length (MIN_BUDGET tokens), a
    budget that cannot cut the think (≥ the evaluation's max_new_tokens), more than MAX_BUDGETS."""
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]

    def refuse(message: str):
        raise ValidationError({FIELD: [f"think budgets: {message}"]})

    if not parts:
        refuse("give at least one, e.g. 8,16,32 (tokens of think before </think><answer> is forced)")
    budgets = []
    for part in parts:
        if not re.fullmatch(r"-?[0-9]{1,9}", part):
            refuse(f"{part[:40]!r} is not a whole number of tokens")
        budgets.append(int(part))
    for budget in budgets:
        if budget <= 0:
            refuse(f"{budget} is not a budget: a think budget is a number of tokens, 1 or more")
        if budget < MIN_BUDGET:
            refuse(f"{budget} is below the answer tags' length ({MIN_BUDGET} tokens: {' and '.join(ANSWER_TAGS)}); "
                   f"use {MIN_BUDGET} or more")
        if max_new_tokens is not None and budget >= max_new_tokens:
            refuse(f"{budget} is not below the evaluation's max_new_tokens ({max_new_tokens}): it could not cut the "
                   "think (the curve's unbudgeted point is evaluated anyway)")
    budgets = sorted(set(budgets))
    if len(budgets) > MAX_BUDGETS:
        refuse(f"at most {MAX_BUDGETS} budgets")
    return budgets


def eval_max_new_tokens(config: dict) -> int | None:
    """The longest answer the evaluation of a run with `config` writes: evaluation.max_new_tokens, else the
    sampling section's (the grpo section's in configs written before it existed)."""
    for section in ("evaluation", "sampling", "grpo"):
        value = (config.get(section) or {}).get("max_new_tokens")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def checkpoint_steps(run: Run) -> list[int]:
    return list(CheckpointRecord.objects.filter(run=run).order_by("-step").values_list("step", flat=True).distinct())


def budget_eval_config(run: Run, step: int, budgets_text: str) -> dict:
    """The evaluate config of checkpoint run:ID@STEP with the budgets (validated; ValidationError by field)."""
    if not run.config:
        raise ValidationError({"step": [f"run {run.id} has no stored config to evaluate its checkpoint with"]})
    if step not in checkpoint_steps(run):
        raise ValidationError({"step": [f"run {run.id} has no checkpoint at step {step}"]})
    ref = checkpoint_ref(run.id, step)
    benchmarks = list((run.config.get("evaluation") or {}).get("benchmarks") or []) or ["heldout"]
    config = evaluation_config(run.config, source=ref, benchmarks=benchmarks,
                               name=f"{run.name} · think budgets @ step {step}"[:200])
    config["evaluation"]["think_budgets"] = parse_budgets(budgets_text, eval_max_new_tokens(config))
    return config


def think_budget_create(*, team: Team, user, run: Run, step: int, budgets: str, client_token: str = "") -> Run:
    """A queued evaluate run of `run`'s checkpoint at `step` with the think budgets (text, as the form has it)."""
    from lab.services.runs import run_create

    if run.team_id != team.id:
        raise ValidationError({"run": ["not a run of this team"]})
    config = budget_eval_config(run, step, budgets)
    try:
        return run_create(team=team, user=user, config=config, name=config["name"], queue=run.queue,
                          project=run.project, parent=run, client_token=client_token)
    except ValidationError as exc:
        errors = exc.message_dict
        datasets = [f for f in errors if f.startswith("datasets")]
        if datasets:  # e.g. a chain stage trained on its chain's data file, not a dataset of the team
            raise ValidationError({"datasets": [
                f"run {run.id} trained on data that is not a dataset of this team ({errors[datasets[0]][0]}); "
                "its held-out split cannot be evaluated from the lab — evaluate a checkpoint of a run on a built-in "
                "task or a team dataset"]}) from None
        raise
