"""The run dashboard's chart grid: which metrics go in which small chart, and why it matters.

Metric names are the trainer's (r1model/train/metrics.py, TRL-style: `completions/mean_length`,
`rewards/<name>/mean`, `kl`, `clip_ratio/low_mean`, …). Panels match names by pattern, so a metric the
trainer adds later still gets drawn: anything no panel claims gets a chart of its own at the end.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from r1model.train.metrics import describe


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    pattern: str  # regex over metric names
    description: str
    band: tuple[str, str] = ("", "")  # (low, high) name fragments drawn as a shaded band
    secondary: str = ""  # regex over member names drawn on a second y axis (right): another unit or scale
    percent: bool = False  # the values are fractions: the y axis reads in %

    def matches(self, name: str) -> bool:
        return re.search(self.pattern, name) is not None


PANELS = [
    Panel(
        "length",
        "Response length",
        r"^completions/.*length|^response_length",
        "Tokens per completion: mean, p10–p90 band and max. R1-Zero's signature is this curve growing on its own.",
        band=("p10", "p90"),
    ),
    Panel("reward", "Reward", r"^reward(s)?(/|$)|^reward_std$", "Total reward and each component's mean."),
    Panel("accuracy", "Accuracy", r"^accuracy|^eval_accuracy", "Share of completions whose answer the checker accepts."),
    Panel("format", "Format rate", r"^format", "Share of completions with well-formed <think>/<answer> tags."),
    Panel("kl", "KL to reference", r"^kl", "k3 estimate of KL(π_θ ‖ π_ref); spikes mean the policy jumped."),
    Panel("entropy", "Entropy", r"^entropy", "Mean token entropy of sampled completions; a collapse means no exploration."),
    Panel("clip", "Clip ratios", r"^clip_ratio|^completions/(clipped|truncated)_ratio", "Share of tokens clipped by ε (low/high) and of completions cut at max length."),
    Panel("zero_std", "Zero-std groups", r"frac_reward_zero_std|zero_std", "Share of groups whose G rewards are all equal: they give no gradient."),
    Panel("grad_norm", "Gradient norm", r"grad_norm", "Global gradient norm before clipping."),
    Panel("lr", "Learning rate", r"^lr$|/lr$|learning_rate", "Learning rate from the schedule."),
    Panel("loss", "Loss", r"^loss$|^train/loss|_loss$", "Training loss (≈0 is normal in GRPO: advantages are centred)."),
    Panel("moe", "Expert load", r"^moe/|expert", "DeepSeekMoE routing balance: max expert load over mean load, minus 1."),
    Panel("time", "Time split", r"^time/|^timing/|_seconds$|_time$", "Seconds per step spent generating, scoring, on the reference and updating."),
    Panel("throughput", "Tokens/s", r"tokens_per_s|tokens/s|throughput", "Tokens generated (GRPO) or trained (pretrain/SFT) per second."),
    # fractions and token counts never share an axis: lengths get their own chart
    Panel("eval_length", "Evaluation length", r"^eval/.*length", "Mean completion length at each evaluation, in tokens."),
    Panel("eval", "Evaluation", r"^eval/", "Held-out accuracy and share of worked answers per benchmark.", percent=True),
    # A run's base stage (pretraining) has its own step axis and `train/` names: its own charts, last.
    Panel("pretrain_loss", "Pretraining loss", r"^train/.*loss$", "Base-stage loss (completion tokens only; MTP and balance terms apart)."),
    Panel("pretrain_opt", "Pretraining lr and grad norm", r"^train/(lr|grad_norm)$",
          "Base-stage gradient norm (left axis) and learning-rate schedule (right axis).", secondary=r"/lr$"),
    Panel("pretrain_moe", "Pretraining expert load", r"^train/moe/", "Base-stage DeepSeekMoE routing balance."),
    Panel("pretrain_speed", "Pretraining tokens/s", r"^train/", "Base-stage training throughput."),
]
PRETRAIN_PREFIX = "train/"


def metric_descriptions(names: list[str]) -> dict[str, str]:
    """name → description from the trainer's registry (r1model.train.metrics)."""
    found = {name: describe(name) for name in names}
    return {name: metric.description for name, metric in found.items() if metric is not None}


def dashboard_panels(names: list[str]) -> list[dict]:
    """Chart specs for a run with metrics `names`: the known panels that have data, then the rest."""
    docs = metric_descriptions(names)
    claimed: set[str] = set()
    panels = []
    for panel in PANELS:
        pretrain_panel = panel.key.startswith("pretrain")
        members = [n for n in names if n not in claimed and panel.matches(n)
                   and n.startswith(PRETRAIN_PREFIX) == pretrain_panel]
        if not members:
            continue
        claimed.update(members)
        low = next((n for n in members if panel.band[0] and panel.band[0] in n), "")
        high = next((n for n in members if panel.band[1] and panel.band[1] in n), "")
        panels.append(
            {
                "key": panel.key,
                "title": panel.title,
                "description": panel.description,
                "names": members,
                "band": [low, high] if low and high else [],
                "docs": {n: docs.get(n, "") for n in members},
                "secondary": [n for n in members if panel.secondary and re.search(panel.secondary, n)],
                "percent": panel.percent,
            }
        )
    for name in names:
        if name not in claimed:
            panels.append(
                {"key": f"m-{len(panels)}", "title": name, "description": docs.get(name, ""), "names": [name], "band": [], "docs": {}}
            )
    return panels


def eval_panels(title: str = "Benchmark scores") -> list[dict]:
    """The charts of a run's evaluation results (lab.selectors.metrics.eval_series): scores (fractions,
    read in %) and completion lengths (tokens) apart, so neither flattens the other."""
    return [
        {"key": "benchmarks", "title": title, "description": "pass@1, cons@k and the other rates by step.",
         "names": [], "band": [], "eval": True, "evalUnit": "fraction", "percent": True},
        {"key": "benchmark-lengths", "title": "Completion length at evaluation",
         "description": "Mean completion length in tokens by step.", "names": [], "band": [], "eval": True,
         "evalUnit": "tokens"},
    ]
