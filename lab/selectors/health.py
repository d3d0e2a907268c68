"""Run health: the failure patterns of GRPO runs, each with a one-line explanation and a fix.

Each check reads a few points from the start and the end of one or two metrics (indexed, bounded).
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean, median

from lab.selectors.metrics import first_values, last_values

WINDOW = 20
MIN_POINTS = 5


@dataclass(frozen=True)
class Warning:
    key: str
    title: str
    explanation: str
    fix: str


class _Series:
    """The first and last WINDOW values of the first present candidate metric."""

    def __init__(self, run_id: int, present: set[str], candidates: tuple[str, ...]):
        name = next((c for c in candidates if c in present), "")
        self.start = first_values(run_id, name, WINDOW) if name else []
        self.recent = last_values(run_id, name, WINDOW) if name else []

    @property
    def ok(self) -> bool:
        return len(self.start) >= MIN_POINTS and len(self.recent) >= MIN_POINTS

    @property
    def before(self) -> float:
        return fmean(self.start)

    @property
    def now(self) -> float:
        return fmean(self.recent)


def _trend(key: str, title: str, series: dict[str, tuple[str, ...]], fires, explanation, fix: str):
    """A check on metrics' trends: each of `series` (argument name → candidate metrics) read as a _Series;
    Warning(key, title, explanation(**series), fix) when all have enough points and fires(**series)."""

    def check(run_id, present):
        values = {name: _Series(run_id, present, candidates) for name, candidates in series.items()}
        if all(s.ok for s in values.values()) and fires(**values):
            return Warning(key, title, explanation(**values), fix)
        return None

    return check


_FORMAT = ("format_rate", "rewards/format/mean")
_ACCURACY = ("accuracy", "rewards/accuracy/mean")

_zero_std = _trend(
    "zero_std", "Most groups have equal rewards", {"s": ("frac_reward_zero_std",)},
    lambda s: s.now > 0.6,
    lambda s: f"{s.now:.0%} of groups over the last {len(s.recent)} steps had all-equal rewards, "
    "so they give no gradient.",
    "Use prompts nearer the model's level (mix difficulties), raise G or the temperature.",
)
_entropy_collapse = _trend(
    "entropy_collapse", "Entropy collapsed", {"s": ("entropy",)},
    lambda s: s.before > 0 and s.now < 0.2 * s.before,
    lambda s: f"Token entropy fell from {s.before:.3g} to {s.now:.3g}: the policy stopped exploring.",
    "Lower the learning rate, raise the temperature, or use clip-higher (ε_high 0.28).",
)
_truncation = _trend(
    "truncation", "More completions hit the length limit",
    {"s": ("completions/truncated_ratio", "completions/clipped_ratio")},
    lambda s: s.now > 0.2 and s.now > s.before + 0.1,
    lambda s: f"{s.now:.0%} of recent completions were cut at max new tokens (was {s.before:.0%}).",
    "Raise max_new_tokens, or add overlong shaping / a length penalty so truncation is not rewarded.",
)
_reward_hacking = _trend(
    "reward_hacking", "Format up, accuracy flat", {"fmt": _FORMAT, "acc": _ACCURACY},
    lambda fmt, acc: fmt.now - fmt.before > 0.3 and abs(acc.now - acc.before) < 0.05,
    lambda fmt, acc: f"Format rate rose {fmt.before:.0%} → {fmt.now:.0%} while accuracy stayed at {acc.now:.0%}: "
    "the model learns the tags, not the task.",
    "Check the accuracy checker and its gold answers, lower the format reward's weight.",
)


def _kl_spike(run_id, present):
    if "kl" not in present:
        return None
    recent = last_values(run_id, "kl", 200)
    if len(recent) < 10:
        return None
    base, peak = median(recent[:-5]), max(recent[-5:])
    if peak > 0.01 and peak > 10 * max(base, 1e-6):
        return Warning(
            "kl_spike", "KL spiked",
            f"KL reached {peak:.3g} against a typical {base:.3g}: the policy jumped away from the reference.",
            "Lower the learning rate, raise β, tighten ε, or check for a bad batch.",
        )


def _reward_without_accuracy(run_id, present):
    reward = _Series(run_id, present, ("reward",))
    acc = _Series(run_id, present, _ACCURACY)
    fmt = _Series(run_id, present, _FORMAT)
    if fmt.ok and fmt.now - fmt.before > 0.3:
        return None  # format up, accuracy flat: _reward_hacking says it
    if reward.ok and acc.ok and reward.now - reward.before >= 0.1 and acc.now - acc.before < 0.02:
        return Warning(
            "reward_without_accuracy", "Reward up, accuracy not",
            f"The reward rose {reward.before:.3g} → {reward.now:.3g} while accuracy went {acc.before:.0%} → {acc.now:.0%}: "
            "the policy pleases the reward without solving more problems (a learned reward such as a PRM is "
            "hackable, DeepSeek-R1 §4.2).",
            "Read the latest traces against the reward's scores; use the rule-based accuracy reward, or retrain the "
            "reward model on the policy's current samples.",
        )


CHECKS = (_zero_std, _entropy_collapse, _truncation, _kl_spike, _reward_hacking, _reward_without_accuracy)


def run_health(run_id: int, names: list[str]) -> list[Warning]:
    present = set(names)
    return [w for w in (check(run_id, present) for check in CHECKS) if w is not None]
