"""The one registry of metric names the trainer emits (`metric` events) — dashboards and tests read it.

Names follow TRL's GRPOTrainer where one exists (`completions/mean_length`, `rewards/<name>/mean`,
`clip_ratio/low_mean`, ...) so users of the peers find them where they expect. Standard library only.

    from r1model.train.metrics import METRICS, describe
    describe("rewards/accuracy/mean").unit  -> "reward"
"""
from __future__ import annotations

from dataclasses import dataclass

from r1model.evaluate.metrics import EVAL_METRICS


@dataclass(frozen=True)
class Metric:
    """name: the key in a metric event's `values`; `<name>` stands for a reward function's name.
    unit: what the number counts; phase: which job emits it (grpo, pretrain/sft, eval, all)."""

    name: str
    description: str
    unit: str
    phase: str = "grpo"


_GRPO = [
    Metric("reward", "Mean total (weighted) reward over the step's completions.", "reward"),
    Metric("reward_std", "Mean over groups of the within-group standard deviation of the total reward.", "reward"),
    Metric("rewards/<name>/mean", "Mean of one reward function over the step's completions (unweighted).", "reward"),
    Metric("rewards/<name>/std", "Standard deviation of one reward function over the step's completions.", "reward"),
    Metric("accuracy", "Share of completions whose answer the task's checker judged correct.", "fraction"),
    Metric("format_rate", "Share of completions that are well formed: <think>…</think><answer>…</answer>, not truncated.", "fraction"),
    Metric("completions/mean_length", "Mean completion length — the curve that grows in R1-Zero.", "tokens"),
    Metric("completions/p10_length", "10th percentile of completion length.", "tokens"),
    Metric("completions/p50_length", "Median completion length.", "tokens"),
    Metric("completions/p90_length", "90th percentile of completion length.", "tokens"),
    Metric("completions/max_length", "Longest completion of the step.", "tokens"),
    Metric("completions/min_length", "Shortest completion of the step.", "tokens"),
    Metric("completions/think_length", "Mean length of the text inside <think> (characters).", "chars"),
    Metric("completions/truncated_ratio", "Share of completions cut at max_new_tokens (TRL: completions/clipped_ratio).", "fraction"),
    Metric("frac_reward_zero_std", "Share of groups whose G rewards are all equal (zero advantage: no learning signal).", "fraction"),
    Metric("rewards/skipped_ratio", "Share of completions a checker could not judge (gold unparseable, sandbox error): their groups are left out, never scored.", "fraction"),
    Metric("groups/kept", "Groups used in the update (after drop_all_equal_groups).", "groups"),
    Metric("kl", "Mean k3 KL estimate to the reference model per completion token (0 when β = 0: not computed).", "nats"),
    Metric("entropy", "Mean per-token entropy of the sampling policy over every sampled completion token (softmax at the rollout temperature, before top-p/top-k; computed in the update when the engine does not report it).", "nats"),
    Metric("clip_ratio/low_mean", "Share of tokens with negative advantage whose ratio fell below 1 − ε_low (clipped).", "fraction"),
    Metric("clip_ratio/high_mean", "Share of tokens with positive advantage whose ratio rose above 1 + ε_high (clipped).", "fraction"),
    Metric("clip_ratio/region_mean", "Share of tokens clipped either way.", "fraction"),
    Metric("loss", "GRPO loss of the last minibatch (≈ 0 is normal: advantages are centred).", "loss"),
    Metric("grad_norm", "Global gradient norm before clipping (mean over the step's optimizer steps).", "norm"),
    Metric("lr", "Learning rate of the step's last optimizer step.", "lr"),
    Metric("moe/max_violation", "Expert load imbalance: max expert load / mean load − 1, averaged over the MoE layers.", "ratio"),
    Metric("time/generate", "Seconds spent sampling completions.", "s"),
    Metric("time/score", "Seconds spent computing rewards.", "s"),
    Metric("time/reference", "Seconds spent on reference-model log-probabilities (0 when β = 0).", "s"),
    Metric("time/update", "Seconds spent on old-policy log-probabilities, losses, backward and optimizer steps.", "s"),
    Metric("time/step", "Seconds for the whole step.", "s"),
    Metric("time/cpu", "CPU seconds of the whole step (process time, every thread; below time/step when the machine is shared).", "s"),
    Metric("throughput/tokens_per_s", "Completion tokens generated per second of the whole step.", "tokens/s"),
    Metric("rollout/logprob_diff", "sampling.engine = vllm: mean |engine logprob − trainer logprob| over the sampled tokens, the trainer teacher-forced on them (first step and every grpo.logprob_check_interval steps; the run stops past grpo.logprob_max_diff).", "nats"),
    Metric("rollout/logprob_diff_max", "The largest |engine logprob − trainer logprob| of that check.", "nats"),
    Metric("rollout/tis_weight_mean", "Truncated importance sampling (grpo.tis_cap > 0): mean token weight min(π_train/π_engine, C).", "ratio"),
    Metric("rollout/tis_capped", "Truncated importance sampling: share of tokens whose weight hit the cap C.", "fraction"),
    Metric("rollout/draft_acceptance", "Speculative rollouts (sampling.engine = speculative): share of the MTP module's drafts the model kept (V3 report: 85–90 %).", "fraction"),
]

_SUPERVISED = [
    Metric("train/loss", "Cross-entropy per completion token (pretrain / SFT).", "nats", "pretrain/sft"),
    Metric("train/grad_norm", "Global gradient norm before clipping.", "norm", "pretrain/sft"),
    Metric("train/lr", "Learning rate.", "lr", "pretrain/sft"),
    Metric("train/tokens_per_s", "Trained tokens (prompt + completion) per second.", "tokens/s", "pretrain/sft"),
    Metric("train/aux_loss", "MoE sequence-wise balance loss (α Σ f_i P_i).", "loss", "pretrain/sft"),
    Metric("time/train_cpu", "CPU seconds of the step (process time, every thread).", "s", "pretrain/sft"),
    Metric("train/mtp_loss", "Multi-token-prediction loss (when the model has MTP modules).", "nats", "pretrain/sft"),
    # its own name: a run's base stage and its GRPO stage share step numbers, so one name would mix them
    Metric("train/moe/max_violation", "Expert load imbalance in pretraining / SFT (as moe/max_violation).", "ratio",
           "pretrain/sft"),
]

_EVAL_UNITS = {"mean_length": "tokens", "token_efficiency": "per token"}
_EVAL = [Metric(f"eval/<benchmark>/{name}", description, _EVAL_UNITS.get(name, "fraction"), "eval")
         for name, description in EVAL_METRICS.items()] + [Metric("time/eval", "Seconds one evaluation took.", "s", "eval")]

_REJECTION = [
    Metric("rejection/accepted", "Samples kept by rejection sampling this step (checker: correct; each text once per problem).", "samples", "rejection_sampling"),
    Metric("rejection/acceptance_rate", "Share of the step's samples kept (rejection/accepted ÷ samples).", "fraction", "rejection_sampling"),
    Metric("rejection/accepted_total", "Samples kept so far in the run (rows of accepted.jsonl).", "samples", "rejection_sampling"),
]

METRICS: dict[str, Metric] = {}
for _m in _GRPO + _EVAL + _REJECTION:
    METRICS[_m.name] = _m
SUPERVISED_METRICS: dict[str, Metric] = {m.name: m for m in _SUPERVISED}
for _m in _SUPERVISED:
    METRICS.setdefault(_m.name, _m)


def _pattern_match(pattern: str, name: str) -> bool:
    p_parts, n_parts = pattern.split("/"), name.split("/")
    return len(p_parts) == len(n_parts) and all(p == n or (p.startswith("<") and p.endswith(">")) for p, n in zip(p_parts, n_parts))


def describe(name: str) -> Metric | None:
    """The registry entry of a metric name (templated names like rewards/accuracy/mean included)."""
    if name in METRICS:
        return METRICS[name]
    for metric in METRICS.values():
        if "<" in metric.name and _pattern_match(metric.name, name):
            return metric
    return None


def registry() -> list[dict]:
    """Every metric as {name, description, unit, phase} (JSON-ready, for the lab)."""
    return [{"name": m.name, "description": m.description, "unit": m.unit, "phase": m.phase} for m in METRICS.values()]
