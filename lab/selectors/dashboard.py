"""The run dashboard's chart grid: which metrics go in which small chart, and why it matters.

Charts come in sections, as W&B lays them out: R1's signature first (accuracy, response length with its
band, reward by component), then policy health (KL, entropy, clip, zero-std groups, …), then systems (time
split, tokens/s, expert load), then evaluation, the pretraining stage and whatever else the run logs.

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
    section: str = "other"

    def matches(self, name: str) -> bool:
        return re.search(self.pattern, name) is not None


PANELS = [
    Panel(
        "length",
        "Response length",
        r"^completions/.*length|^response_length",
        "Tokens per completion: mean, p10–p90 band and max. R1-Zero's signature is this curve growing on its own.",
        band=("p10", "p90"),
        section="signature",
    ),
    Panel("reward", "Reward", r"^reward(s)?(/|$)|^reward_std$", "Total reward and each component's mean.", section="signature"),
    Panel("accuracy", "Accuracy", r"^accuracy|^eval_accuracy", "Share of completions whose answer the checker accepts.", section="signature"),
    Panel("format", "Format rate", r"^format", "Share of completions with well-formed <think>/<answer> tags.", section="signature"),
    Panel("kl", "KL to reference", r"^kl", "k3 estimate of KL(π_θ ‖ π_ref); spikes mean the policy jumped.", section="health"),
    Panel("entropy", "Entropy", r"^entropy", "Mean token entropy of sampled completions; a collapse means no exploration.", section="health"),
    Panel("clip", "Clip ratios", r"^clip_ratio|^completions/(clipped|truncated)_ratio", "Share of tokens clipped by ε (low/high) and of completions cut at max length.", section="health"),
    Panel("zero_std", "Zero-std groups", r"frac_reward_zero_std|zero_std", "Share of groups whose G rewards are all equal: they give no gradient.", section="health"),
    Panel("grad_norm", "Gradient norm", r"grad_norm", "Global gradient norm before clipping.", section="health"),
    Panel("lr", "Learning rate", r"^lr$|/lr$|learning_rate", "Learning rate from the schedule.", section="health"),
    Panel("loss", "Loss", r"^loss$|^train/loss|_loss$", "Training loss (≈0 is normal in GRPO: advantages are centred).", section="health"),
    Panel("moe", "Expert load", r"^moe/|expert", "DeepSeekMoE routing balance: max expert load over mean load, minus 1.", section="systems"),
    Panel("time", "Time split", r"^time/|^timing/|_seconds$|_time$", "Seconds per step spent generating, scoring, on the reference and updating.", section="systems"),
    Panel("throughput", "Tokens/s", r"tokens_per_s|tokens/s|throughput", "Tokens generated (GRPO) or trained (pretrain/SFT) per second.", section="systems"),
    # fractions and token counts never share an axis: lengths get their own chart
    Panel("eval_length", "Evaluation length", r"^eval/.*length", "Mean completion length at each evaluation, in tokens.", section="evaluation"),
    Panel("eval", "Evaluation", r"^eval/", "Held-out accuracy and share of worked answers per benchmark.", percent=True, section="evaluation"),
    # A run's base stage (pretraining) has its own step axis and `train/` names: its own charts, last.
    Panel("pretrain_loss", "Pretraining loss", r"^train/.*loss$", "Base-stage loss (completion tokens only; MTP and balance terms apart).", section="pretraining"),
    Panel("pretrain_opt", "Pretraining lr and grad norm", r"^train/(lr|grad_norm)$",
          "Base-stage gradient norm (left axis) and learning-rate schedule (right axis).", secondary=r"/lr$", section="pretraining"),
    Panel("pretrain_moe", "Pretraining expert load", r"^train/moe/", "Base-stage DeepSeekMoE routing balance.", section="pretraining"),
    Panel("pretrain_speed", "Pretraining tokens/s", r"^train/", "Base-stage training throughput.", section="pretraining"),
]
PRETRAIN_PREFIX = "train/"

# (key, title, what it tells), in the dashboard's order
SECTIONS = [
    ("signature", "R1's signature", "Does it learn to reason? Accuracy, response length (p10–p90 band) and reward by component."),
    ("health", "Policy health", "Is the update sound? KL, entropy, clipping, groups with no signal, gradients."),
    ("systems", "Systems", "Where the time goes: time split per step, tokens/s, expert load."),
    ("evaluation", "Evaluation", "Held-out benchmarks at each evaluation."),
    ("pretraining", "Pretraining", "The base stage, on its own step axis."),
    ("other", "Other metrics", "Everything else the run logs."),
]
SECTION_ORDER = [key for key, _, _ in SECTIONS]
# the order of charts inside a section (PANELS' order is the order names are claimed in)
DISPLAY_ORDER = ["accuracy", "length", "reward", "format", "kl", "entropy", "clip", "zero_std", "time", "throughput", "moe"]


def metric_descriptions(names: list[str]) -> dict[str, str]:
    """name → description from the trainer's registry (r1model.train.metrics)."""
    found = {name: describe(name) for name in names}
    return {name: metric.description for name, metric in found.items() if metric is not None}


def dashboard_panels(names: list[str], *, evaluations: bool = False) -> list[dict]:
    """Chart specs for a run with metrics `names` (and its benchmark charts with `evaluations`), by section:
    the known panels that have data, then the rest."""
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
                "section": panel.section,
            }
        )
    for name in names:
        if name not in claimed:
            panels.append(
                {"key": f"m-{len(panels)}", "title": name, "description": docs.get(name, ""), "names": [name], "band": [],
                 "docs": {}, "section": "other"}
            )
    if evaluations:
        panels.extend(eval_panels())
    return sorted(panels, key=_display_rank)


def _display_rank(panel: dict) -> tuple[int, int]:
    key = panel["key"]
    return SECTION_ORDER.index(panel["section"]), DISPLAY_ORDER.index(key) if key in DISPLAY_ORDER else len(DISPLAY_ORDER)


def dashboard_sections(panels: list[dict]) -> list[dict]:
    """The sections that have charts among `panels`, in order: {key, title, description}."""
    present = {p.get("section", "other") for p in panels}
    return [{"key": key, "title": title, "description": text} for key, title, text in SECTIONS if key in present]


def eval_panels(title: str = "Benchmark scores") -> list[dict]:
    """The charts of a run's evaluation results (lab.selectors.metrics.eval_series): scores (fractions,
    read in %) and completion lengths (tokens) apart, so neither flattens the other."""
    return [
        {"key": "benchmarks", "title": title, "description": "pass@1, cons@k and the other rates by step.",
         "names": [], "band": [], "eval": True, "evalUnit": "fraction", "percent": True, "section": "evaluation"},
        {"key": "benchmark-lengths", "title": "Completion length at evaluation",
         "description": "Mean completion length in tokens by step.", "names": [], "band": [], "eval": True,
         "evalUnit": "tokens", "section": "evaluation"},
    ]
