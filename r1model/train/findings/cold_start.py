"""Cold start vs R1-Zero (DeepSeek-R1 §2.3.1): a small SFT on readable long-CoT data before RL makes RL reach a
given accuracy sooner, and read better, than RL straight from the base.

    python -m r1model recipe run cold-start-vs-zero --run-dir DIR [--quick] [--seed N]

Stages: base (r1-zero's in-run base: the tiny preset pretrained on 4-digit sums, 30% worked, BASE_STEPS steps) → zero (GRPO from
the base) ; cold-start-sft (SFT of the base on the task's own worked solutions) → cold-start-rl (the same GRPO from
the cold-started model: same steps, rewards, sampling and evaluation schedule).

The cold-start data are the task's own worked solutions (digit-by-digit sums inside <think>), not a filtered Zero
sample: they stand for the report's human-readable long CoT, cost nothing to collect and keep the cold-started arm
independent of the Zero run, so its cost is the SFT alone (a Zero sample would charge Zero's whole RL to it).

comparison.json (the general shape of r1model.train.chains): RL steps and CPU-minutes to reach TARGET held-out
accuracy in each arm (the SFT's CPU-minutes in a column of their own), start and final accuracy, format rate,
worked ratio, the held-out accuracy (and worked ratio) vs RL step of both. CPU-minutes are the GRPO steps'
process CPU time (`time/cpu` of their metric events; `time/step` wall seconds when a run has no `time/cpu`),
evaluations left out (both arms are evaluated alike).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from r1model.train.chains import CHAIN_JSON, Chain, From, Stage, _recipe_base

TARGET = 0.3  # held-out pass@1 (greedy, 200 problems): seed 0 (the pilot) reached it in both arms, 0.5 in Zero only
QUICK_TARGET = 0.25  # 1-digit sums, 6 problems: only the plumbing is checked at --quick
# the base is most of a seed's cost (~0.6 CPU-s a step on one thread): 900 steps keep a seed within 15 CPU-minutes
# (r1-zero's 1,200 cost 17.6 with the two 60-step RL arms)
BASE_STEPS = 900
RL_STEPS, QUICK_RL_STEPS = 60, 4
EVAL_INTERVAL, QUICK_EVAL_INTERVAL = 5, 2
# cold-start data: SFT_STEPS × SFT_BATCH worked solutions, each seen once ("a few hundred")
SFT_STEPS, SFT_BATCH = 20, 16
# the SFT's peak rate: the base's last (its cosine ends at 0.1 × 3e-3). The cold-start-sft recipe's 1e-3, on batches
# of 16, cost seed 0's base its skill (greedy 0.235 after the SFT; Zero's RL reached 0.555 from the same base); at
# 3e-4 (or 1e-4) the SFT leaves it at 0.51 (0.545), bench/RESULTS.md 2026-12-07 session 8
SFT_LEARNING_RATE = 3e-4
QUICK_SFT_STEPS, QUICK_SFT_BATCH = 4, 8
BENCHMARK = "heldout"
ARMS = {"zero": "zero", "cold_start": "cold-start-rl"}  # metric prefix -> RL stage


def _rl(quick: bool) -> dict:
    """The one RL of both arms: R1-Zero's rewards (accuracy + 0.5 format), aha-mini's tiny-model GRPO settings
    (G 8, 16 prompts, lr 1e-4, β 0, T 1, ≤ 64 tokens), greedy held-out evaluation every EVAL_INTERVAL steps."""
    return {
        "kind": "grpo",
        "name": "rl",
        "model": {"source": "tiny", "overrides": {"num_nextn_predict_layers": 0}},  # the stage's input replaces it
        "datasets": [{"task": "addition", "difficulty": {"digits": 4, "min_digits": 4},
                      "eval_size": 6 if quick else 200}],  # quick: 1-digit sums have 7 test problems
        "template": "mini",
        "rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.5}],
        "total_steps": QUICK_RL_STEPS if quick else RL_STEPS,
        "checkpoint_interval": 0 if quick else 30,
        "keep_checkpoints": 1,
        "traces_per_step": 1,
        "grpo": {"group_size": 4 if quick else 8, "prompts_per_step": 4 if quick else 16, "learning_rate": 1e-4,
                 "lr_schedule": "constant", "beta": 0.0, "num_iterations": 1, "temperature": 1.0,
                 "max_new_tokens": 48 if quick else 64},
        "evaluation": {"interval": QUICK_EVAL_INTERVAL if quick else EVAL_INTERVAL, "at_start": True,
                       "benchmarks": [BENCHMARK], "samples_per_problem": 1, "temperature": 0.0, "top_p": 1.0},
    }


_NO_EVAL = (("evaluation.benchmarks", []), ("evaluation.at_start", False))

# ---------------------------------------------------------------------------------------------- comparison


def eval_curve(run_dir: Path, metric: str = "pass@1", benchmark: str = BENCHMARK) -> list[tuple[int, float]]:
    """[(step, value)] of one evaluation metric of a run, by step."""
    from r1model.events import read_events

    points = {e["step"]: e["value"] for e in read_events(run_dir, types=("eval",))
              if e.get("benchmark") == benchmark and e.get("metric") == metric and isinstance(e.get("value"), (int, float))}
    return sorted(points.items())


def steps_to_target(curve: list[tuple[int, float]], target: float) -> int | None:
    """The first evaluated step whose accuracy is at least `target`; None when no evaluation reached it."""
    for step, value in sorted(curve):
        if value >= target:
            return step
    return None


def step_seconds(run_dir: Path) -> dict[int, float]:
    """{GRPO step: CPU seconds} from the run's metric events (`time/cpu`; `time/step` where it is missing)."""
    from r1model.events import read_events

    out = {}
    for event in read_events(run_dir, types=("metric",)):
        values = event.get("values") or {}
        seconds = values.get("time/cpu", values.get("time/step"))
        if isinstance(seconds, (int, float)):
            out[event["step"]] = float(seconds)
    return out


def rl_mean(run_dir: Path, name: str) -> float | None:
    """Mean of one GRPO metric (entropy, frac_reward_zero_std, ...) over the run's steps; None when absent."""
    from r1model.events import read_events

    values = [e["values"][name] for e in read_events(run_dir, types=("metric",))
              if isinstance((e.get("values") or {}).get(name), (int, float)) and "time/step" in e["values"]]
    return sum(values) / len(values) if values else None


def cpu_minutes_to(seconds: dict[int, float], step: int | None) -> float | None:
    """CPU-minutes of RL steps 1..step (0 at step 0); None when step is None (never reached)."""
    if step is None:
        return None
    return sum(s for k, s in seconds.items() if k <= step) / 60.0


def supervised_cpu_minutes(run_dir: Path) -> float | None:
    """CPU-minutes of a pretrain / SFT run (`time/train_cpu` of its metric events, `train/cpu_s` in runs made
    before it had that name); None when it has none."""
    from r1model.events import read_events

    seconds = []
    for event in read_events(run_dir, types=("metric",)):
        values = event.get("values") or {}
        value = values.get("time/train_cpu", values.get("train/cpu_s"))
        if isinstance(value, (int, float)):
            seconds.append(value)
    return sum(seconds) / 60.0 if seconds else None


def _value_at(curve: list[tuple[int, float]], which: int) -> float | None:
    return curve[which][1] if curve else None


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def verdict(metrics: dict) -> dict:
    """Reproduced when the cold-started RL reaches the target in fewer RL steps than Zero (or Zero never does);
    the reasons also say whether it took fewer total CPU-minutes (cold-start SFT included)."""
    zero, cold = metrics.get("zero_steps_to_target"), metrics.get("cold_start_steps_to_target")
    target = metrics.get("target_accuracy")
    zero_cpu, cold_cpu = metrics.get("zero_cpu_min_to_target"), metrics.get("cold_start_total_cpu_min_to_target")
    if zero is None and cold is None:
        return {"outcome": "inconclusive", "reasons": [f"neither arm reached held-out accuracy {target} in its RL budget"]}
    if cold is None:
        return {"outcome": "not reproduced",
                "reasons": [f"the cold-started RL never reached {target}; Zero did at step {zero:g}"]}
    if zero is not None and zero == 0 and cold == 0:
        return {"outcome": "inconclusive", "reasons": [f"both arms started at or above {target}: the target is too low"]}
    if zero is not None and cold >= zero:
        return {"outcome": "not reproduced",
                "reasons": [f"the cold-started RL reached {target} at step {cold:g}, Zero at step {zero:g}"]}
    reasons = [f"the cold-started RL reached {target} at step {cold:g}, Zero "
               + (f"at step {zero:g}" if zero is not None else "not within its RL budget")]
    if zero_cpu is not None and cold_cpu is not None:
        fewer = "also in fewer" if cold_cpu < zero_cpu else "but not in fewer"
        reasons.append(f"{fewer} total CPU-minutes: {cold_cpu:.2f} (SFT included) vs Zero's {zero_cpu:.2f}")
    elif zero is None:
        reasons.append("Zero's CPU-minutes to the target are unknown (it never reached it)")
    return {"outcome": "reproduced", "reasons": reasons}


def _chain_state(root: Path) -> dict:
    try:
        return json.loads((root / CHAIN_JSON).read_text())
    except (OSError, ValueError):
        return {}


def _target(root: Path) -> float:
    return QUICK_TARGET if _chain_state(root).get("options", {}).get("quick", False) else TARGET


def summarise(root: Path, chain: Chain) -> tuple[dict, str]:
    """comparison.json of cold-start-vs-zero (see the module docstring) and its `name=value` line."""
    dirs = {stage.name: root / "stages" / d for stage, d in zip(chain.stages, chain.stage_dirs())}
    target = _target(root)
    metrics: dict[str, Any] = {"target_accuracy": target}
    curves, worked_curves = {}, {}
    for arm, stage in ARMS.items():
        run_dir = dirs[stage]
        curve = curves[arm] = eval_curve(run_dir)
        worked_curves[arm] = eval_curve(run_dir, "worked_ratio")
        seconds = step_seconds(run_dir)
        reached = steps_to_target(curve, target)
        metrics[f"{arm}_steps_to_target"] = reached
        metrics[f"{arm}_start_accuracy"] = _value_at(curve, 0)
        metrics[f"{arm}_start_worked_ratio"] = _value_at(worked_curves[arm], 0)  # readable from the start?
        metrics[f"{arm}_final_accuracy"] = _value_at(curve, -1)
        for name in ("format_rate", "worked_ratio", "mean_length"):
            metrics[f"{arm}_final_{name}"] = _value_at(eval_curve(run_dir, name), -1)
        metrics[f"{arm}_rl_steps"] = max(seconds) if seconds else 0
        metrics[f"{arm}_rl_cpu_min"] = _round(sum(seconds.values()) / 60.0)
        metrics[f"{arm}_mean_entropy"] = _round(rl_mean(run_dir, "entropy"), 4)  # of the RL samples
        metrics[f"{arm}_zero_std_share"] = _round(rl_mean(run_dir, "frac_reward_zero_std"))  # groups with no signal
        metrics[f"{arm}{'' if arm == 'zero' else '_rl'}_cpu_min_to_target"] = _round(cpu_minutes_to(seconds, reached))
    sft = supervised_cpu_minutes(dirs["cold-start-sft"])
    metrics["cold_start_sft_cpu_min"] = _round(sft)
    rl_to_target = metrics["cold_start_rl_cpu_min_to_target"]
    metrics["cold_start_total_cpu_min_to_target"] = (None if rl_to_target is None or sft is None
                                                     else _round(rl_to_target + sft))
    zero, cold = metrics["zero_steps_to_target"], metrics["cold_start_steps_to_target"]
    metrics["rl_steps_saved"] = None if zero is None or cold is None else zero - cold
    outcome = verdict(metrics)
    columns = ["arm", "start accuracy", "final accuracy", "final format rate", "final worked ratio",
               "RL steps to target", "RL CPU-min to target", "cold-start SFT CPU-min", "total CPU-min to target"]
    rows = [["zero (RL from the base)", metrics["zero_start_accuracy"], metrics["zero_final_accuracy"],
             metrics["zero_final_format_rate"], metrics["zero_final_worked_ratio"], zero,
             metrics["zero_cpu_min_to_target"], 0.0, metrics["zero_cpu_min_to_target"]],
            ["cold start (SFT, then RL)", metrics["cold_start_start_accuracy"], metrics["cold_start_final_accuracy"],
             metrics["cold_start_final_format_rate"], metrics["cold_start_final_worked_ratio"], cold,
             rl_to_target, metrics["cold_start_sft_cpu_min"], metrics["cold_start_total_cpu_min_to_target"]]]
    labels = {"zero": "Zero (from the base)", "cold_start": "cold start"}
    charts = [
        {"title": "Held-out accuracy vs RL step", "x_label": "RL step", "y_label": "pass@1 (greedy)",
         "series": [{"name": labels[arm], "x": [s for s, _ in c], "y": [v for _, v in c]} for arm, c in curves.items()]
         + [{"name": f"target {target}", "x": [0, max((s for c in curves.values() for s, _ in c), default=0)],
             "y": [target, target], "reference": True}]},
        {"title": "Worked answers (reasoning in <think>) vs RL step", "x_label": "RL step", "y_label": "worked ratio",
         "series": [{"name": labels[arm], "x": [s for s, _ in c], "y": [v for _, v in c]}
                    for arm, c in worked_curves.items()]},
    ]
    sft_config = _config(dirs["cold-start-sft"])
    rows_seen = sft_config.get("total_steps", 0) * sft_config.get("supervised", {}).get("batch_size", 0)
    note = (f"Target: held-out pass@1 ≥ {target} (greedy, evaluated every {_config(dirs['zero']).get('evaluation', {}).get('interval')} "
            "RL steps and at step 0), picked from seed 0's run as a level both arms reached there; steps to target are "
            "the first evaluated step at or above it (null: never reached). Cold-start data: "
            f"{rows_seen} of the task's own worked solutions (each seen once), not a filtered Zero sample, so the "
            "cold-started arm does not depend on Zero and its extra cost is the SFT alone. CPU-minutes: process CPU "
            "time of the GRPO steps (time/cpu) and of the SFT steps (time/train_cpu); evaluations and the shared base "
            "are left out.")
    shared = (_chain_state(root).get("stages") or [{}])[0].get("shared_from")
    note += (f" The base was copied from {shared}: this seed varies the SFT data order and the RL sampling only."
             if shared else " The base is pretrained per seed, so its skills (and both arms' starts) vary by seed.")
    if outcome["outcome"] != "reproduced":
        note += f" {outcome['outcome'].capitalize()}: {'; '.join(outcome['reasons'])}."
        entropy = (metrics["zero_mean_entropy"], metrics["cold_start_mean_entropy"])
        flat = (metrics["zero_zero_std_share"], metrics["cold_start_zero_std_share"])
        if None not in entropy + flat and entropy[1] < entropy[0] and flat[1] > flat[0]:
            note += (f" Why: the SFT narrowed the policy — the cold-started RL sampled with mean entropy {entropy[1]:.3f} vs "
                     f"Zero's {entropy[0]:.3f} nats/token and {flat[1]:.0%} vs {flat[0]:.0%} of its groups had all-equal "
                     "rewards (no GRPO signal). The base already writes the worked route (30% of its pretraining "
                     "corpus), so Zero learns to use it by RL: final worked ratio "
                     f"{metrics['zero_final_worked_ratio']:.2f} vs the cold start's {metrics['cold_start_final_worked_ratio']:.2f}.")
    comparison = {
        "finding": "A small cold-start SFT on readable long-CoT data before RL reaches a target accuracy in fewer RL "
                   "steps, and reads better, than RL straight from the base (DeepSeek-R1 §2.3.1).",
        "metrics": metrics,
        "verdict": outcome,
        "table": {"columns": columns, "rows": rows},
        "charts": charts,
        "headline": {"name": "cold_start_rl_steps_saved", "value": metrics["rl_steps_saved"]},
        "note": note,
    }
    saved = metrics["rl_steps_saved"]
    return comparison, f"cold_start_rl_steps_saved={'nan' if saved is None else saved}"


def _config(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return {}


CHAIN = Chain(
    name="cold-start-vs-zero",
    description="DeepSeek-R1 §2.3.1 in miniature: R1-Zero RL from the tiny base vs the same RL after a small "
    "cold-start SFT of the base on a few hundred of the task's readable worked solutions; same RL budget and "
    "evaluation schedule; comparison.json: RL steps and CPU-minutes to a target held-out accuracy, final accuracy, "
    "format rate and worked ratio of both.",
    stages=(
        Stage("base", f"pretrain the tiny preset (r1-zero's base, {BASE_STEPS} steps)", build=_recipe_base("r1-zero"),
              quick_sets=(("total_steps", 60), ("supervised.worked_fraction", 0.7)),
              full_sets=(("total_steps", BASE_STEPS),)),
        Stage("zero", "R1-Zero: GRPO from the base, held-out evaluation every few steps", build=_rl,
              model=From("base")),
        Stage("cold-start-sft", "SFT of the base on a few hundred of the task's worked solutions, at the rate its "
              f"pretraining ended at (lr {SFT_LEARNING_RATE:g})",
              recipe="cold-start-sft", model=From("base"),
              sets=_NO_EVAL + (("total_steps", SFT_STEPS), ("supervised.batch_size", SFT_BATCH),
                               ("supervised.learning_rate", SFT_LEARNING_RATE),
                               ("supervised.warmup_steps", 2), ("checkpoint_interval", 0), ("keep_checkpoints", 1)),
              quick_sets=(("total_steps", QUICK_SFT_STEPS), ("supervised.batch_size", QUICK_SFT_BATCH),
                          ("supervised.warmup_steps", 1))),
        Stage("cold-start-rl", "the same GRPO from the cold-started model", build=_rl, model=From("cold-start-sft")),
    ),
    summarise=summarise,
    quick_sets=(("datasets.0.difficulty", {"digits": 1}),),
    finding="A small cold-start SFT on readable long-CoT data speeds up RL and makes it more readable than RL from "
            "the base (R1-Zero).",
    verdict=verdict,
)
