"""prm-vs-orm: DeepSeek-R1 §4.2 ("Unsuccessful attempts") — a process reward model (PRM) against the outcome
reward (ORM: the rule-based accuracy + format reward) at equal RL compute.

    python -m r1model recipe run prm-vs-orm --run-dir DIR [--quick] [--seed N]

Stages: the aha-mini base (4-digit addition; BASE_STEPS, not aha-mini's 1,200: a seed's CPU budget) → samples
of the base (T 1, G 8) → `prm` (data stage, r1model.train.prm: every step of every sample labelled by the
task's own rules, the label cost counted, a PRM = the base's body + a scalar head trained on the training
problems' steps and scored on held-out problems' steps)
→ `orm`: GRPO from the base, accuracy + 0.1 format (the PRM's score logged at weight 0) → `prm-rl`: GRPO from
the base with the PRM's reward only (min of its step scores, r1model.rewards.process; accuracy and format logged
at weight 0, so the true accuracy of every batch is in the metrics). Both RL stages: same base, steps, prompts,
G, lengths and evaluation (greedy, held-out test split) — equal compute; the PRM's labels and training are extra
and reported as its cost.

Verdict (VERDICT_RULE, on one seed's flat metrics or the seeds' means): the finding *reproduces* when the PRM
run shows reward hacking (its PRM reward rose by at least HACK_REWARD_RISE while its held-out accuracy rose by
at most FLAT), or when it is not better than ORM in held-out accuracy (by more than FLAT); *inconclusive* when a
run has no evaluation, or when neither run learned (both gained at most FLAT) and they end within FLAT of each other
(nothing to compare: a quick chain); otherwise *not reproduced* (the PRM won: a surprise, and the result).
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from r1model.train.chains import Chain, From, Stage, _recipe_base, _stage_compute

FLAT = 0.02  # held-out pass@1 changes within 2 points count as "flat" / "not better"
_EPS = 1e-9  # float noise: a gap of exactly FLAT counts as within it
HACK_REWARD_RISE = 0.10  # a PRM reward rise of 0.1 (of its 0..1 range) with flat accuracy is hacking
RL_STEPS = 40
# aha-mini pretrains 1,200 steps (~11-13 CPU-min alone, over the chain's 15 CPU-min a seed); 800 (cosine to the
# end) keeps the 4-digit task where outcome-reward GRPO still learns (weak-base: +47.5 points from 800 steps)
BASE_STEPS = 800
SAMPLE_STEPS = 12  # 12 × 16 prompts × 8 samples = 1,536 labelled traces
VERDICT_RULE = (
    f"Reproduced when the PRM run hacks its reward (PRM reward up ≥ {HACK_REWARD_RISE:.2f} while held-out accuracy "
    f"rises ≤ {FLAT:.2f}) or is not better than ORM in held-out accuracy (PRM − ORM ≤ {FLAT:.2f}) at equal RL "
    f"compute; inconclusive when a run has no evaluation, or neither run gained more than {FLAT:.2f} and they end "
    f"within {FLAT:.2f} of each other; otherwise not reproduced (the PRM beat the outcome reward)."
)

_ORM_REWARDS = [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.1}, {"name": "prm", "weight": 0.0}]
_PRM_REWARDS = [{"name": "prm", "weight": 1.0}, {"name": "accuracy", "weight": 0.0}, {"name": "format", "weight": 0.0}]
_RL_SCALE = (("total_steps", RL_STEPS),)
_RL_QUICK = (("total_steps", 3),)

CHAIN = Chain(
    name="prm-vs-orm",
    description="DeepSeek-R1 §4.2 in miniature: a process reward model trained on checker-labelled steps of the "
    "base's samples (label cost and held-out step accuracy measured) vs the outcome reward (accuracy + format), "
    "each as the reward of GRPO from the same base at equal compute; true accuracy logged beside the PRM reward to "
    "catch reward hacking; comparison.json: held-out accuracy of both runs, PRM − ORM the headline.",
    stages=(
        Stage("base", f"pretrain the tiny preset (aha-mini's base: 4-digit addition, 30% worked; {BASE_STEPS} steps)",
              build=_recipe_base("aha-mini"), sets=(("total_steps", BASE_STEPS),),
              quick_sets=(("total_steps", 60), ("supervised.worked_fraction", 0.7))),
        Stage("samples", "sample the base (T 1, G 8): the traces whose steps are labelled", recipe="rejection-sampling",
              model=From("base"),
              sets=(("sampling.temperature", 1.0), ("sampling.top_p", 1.0), ("sampling.max_new_tokens", 64),
                    ("grpo.group_size", 8), ("grpo.prompts_per_step", 16), ("total_steps", SAMPLE_STEPS)),
              quick_sets=(("grpo.group_size", 4), ("grpo.prompts_per_step", 4), ("total_steps", 2),
                          ("sampling.max_new_tokens", 48))),
        Stage("prm", "label every step by the task's checker; train the PRM (base body + scalar head)", make="prm",
              source=From("samples", "rollouts")),
        Stage("orm", "GRPO from the base: outcome reward (accuracy + 0.1 format); PRM score logged at weight 0",
              recipe="aha-mini", model=From("base"), sets=(("rewards", _ORM_REWARDS),) + _RL_SCALE,
              quick_sets=_RL_QUICK, paths=(("rewards.2.model", From("prm")),)),
        Stage("prm-rl", "GRPO from the base: the PRM's reward (min step score); accuracy, format logged at weight 0",
              recipe="aha-mini", model=From("base"), sets=(("rewards", _PRM_REWARDS),) + _RL_SCALE,
              quick_sets=_RL_QUICK, paths=(("rewards.0.model", From("prm")),)),
    ),
    summarise=lambda root, chain: prm_vs_orm_comparison(root, chain),
    finding="Process reward models do not beat the rule-based outcome reward in large-scale RL: steps are hard to "
    "define and label, and a neural reward model invites reward hacking (DeepSeek-R1 §4.2).",
    verdict=lambda metrics: prm_vs_orm_verdict(metrics),
    # --quick: 1-digit sums (a 60-step base already answers some), 4 held-out problems
    quick_sets=(("datasets.0.difficulty", {"digits": 1}), ("datasets.0.eval_size", 4)),
)


def prm_vs_orm_verdict(metrics: dict) -> dict:
    """VERDICT_RULE on flat metrics: "orm.accuracy", "prm.accuracy" (final held-out pass@1), "orm.accuracy_gain",
    "prm.accuracy_gain" (final − step 0), "prm.reward_gain" (the PRM run's PRM reward, last − first steps) and
    "hacking" (1 when that run hacked, 0 when not; a seeds' mean is the share of seeds)."""
    out = {"outcome": "inconclusive", "reasons": [], "rule": VERDICT_RULE}
    orm, prm = metrics.get("orm.accuracy"), metrics.get("prm.accuracy")
    orm_gain, prm_gain = metrics.get("orm.accuracy_gain"), metrics.get("prm.accuracy_gain")
    if None in (orm, prm, orm_gain, prm_gain):
        return {**out, "reasons": ["a run has no held-out evaluation"]}
    rise, hacking = metrics.get("prm.reward_gain"), metrics.get("hacking")
    reasons = []
    if hacking is not None and hacking >= 0.5 and rise is not None:
        reasons.append(f"reward hacking: the PRM reward rose {rise:+.2f} while held-out accuracy moved {prm_gain:+.2f}")
    gap = prm - orm
    if not reasons and orm_gain <= FLAT + _EPS and prm_gain <= FLAT + _EPS and abs(gap) <= FLAT + _EPS:
        return {**out, "reasons": [f"neither run learned (held-out accuracy {orm_gain:+.2f} ORM, {prm_gain:+.2f} PRM) "
                                   f"and they end alike ({prm:.3f} vs {orm:.3f})"]}
    if gap <= FLAT + _EPS:
        reasons.append(f"PRM not better than ORM: held-out accuracy {prm:.3f} vs {orm:.3f} ({gap:+.3f})")
    if reasons:
        return {**out, "outcome": "reproduced", "reasons": reasons}
    return {**out, "outcome": "not reproduced",
            "reasons": [f"the PRM run beat ORM: held-out accuracy {prm:.3f} vs {orm:.3f} ({gap:+.3f}) without hacking "
                        f"(PRM reward {rise:+.2f}, accuracy {prm_gain:+.2f})" if rise is not None else
                        f"the PRM run beat ORM: {prm:.3f} vs {orm:.3f}"]}


# ---------------------------------------------------------------------------------------------- summarise

def _events(run_dir: Path, types: set[str]) -> list[dict]:
    from r1model.events import read_events

    return read_events(run_dir, types=types) if (run_dir / "events.jsonl").is_file() else []


def _heldout_curve(run_dir: Path) -> tuple[list[int], list[float]]:
    points = sorted((e["step"], e["value"]) for e in _events(run_dir, {"eval"})
                    if e.get("benchmark") == "heldout" and e.get("metric") == "pass@1")
    return [p[0] for p in points], [p[1] for p in points]


def _series(metrics: list[dict], name: str) -> tuple[list[int], list[float]]:
    points = sorted((e["step"], e["values"][name]) for e in metrics if name in e.get("values", {}))
    return [p[0] for p in points], [p[1] for p in points]


def _gain(values: list[float]) -> float | None:
    """Mean of the last W values − mean of the first W (W = a quarter of the run, 1 to 5 steps)."""
    if len(values) < 2:
        return None
    w = max(1, min(5, len(values) // 4))
    return statistics.fmean(values[-w:]) - statistics.fmean(values[:w])


def run_figures(run_dir: Path) -> dict:
    """One RL run: held-out pass@1 at step 0 and at the end, its gain; the training batches' true accuracy and
    PRM score (first → last steps); the compute."""
    steps, accuracy = _heldout_curve(run_dir)
    metrics = _events(run_dir, {"metric"})
    _, train_accuracy = _series(metrics, "accuracy")
    _, prm_score = _series(metrics, "rewards/prm/mean")
    _, reward = _series(metrics, "reward")
    start = accuracy[0] if steps and steps[0] == 0 else None
    final = accuracy[-1] if steps else None
    return {"accuracy": final, "start_accuracy": start,
            "accuracy_gain": None if final is None or start is None else final - start,
            "train_accuracy_gain": _gain(train_accuracy), "prm_score_gain": _gain(prm_score),
            "reward_gain": _gain(reward),
            "prm_score_last": prm_score[-1] if prm_score else None,
            "train_accuracy_last": train_accuracy[-1] if train_accuracy else None,
            **_stage_compute(run_dir)}


def prm_vs_orm_comparison(root: Path, chain: Chain) -> tuple[dict, str]:
    """comparison.json (the general shape of r1model.train.chains) and the closing line
    `prm_minus_orm_accuracy=…`."""
    dirs = dict(zip((stage.name for stage in chain.stages), chain.stage_dirs()))
    stage = {name: root / "stages" / dirs[name] for name in dirs}
    orm, prm = run_figures(stage["orm"]), run_figures(stage["prm-rl"])
    summary_path = stage["prm"] / "summary.json"
    model = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    hacking = None
    if prm["prm_score_gain"] is not None and prm["accuracy_gain"] is not None:
        hacking = float(prm["prm_score_gain"] >= HACK_REWARD_RISE - _EPS and prm["accuracy_gain"] <= FLAT + _EPS)
    gap = None if orm["accuracy"] is None or prm["accuracy"] is None else prm["accuracy"] - orm["accuracy"]
    metrics = {
        "orm.accuracy": orm["accuracy"], "prm.accuracy": prm["accuracy"], "prm_minus_orm_accuracy": gap,
        "start_accuracy": orm["start_accuracy"],
        "orm.accuracy_gain": orm["accuracy_gain"], "prm.accuracy_gain": prm["accuracy_gain"],
        "orm.train_accuracy_gain": orm["train_accuracy_gain"], "prm.train_accuracy_gain": prm["train_accuracy_gain"],
        "prm.reward_gain": prm["prm_score_gain"], "orm.prm_score_gain": orm["prm_score_gain"], "hacking": hacking,
        "prm_model.step_accuracy": model.get("heldout_step_accuracy"),
        "prm_model.majority_accuracy": model.get("heldout_majority_accuracy"),
        "prm_model.balanced_accuracy": model.get("heldout_balanced_accuracy"),
        "labels": model.get("labels"), "checker_calls": model.get("checker_calls"),
        "label_seconds": model.get("label_seconds"), "prm_train_seconds": model.get("train_seconds"),
    }
    columns = ["run", "reward", "held-out pass@1 (step 0 → end)", "gain", "batch accuracy gain", "PRM score gain",
               "sampled completions"]
    rows = [[name, reward, figures["accuracy"], figures["accuracy_gain"], figures["train_accuracy_gain"],
             figures["prm_score_gain"], figures["sampled_completions"]]
            for name, reward, figures in (("orm", "accuracy + 0.1 format", orm), ("prm-rl", "PRM (min step score)", prm))]
    charts = []
    for title, y_label, series in (
        ("held-out accuracy", "pass@1", [(n, _heldout_curve(stage[s])) for n, s in (("ORM", "orm"), ("PRM", "prm-rl"))]),
        ("true accuracy of the training batches", "accuracy",
         [(n, _series(_events(stage[s], {"metric"}), "accuracy")) for n, s in (("ORM", "orm"), ("PRM", "prm-rl"))]),
        ("PRM score of the training batches", "min step score",
         [(n, _series(_events(stage[s], {"metric"}), "rewards/prm/mean")) for n, s in (("ORM", "orm"), ("PRM", "prm-rl"))]),
    ):
        drawn = [{"name": name, "x": xs, "y": ys} for name, (xs, ys) in series if xs]
        if drawn:
            charts.append({"title": title, "x_label": "GRPO step", "y_label": y_label, "series": drawn})
    comparison = {
        "finding": chain.finding, "metrics": metrics, "verdict": prm_vs_orm_verdict(metrics),
        "table": {"columns": columns, "rows": rows}, "charts": charts,
        "headline": {"name": "prm_minus_orm_accuracy", "value": gap},
        "prm_model": model,
        "note": "Held-out accuracy: greedy pass@1 on the test split at step 0 and after the last GRPO step. Equal RL "
                "compute: both runs start from the same base with the same steps, prompts, G and lengths; the PRM's "
                f"labels ({model.get('labels')} from {model.get('completions')} sampled traces, "
                f"{model.get('checker_calls')} checker calls, {_fmt(model.get('label_seconds'))} s) and its training "
                f"({model.get('train_steps')} steps, {_fmt(model.get('train_seconds'))} s) are extra. The PRM reward "
                "is the minimum of the PRM's step scores (a solution is as good as its worst step; the mean would pay "
                "for padding with easy lines); 0 without a complete answer. Hacking: the PRM run's PRM reward (mean "
                f"of the last steps − the first) rose ≥ {HACK_REWARD_RISE} while its held-out accuracy rose ≤ {FLAT}. "
                "Step labels are exact here (the task's own digit-by-digit rules): the honest best case for a PRM, "
                "which the report did not have.",
    }
    return comparison, f"prm_minus_orm_accuracy={'nan' if gap is None else f'{gap:.4f}'}"


def _fmt(value) -> str:
    return "?" if value is None else f"{value:.2f}"
