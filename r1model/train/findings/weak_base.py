"""weak-base: RL needs a capable base (DeepSeek-R1 §4.1; R1-Zero's "aha" comes from a strong base).

    python -m r1model recipe run weak-base --run-dir DIR [--seed N] [--quick]

One pretraining run of aha-mini's base keeps a checkpoint at each budget (BUDGETS steps; QUICK_BUDGETS with
--quick); from each checkpoint a `probe-B` stage measures the base's sampled skill (held-out pass@1 and share of
worked answers at the RL's temperature, 4 samples a problem) and an `rl-B` stage runs the same aha-mini GRPO
(RL_STEPS steps), whose step-0 evaluation is the base's greedy skill and whose last is the accuracy after RL. The
intermediate checkpoints are taken mid-way through one cosine schedule (not annealed as a base pretrained for
that budget would be); the base has aha-mini's settings, and its last budget is about where aha-mini's measured base
(base.probe) stops on a fast seed. Stage names carry the full budgets;
under --quick the checkpoints are QUICK_BUDGETS (the comparison reports the steps really pretrained).

Verdict (`weak_base_verdict`, RULE): bases are ordered by skill (sampled step-0 accuracy, ties by steps); the
gain of a base is 100 × (greedy held-out accuracy after RL − at step 0). Reproduced when the gain grows with
skill up to a point: the best gain is ≥ MIN_GAIN points, ≥ RISE points above the weakest base's, and up to the
best base no base gains more than DIP points less than a weaker one (beyond the best base the gain may fall: a
base that already answers directly leaves less to gain). Not reproduced when the weakest base gains within RISE
points of the best, or the gain dips by more than DIP on the way up. Inconclusive with fewer than 3 bases
measured or no gain of MIN_GAIN points (RL moved nothing, e.g. --quick).
"""
from __future__ import annotations

import re
from pathlib import Path

from r1model.train.chains import Chain, From, Stage, _recipe_base

# ≤ 15 CPU-minutes a seed on one thread: the base (one cosine over 900 steps, ~0.6 CPU-s a step) is most of it
BUDGETS = (300, 500, 700, 900)
QUICK_BUDGETS = (15, 30, 45, 60)
INTERVAL, QUICK_INTERVAL = 100, 15
RL_STEPS = 30  # aha-mini's GRPO for 30 of its 80 steps: its held-out gain is mostly made by then
RL_EVALUATIONS = (("evaluation.interval", 0),)  # held-out evaluation at step 0 and at the end only
MIN_GAIN, RISE, DIP = 20.0, 20.0, 10.0
BENCHMARK = "heldout"

FINDING = ("RL can only amplify what the base can already do: the same GRPO gains little on a weak base and most "
           "on a capable one (DeepSeek-R1 §4.1; the R1-Zero aha moment needs a strong base).")
RULE = (f"Bases ordered by skill (sampled step-0 accuracy, ties by pretraining steps); gain = greedy held-out "
        f"accuracy after RL − at step 0, in points. Reproduced when the gain grows with skill up to a point: the "
        f"best gain ≥ {MIN_GAIN:g} points and ≥ {RISE:g} points above the weakest base's, and up to the best base no "
        f"base gains more than {DIP:g} points less than a weaker one (after it the gain may fall). Not reproduced "
        f"when the weakest base gains within {RISE:g} points of the best or the gain dips on the way up. "
        f"Inconclusive with fewer than 3 bases or no gain of {MIN_GAIN:g} points.")

# the RL samples at T 1 with at most 64 tokens (aha-mini): the probe samples the base the same way
_PROBE = (("evaluation.temperature", 1.0), ("evaluation.top_p", 1.0), ("evaluation.samples_per_problem", 4),
          ("evaluation.max_new_tokens", 64))


def _stages() -> tuple[Stage, ...]:
    stages = [Stage("base", f"pretrain aha-mini's base, a checkpoint every {INTERVAL} steps (all kept)",
                    build=_recipe_base("aha-mini"),
                    sets=(("total_steps", BUDGETS[-1]), ("checkpoint_interval", INTERVAL), ("keep_checkpoints", 20)),
                    quick_sets=(("total_steps", QUICK_BUDGETS[-1]), ("checkpoint_interval", QUICK_INTERVAL),
                                ("supervised.worked_fraction", 0.7)))]
    # the most pretrained base first: a chain stopped part-way has measured the budgets RL can move
    for budget, quick in reversed(list(zip(BUDGETS, QUICK_BUDGETS))):
        base = From("base", step=budget, quick_step=quick)
        stages.append(Stage(f"probe-{budget}", f"sample the {budget}-step base (T 1, 4 samples a problem)",
                            recipe="evaluate", model=base, sets=_PROBE,
                            quick_sets=(("evaluation.max_new_tokens", 48),)))
        stages.append(Stage(f"rl-{budget}", f"aha-mini GRPO ({RL_STEPS} steps) from the {budget}-step base",
                            recipe="aha-mini", model=base, sets=(("total_steps", RL_STEPS),) + RL_EVALUATIONS,
                            quick_sets=(("total_steps", 2),)))
    return tuple(stages)


def _evals(run_dir: Path) -> dict[int, dict[str, float]]:
    """{step: {metric: value}} of the run's held-out evaluations."""
    from r1model.events import read_events

    out: dict[int, dict[str, float]] = {}
    for event in read_events(run_dir, types=("eval",)):
        if event["benchmark"] == BENCHMARK:
            out.setdefault(event["step"], {})[event["metric"]] = event["value"]
    return out


def budget_metrics(probe_dir: Path, rl_dir: Path) -> dict[str, float | None]:
    """One budget's numbers: base skill greedy (the RL run's step-0 evaluation) and sampled (the probe), the
    share of worked answers in each, the accuracy after RL and the gain in points."""
    rl, probe = _evals(rl_dir), _evals(probe_dir)
    first = rl.get(0) or {}
    last = rl[max(rl)] if rl and max(rl) > 0 else {}
    sampled = probe[max(probe)] if probe else {}
    before, after = first.get("pass@1"), last.get("pass@1")
    return {"base_greedy_accuracy": before, "base_sampled_accuracy": sampled.get("pass@1"),
            "base_greedy_worked": first.get("worked_ratio"), "base_sampled_worked": sampled.get("worked_ratio"),
            "rl_accuracy": after, "gain_points": None if before is None or after is None else 100 * (after - before)}


def _per_budget(metrics: dict) -> dict[int, dict[str, float]]:
    """Flat metrics "NAME@STEPS" -> {steps: {NAME: value}}."""
    out: dict[int, dict[str, float]] = {}
    for key, value in metrics.items():
        match = re.fullmatch(r"(\w+)@(\d+)", key)
        if match and value is not None:
            out.setdefault(int(match.group(2)), {})[match.group(1)] = value
    return out


def weak_base_verdict(metrics: dict) -> dict:
    """RULE on flat metrics ("gain_points@STEPS", "base_sampled_accuracy@STEPS"; one seed's or the seeds' means)."""
    out = {"outcome": "inconclusive", "reasons": [], "rule": RULE}
    bases = sorted((values["base_sampled_accuracy"], steps, values["gain_points"])
                   for steps, values in _per_budget(metrics).items()
                   if "gain_points" in values and "base_sampled_accuracy" in values)
    if len(bases) < 3:
        return {**out, "reasons": [f"{len(bases)} bases measured (gain and sampled skill); 3 needed"]}
    gains = [gain for _, _, gain in bases]
    peak = max(range(len(bases)), key=lambda i: (gains[i], -i))  # the least skilled of equal best gains
    best, weakest = gains[peak], gains[0]
    label = [f"{steps}-step base (sampled {skill:.2f})" for skill, steps, _ in bases]
    if best < MIN_GAIN:
        return {**out, "reasons": [f"no base gains {MIN_GAIN:g} points (best {best:+.1f}, {label[peak]}): RL moved nothing"]}
    reasons = []
    if best - weakest < RISE:
        reasons.append(f"the weakest base, {label[0]}, gains {weakest:+.1f} points, within {RISE:g} of the best "
                       f"{best:+.1f} ({label[peak]}): the base's skill made no difference")
    for i in range(1, peak + 1):
        before = max(gains[:i])
        if gains[i] < before - DIP:
            reasons.append(f"on the way up the gain dips: {label[i]} gains {gains[i]:+.1f}, a weaker base {before:+.1f}")
    if reasons:
        return {**out, "outcome": "not reproduced", "reasons": reasons}
    after = [f"beyond it the {label[i]} gains {gains[i]:+.1f}" for i in range(peak + 1, len(bases))]
    return {**out, "outcome": "reproduced",
            "reasons": [f"the weakest base, {label[0]}, gains {weakest:+.1f} points; the gain grows to {best:+.1f} "
                        f"at the {label[peak]}"] + after}


def weak_base_comparison(root: Path, chain: Chain) -> tuple[dict, str]:
    """comparison.json in the general shape (r1model.train.chains): per budget the base's skill and the RL gain,
    the verdict, a table, the gain-vs-skill and accuracy-vs-budget charts; headline: the best gain minus the
    weakest base's gain."""
    import json

    dirs = dict(zip((stage.name for stage in chain.stages), chain.stage_dirs()))
    quick = json.loads((root / "chain.json").read_text()).get("options", {}).get("quick", False)
    budgets = dict(zip(BUDGETS, QUICK_BUDGETS if quick else BUDGETS))  # stage name's budget -> steps pretrained
    rows, metrics = [], {}
    for name_budget, steps in budgets.items():
        values = budget_metrics(root / "stages" / dirs[f"probe-{name_budget}"], root / "stages" / dirs[f"rl-{name_budget}"])
        metrics.update({f"{key}@{steps}": value for key, value in values.items()})
        rows.append([steps, values["base_greedy_accuracy"], values["base_sampled_accuracy"], values["base_greedy_worked"],
                     values["base_sampled_worked"], values["rl_accuracy"], values["gain_points"]])
    verdict = weak_base_verdict(metrics)
    gains = {row[0]: row[6] for row in rows if row[6] is not None}
    ordered = sorted((metrics.get(f"base_sampled_accuracy@{s}") or 0.0, s) for s in gains)
    rise = max(gains.values()) - gains[ordered[0][1]] if gains else None
    metrics.update(max_gain_points=max(gains.values()) if gains else None,
                   weakest_gain_points=gains[ordered[0][1]] if gains else None, gain_rise_points=rise)
    steps = [row[0] for row in rows]
    comparison = {
        "finding": chain.finding, "metrics": metrics, "verdict": verdict,
        "table": {"columns": ["base steps", "step-0 accuracy (greedy)", "step-0 accuracy (sampled, T 1)",
                              "worked share (greedy)", "worked share (sampled)", "accuracy after RL", "RL gain (points)"],
                  "rows": rows},
        "charts": [
            {"title": "RL gain vs base skill", "x_label": "base held-out accuracy, sampled at T 1",
             "y_label": "RL gain (points)",
             "series": [{"name": "gain", "x": [row[2] for row in rows], "y": [row[6] for row in rows]}]},
            {"title": "held-out accuracy vs pretraining steps", "x_label": "base pretraining steps",
             "y_label": "pass@1",
             "series": [{"name": "base, greedy", "x": steps, "y": [row[1] for row in rows]},
                        {"name": "base, sampled (T 1)", "x": steps, "y": [row[2] for row in rows]},
                        {"name": "after RL, greedy", "x": steps, "y": [row[5] for row in rows]}]},
        ],
        "headline": {"name": "weak_base_gain_rise_points", "value": rise},
        "note": "One aha-mini base pretraining keeps a checkpoint per budget (mid-way through one cosine schedule, "
                "not annealed as a base pretrained for that budget would be). "
                "Greedy skill and accuracy after RL: the RL run's held-out evaluations at step 0 and its last step "
                "(200 test-split problems, T 0); sampled skill: 4 samples a problem at T 1, the RL's temperature. "
                "A worked answer has a non-empty <think>. A base with no sampled skill gives GRPO no reward to "
                "amplify; a base that already answers directly (greedy) leaves less to gain.",
    }
    return comparison, f"weak_base_gain_rise_points={'nan' if rise is None else f'{rise:.1f}'}"


CHAIN = Chain(
    name="weak-base",
    description="RL needs a capable base (DeepSeek-R1 §4.1): aha-mini's base pretrained once with a checkpoint at "
    f"{', '.join(map(str, BUDGETS))} steps; each checkpoint sampled (skill at T 1) and given the same aha-mini GRPO; "
    "comparison.json: RL gain vs base skill.",
    stages=_stages(),
    summarise=lambda root, chain: weak_base_comparison(root, chain),
    finding=FINDING,
    verdict=weak_base_verdict,
    # --quick: 1-digit sums, where a 15–60-step base has some skill to probe
    quick_sets=(("datasets.0.difficulty", {"digits": 1}), ("datasets.0.eval_size", 4)),
)
