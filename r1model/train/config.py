"""RunConfig: the one configuration of every r1model job (pretrain, SFT, GRPO, rollout, evaluation).

The config is the documentation (as TRL's GRPOConfig): every field has a default and a description that
says what it does and, for GRPO, what the DeepSeek-R1 report used. The web lab generates its new-run form
from `RunConfig.model_json_schema()`, so this module imports pydantic and the standard library only —
never torch.

    from r1model.train.config import validate_run_config, ConfigError
    config = validate_run_config({"kind": "grpo", "grpo": {"group_size": 16}})
    config.grpo.beta  -> 0.001
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from r1model.rewards import REWARDS  # standard library only, like this module

KINDS = ("pretrain", "sft", "grpo", "rejection_sampling", "evaluate")
# Reward functions the rewards package provides (its REWARDS registry, the one list); weights of 0 switch one off.
KNOWN_REWARDS = tuple(REWARDS)


class _Strict(BaseModel):
    """Unknown keys are errors (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class ModelSpec(_Strict):
    """Which model to start from."""

    source: str = Field(
        "tiny",
        min_length=1,
        description="A model preset name of r1model.model (e.g. 'tiny') — a fresh, randomly initialised "
        "model; a model folder in HF layout (config.json + safetensors + tokenizer files): a checkpoint of the "
        "built-in model (another run's checkpoints/step-N) or any deepseek_v3 folder load into the built-in "
        "DeepSeekV3, any other causal LM transformers supports (Qwen2, Llama, ...) loads with "
        "AutoModelForCausalLM and is saved again in its own layout; or a Hugging Face hub id "
        "'org/name[@revision]', downloaded into HF_HOME (an offline node needs it in that cache).",
    )
    overrides: dict[str, Any] = Field(
        {},
        description="ModelConfig fields to change on the preset (e.g. {\"num_hidden_layers\": 2}). Ignored "
        "keys are errors when the model is built. Only for presets; a checkpoint keeps its own shape.",
    )


class DatasetSpec(_Strict):
    """One source of problems: a built-in task with its difficulty knobs, or a dataset file."""

    task: str | None = Field(
        "addition",
        description="Built-in task name (r1model.tasks: addition, multiplication, countdown, "
        "linear_equation, code). Null when `path` is given.",
    )
    path: str | None = Field(
        None,
        description="A dataset file (JSONL of problem records {id, problem, answer, solution?, task?}; for "
        "sft also {prompt, completion}). Null when `task` is given.",
    )
    difficulty: dict[str, Any] = Field(
        {}, description="The task's difficulty knobs, e.g. {\"digits\": 6} for addition; empty = task defaults."
    )
    weight: float = Field(1.0, gt=0, description="Sampling weight of this dataset when several are mixed.")
    eval_size: int = Field(
        200, ge=0, description="Held-out problems of this dataset (test split) used by the 'heldout' benchmark."
    )

    @model_validator(mode="after")
    def _one_source(self):
        if (self.task is None) == (self.path is None):
            raise ValueError("give exactly one of 'task' (a built-in task) or 'path' (a dataset file)")
        return self


class RewardSpec(_Strict):
    """One rule-based reward and its weight in the total (R1: accuracy + format; no neural reward model)."""

    name: str = Field(
        "accuracy",
        description="Reward function: accuracy (the <answer>, else the last \\boxed{}, by the task's exact checker; "
        "0 when truncated, see truncated_is_wrong), format (well-formed "
        "<think>…</think><answer>…</answer>), language (share of target-language words in the think part, R1), "
        "length (Kimi k1.5 length reward), repetition (penalty for repeated n-grams), prm (a trained process "
        "reward model's lowest step score; needs `model`; R1 §4.2 tried and dropped it).",
    )
    weight: float = Field(1.0, description="Weight of this reward in the total reward.")
    model: str | None = Field(
        None,
        description="A model-based reward's checkpoint folder: prm takes a process reward model (the prm-vs-orm "
        "chain trains one); null for the rule-based rewards.",
    )
    warmup_steps: int = Field(
        0,
        ge=0,
        description="GRPO steps 1..N with this reward off (weight 0; still computed and logged), then on at its "
        "weight from step N+1 — no ramp. Kimi k1.5 §2.3.3 warms the length penalty up this way: standard policy "
        "optimisation first, then a constant length penalty.",
    )

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in KNOWN_REWARDS:
            raise ValueError(f"unknown reward {value!r}; known: {', '.join(KNOWN_REWARDS)}")
        return value

    @model_validator(mode="after")
    def _model_only_for_prm(self):
        if self.name == "prm" and not self.model:
            raise ValueError("the prm reward needs `model`: a process reward model checkpoint folder")
        if self.name != "prm" and self.model:
            raise ValueError(f"`model` is for the prm reward; {self.name!r} is rule-based")
        return self


class SupervisedConfig(_Strict):
    """Hyper-parameters of the supervised jobs: pretraining a base and SFT (loss on the completion only)."""

    batch_size: int = Field(64, ge=1, description="Sequences per optimizer step.")
    learning_rate: float = Field(3e-3, gt=0, description="Peak AdamW learning rate.")
    lr_schedule: Literal["constant", "linear", "cosine"] = Field(
        "cosine", description="Decay after warm-up: constant, linear to 0, or cosine to min_lr_ratio × peak."
    )
    warmup_steps: int = Field(50, ge=0, description="Linear warm-up steps from 0 to the peak learning rate.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Final learning rate of the cosine schedule, as a share of the peak.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW decoupled weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping by global norm.")
    worked_fraction: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Share of corpus examples with a worked solution inside <think>; the rest answer directly "
        "with an empty think. The aha-mini base uses 0.3: it prefers short answers but can write steps. "
        "kind sft always uses worked solutions (1.0) for built-in tasks.",
    )
    completion_only_loss: bool = Field(
        True,
        description="Loss on the completion tokens only (the prompt's random digits are not worth learning; "
        "full-sequence loss left the trial's base unable to add).",
    )
    max_seq_len: int = Field(256, ge=8, description="Longer examples are truncated to this many tokens.")


class SamplingConfig(_Strict):
    """How completions are generated: GRPO's rollouts and a rejection-sampling job's samples (temperature,
    top-p, top-k, length), and which engine generates them (also for evaluation, which has its own
    temperature and top-p)."""

    temperature: float = Field(1.0, gt=0, description="Sampling temperature. Report (R1-Zero rollouts): 1.0; rejection sampling: 0.6.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling (1.0 = off). Report (rejection sampling): 0.95.")
    top_k: int = Field(0, ge=0, description="Top-k sampling (0 = off).")
    engine: Literal["builtin", "speculative", "vllm"] = Field(
        "builtin",
        description="What generates text (GRPO rollouts, rejection sampling and evaluation): builtin "
        "(batched decoding with a KV cache), speculative (the model's MTP module drafts one token ahead and the "
        "model verifies it, V3 report §5.4.3; the same distribution, fewer forwards; needs "
        "num_nextn_predict_layers ≥ 1) or vllm (a vLLM engine on a transformers model; see vllm_mode).",
    )
    vllm_mode: Literal["server", "colocate"] = Field(
        "server",
        description="engine vllm: server = a vLLM OpenAI server in its own process (its own Python: "
        "vllm_python), weights synced by saving a checkpoint and reloading it; colocate = vLLM in the trainer's "
        "process, weights pushed in one call after each optimizer step, sleep/wake to share GPU memory.",
    )
    vllm_python: str = Field(
        "", description="engine vllm, server mode: the Python with vLLM installed (default: env "
        "R1LAB_VLLM_PYTHON, else this Python)."
    )
    max_new_tokens: int = Field(
        256, ge=1, description="Longest completion; longer ones are cut and flagged truncated. Report: 32,768 (65,536 after step 8.2k)."
    )


class GRPOConfig(_Strict):
    """GRPO (DeepSeekMath §4; R1 report §2.2): per prompt, sample G outputs, advantage = reward normalised
    within the group, clipped-ratio policy loss, k3 KL to a reference in the loss."""

    group_size: int = Field(8, ge=2, description="G: completions sampled per prompt. Report (R1-Zero): 16.")
    prompts_per_step: int = Field(16, ge=1, description="Prompts (questions) per step; batch = prompts × G. Report: 32 (batch 512).")
    learning_rate: float = Field(3e-6, gt=0, description="Peak AdamW learning rate. Report: 3e-6 (a tiny model wants ~3e-4).")
    lr_schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant", description="Learning-rate schedule after warm-up: constant, linear to 0, cosine to min_lr_ratio × peak."
    )
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Final learning rate of the cosine schedule, as a share of the peak.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW decoupled weight decay.")
    adam_beta1: float = Field(0.9, ge=0, lt=1, description="AdamW β1.")
    adam_beta2: float = Field(0.99, ge=0, lt=1, description="AdamW β2.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping by global norm.")
    beta: float = Field(
        0.001,
        ge=0,
        description="KL coefficient β of the k3 estimator D_KL = π_ref/π − log(π_ref/π) − 1, added to the loss "
        "(not the reward). Report: 0.001. β = 0 skips the reference model entirely (no memory, no forward).",
    )
    epsilon_low: float = Field(0.2, gt=0, lt=1, description="Clip range below: ρ ≥ 1 − ε_low. Report/PPO: 0.2.")
    epsilon_high: float = Field(
        0.2, gt=0, description="Clip range above: ρ ≤ 1 + ε_high. 0.2 is symmetric PPO; DAPO's clip-higher uses 0.28."
    )
    num_iterations: int = Field(
        1,
        ge=1,
        description="μ: inner epochs over each step's rollouts. μ = 1 is on-policy (ratio ≡ 1, clip ratio 0).",
    )
    minibatches: int = Field(
        1, ge=1, description="Minibatches per inner epoch (one optimizer step each); must divide prompts × G."
    )
    micro_batch_size: int = Field(
        0, ge=0, description="Completions per forward and backward of the update (0 = a whole minibatch at once): "
        "a minibatch too big for memory runs as micro-batches of at most this many, each with its prompts' "
        "forward and its own backward, before the minibatch's one optimizer step. The same update."
    )
    logprob_check_interval: int = Field(
        10, ge=0, description="sampling.engine vllm: compare the engine's per-token logprobs with the trainer's "
        "on the same tokens at the first step and every K steps (rollout/logprob_diff; 0 = first step only)."
    )
    logprob_max_diff: float = Field(
        0.1, ge=0, description="sampling.engine vllm: stop the run when the mean |Δ logprob| of the check "
        "exceeds this (0 = report only)."
    )
    tis_cap: float = Field(
        0.0, ge=0, description="Truncated importance sampling: weight each token's policy loss by "
        "min(π_train/π_engine, C) with C = tis_cap, correcting the rollout engine's numerics (0 = off)."
    )
    ref_refresh_interval: int = Field(
        0, ge=0, description="Copy the policy into the reference model every N steps (0 = never). Report: every 400 steps."
    )
    loss_aggregation: Literal["grpo", "dapo", "dr_grpo"] = Field(
        "grpo",
        description="How token losses become one number: grpo = mean over sequences of each sequence's token "
        "mean (the report's formula); dapo = mean over all tokens of the batch; dr_grpo = sum over tokens / "
        "(sequences × sampling.max_new_tokens) (Dr. GRPO's constant normaliser; it also sets advantage_scaling to none "
        "unless that is given).",
    )
    advantage_scaling: Literal["std", "none"] = Field(
        "std",
        description="A = (r − mean)/std within the group (std, the report) or r − mean (none, Dr. GRPO). "
        "Left out, it follows loss_aggregation: none with dr_grpo (Dr. GRPO drops both the length normaliser "
        "and the std division), std otherwise. dr_grpo with std given explicitly is kept, with a warning.",
    )
    drop_all_equal_groups: bool = Field(
        False, description="Leave out groups whose G rewards are all equal (zero advantage, no signal; DAPO dynamic sampling without refill)."
    )

    @model_validator(mode="after")
    def _scaling_follows_aggregation(self):
        # Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training") removes the std division as well
        # as the length normaliser: an unset advantage_scaling follows the aggregation. Explicit values stay.
        if self.loss_aggregation == "dr_grpo" and "advantage_scaling" not in self.model_fields_set:
            self.advantage_scaling = "none"
        return self

    @model_validator(mode="after")
    def _divisible(self):
        batch = self.prompts_per_step * self.group_size
        if batch % self.minibatches:
            raise ValueError(
                f"minibatches ({self.minibatches}) must divide prompts_per_step × group_size ({batch})"
            )
        return self


class BaseProbe(_Strict):
    """A measured base budget: sample the base on held-out problems while it pretrains and stop when it is right
    often enough at the RL's temperature (the sampled skill GRPO amplifies: bench/RESULTS.md, weak-base)."""

    first: int | None = Field(
        None, ge=1, description="First probe at this pretraining step (null = at `steps`, the schedule's end)."
    )
    interval: int = Field(100, ge=1, description="Then a probe every N steps.")
    extra_steps: int = Field(
        0, ge=0, description="While no probe has passed, pretrain up to `steps` + extra_steps at the schedule's "
        "last learning rate (the cap; the base is the cap's when none passes).",
    )
    min_accuracy: float = Field(
        0.2, ge=0, le=1, description="Stop at the first probe whose pass@1 (sampled) is at least this."
    )
    problems: int = Field(
        64, ge=1, description="Probe problems: the test split drawn with a seed of its own (not the run's "
        "held-out evaluation set); a dataset file's held-out rows.",
    )
    samples_per_problem: int = Field(4, ge=1, description="Samples per probe problem.")
    temperature: float = Field(1.0, ge=0, description="Probe sampling temperature (the RL's).")
    max_new_tokens: int = Field(64, ge=1, description="Probe completion length limit.")


class BaseStage(_Strict):
    """Build the base model inside the run before the main job (how the lab makes its base models)."""

    steps: int = Field(
        0,
        ge=0,
        description="Pretraining steps (with `supervised`, on the run's datasets' corpus) of a fresh `model` "
        "preset before the main job; 0 = start the main job from `model` as it is. The base is saved to "
        "<run_dir>/base/checkpoints/step-<steps> and the main job starts from it.",
    )
    checkpoint_interval: int = Field(500, ge=0, description="Base checkpoints every N steps (0 = only at the end).")
    datasets: list[DatasetSpec] | None = Field(
        None,
        description="The base's corpus when it differs from the run's datasets (e.g. mixed operand lengths, "
        "which teach digit alignment sooner); null = the run's datasets.",
    )
    probe: BaseProbe | None = Field(
        None,
        description="Measure the base while it pretrains and stop when a probe passes (null = pretrain `steps`). "
        "`steps` stays the learning-rate schedule's length.",
    )


class EvalConfig(_Strict):
    """Held-out evaluation during and after training (emits `eval` events)."""

    interval: int = Field(0, ge=0, description="Evaluate every N steps (0 = only before the first and after the last step).")
    at_start: bool = Field(True, description="Evaluate the starting model before step 1 (the step-0 baseline).")
    benchmarks: list[str] = Field(
        ["heldout"],
        description="'heldout' = the test split of the run's datasets; other names are benchmark suites of "
        "r1model.evaluate.",
    )
    samples_per_problem: int = Field(1, ge=1, description="k samples per problem; pass@1 = mean correctness over them.")
    temperature: float = Field(
        0.6, ge=0, description="Sampling temperature (0 = greedy). Report: 0.6 with top-p 0.95; greedy avoided (repetition)."
    )
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling at evaluation. Report: 0.95.")
    max_new_tokens: int | None = Field(None, ge=1, description="Longest answer at evaluation; null = sampling.max_new_tokens.")
    think_budgets: list[int] = Field(
        [],
        description="Also evaluate each benchmark with the think cut at B tokens, `</think><answer>` forced and the "
        "answer generated from there, for each B (an accuracy-vs-budget curve; Kimi k1.5 long2short): benchmark "
        "'<name>@think<=B', the usual metrics and token_efficiency. Empty = off.",
    )

    @field_validator("think_budgets")
    @classmethod
    def _budgets(cls, value: list[int]) -> list[int]:
        if any(b < 1 for b in value):
            raise ValueError("think budgets must be >= 1 token")
        return sorted(set(value))


class DistributedConfig(_Strict):
    """Data-parallel training under DeepSpeed: N ranks (torchrun or the deepspeed launcher) split each step's
    prompts (GRPO) or sequences (pretrain/SFT); rank 0 alone writes events, traces and checkpoints, and the
    checkpoint is the same HF layout a single process writes (a ZeRO-3 run's weights are gathered first)."""

    backend: Literal["none", "deepspeed"] = Field(
        "none",
        description="none = one process, plain PyTorch; deepspeed = every rank of the launch (torchrun / the "
        "deepspeed launcher set RANK, WORLD_SIZE) trains one replica through a DeepSpeed engine with torch's "
        "AdamW; gradients are averaged across ranks. CPU ranks use gloo (DS_ACCELERATOR=cpu), GPU ranks nccl.",
    )
    nproc_per_node: int = Field(
        1, ge=1, le=64,
        description="Ranks the lab's worker starts on its node (torchrun --nproc-per-node); > 1 needs backend "
        "deepspeed. A run started by hand takes its ranks from the launcher.",
    )
    zero_stage: int = Field(
        0, ge=0, le=3,
        description="ZeRO stage: 0 = plain data parallel (every rank holds weights, gradients, optimizer "
        "state); 1 = optimizer state partitioned; 2 = + gradients; 3 = + weights (gathered for rollouts, "
        "evaluation and checkpoints).",
    )
    offload_optimizer: Literal["none", "cpu"] = Field(
        "none", description="Keep the optimizer state (and its step) in CPU memory; needs zero_stage ≥ 1."
    )
    offload_params: Literal["none", "cpu"] = Field(
        "none", description="Keep the partitioned weights in CPU memory between uses; needs zero_stage 3."
    )
    gradient_accumulation_steps: int = Field(
        1, ge=1,
        description="Pretrain/SFT: each rank's share of supervised.batch_size runs as this many micro-batches "
        "before one optimizer step (the same update, less memory). GRPO splits its update with grpo.minibatches.",
    )
    bf16: bool = Field(
        False, description="DeepSpeed bf16 mode: bf16 weights and gradients with fp32 master weights in the "
        "optimizer (GPU; on CPU keep false)."
    )

    @model_validator(mode="after")
    def _consistent(self):
        if self.backend == "none" and self.nproc_per_node > 1:
            raise ValueError(f"nproc_per_node {self.nproc_per_node} needs backend 'deepspeed'")
        if self.offload_optimizer != "none" and self.zero_stage < 1:
            raise ValueError("offload_optimizer needs zero_stage 1, 2 or 3")
        if self.offload_params != "none" and self.zero_stage != 3:
            raise ValueError("offload_params needs zero_stage 3")
        return self


class RunConfig(_Strict):
    """Everything one job needs; written to <run_dir>/config.json as validated."""

    _notes: list[dict] = PrivateAttr(default_factory=list)  # upgrade_config's notes (config_warnings shows them)

    kind: Literal["pretrain", "sft", "grpo", "rejection_sampling", "evaluate"] = Field(
        "grpo",
        description="pretrain: train a base on task corpora; sft: supervised fine-tuning on worked solutions; "
        "grpo: R1-Zero reinforcement learning; rejection_sampling: sample completions, score them, keep the "
        "accepted ones (R1 §2.3.3); evaluate: benchmarks only.",
    )
    name: str = Field("", description="A free label for the run (shown in dashboards).")
    model: ModelSpec = Field(ModelSpec(), description="Model to start from: preset or checkpoint folder, with overrides.")
    base: BaseStage = Field(BaseStage(), description="Optional base pretraining inside this run before the main job.")
    datasets: list[DatasetSpec] = Field(
        [DatasetSpec()], min_length=1, description="Problem sources (built-in tasks with difficulty, or files)."
    )
    template: str = Field(
        "r1-zero",
        min_length=1,
        description="Prompt template: 'r1-zero' (the report's wording), 'mini' (short, for character-level tiny "
        "models) or a text containing {prompt}.",
    )
    prompt_format: Literal["auto", "plain", "chat"] = Field(
        "auto",
        description="How a problem becomes the prompt text: plain = the template as text (R1-Zero on a base "
        "model); chat = the model tokenizer's chat template, the R1 instruction as system message and the "
        "problem as the user's turn; auto = chat when the tokenizer has a chat template and the model looks "
        "instruct-tuned (its EOS is the template's end-of-turn token), else plain. Built-in models: plain.",
    )
    rewards: list[RewardSpec] = Field(
        [RewardSpec(name="accuracy", weight=1.0), RewardSpec(name="format", weight=0.5)],
        description="Rule-based rewards and their weights; the total is the weighted sum. R1-Zero: accuracy + format.",
    )
    truncated_is_wrong: bool = Field(
        True,
        description="A completion cut off at the token limit has no answer: accuracy 0 in the GRPO reward and "
        "unparseable in every evaluation, even if it holds a correct <answer> or \\boxed{} (a truncated answer is "
        "not an answer). false = judge whatever answer the cut text holds.",
    )
    seed: int = Field(0, ge=0, description="Seed of every random choice (data order, sampling, initialisation).")
    deterministic: bool = Field(
        False, description="Deterministic algorithms only, so a resumed run reproduces an uninterrupted one exactly."
    )
    precision: Literal["fp32", "bf16", "fp16", "fp8"] = Field(
        "fp32",
        description="What the run computes in (master weights stay fp32): fp32; bf16 or fp16 = autocast of "
        "forward and backward; fp8 = the built-in model's Linear GEMMs in FP8 E4M3 with 1×128 / 128×128 block "
        "scales (DeepSeek-V3 §3.3), the rest fp32 — built-in models only. The built-in model's own GEMM "
        "precision follows this field (a preset's or checkpoint's is not used).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda when available, else cpu.")
    threads: int = Field(1, ge=1, description="torch CPU threads (torch.set_num_threads).")
    total_steps: int = Field(100, ge=0, description="Optimizer steps of the main job (GRPO: rollout steps).")
    checkpoint_interval: int = Field(50, ge=0, description="Save checkpoints/step-N every N steps (0 = only at the end).")
    keep_checkpoints: int = Field(3, ge=1, description="Keep the last K checkpoints; older ones are deleted.")
    log_interval: int = Field(1, ge=1, description="Emit metric events every N steps.")
    traces_per_step: int = Field(
        1, ge=0, description="Whole groups (all G completions of one prompt) written as trace events per step."
    )
    supervised: SupervisedConfig = Field(SupervisedConfig(), description="Pretrain / SFT hyper-parameters.")
    sampling: SamplingConfig = Field(
        SamplingConfig(), description="How completions are generated (GRPO rollouts, rejection sampling) and by which engine."
    )
    grpo: GRPOConfig = Field(GRPOConfig(), description="GRPO hyper-parameters (G, prompts per step, the loss, the update).")
    evaluation: EvalConfig = Field(EvalConfig(), description="Held-out evaluation settings.")
    distributed: DistributedConfig = Field(
        DistributedConfig(), description="Data-parallel training on several ranks (DeepSpeed, ZeRO 0–3)."
    )

    @model_validator(mode="before")
    @classmethod
    def _model_shorthand(cls, data):
        # "model": "tiny" is accepted as {"source": "tiny"}; older spellings load (upgrade_config).
        if isinstance(data, dict) and isinstance(data.get("model"), str):
            data = {**data, "model": {"source": data["model"]}}
        return upgrade_config(data)[0] if isinstance(data, dict) else data

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        if value not in ("r1-zero", "mini") and "{prompt}" not in value:
            raise ValueError("must be 'r1-zero', 'mini' or a text containing {prompt}")
        return value

    @field_validator("rewards")
    @classmethod
    def _unique_rewards(cls, value: list[RewardSpec]) -> list[RewardSpec]:
        names = [r.name for r in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"reward listed twice: {', '.join(repeated)}")
        return value

    @model_validator(mode="after")
    def _prm_needs_step_labels(self):
        # a process reward scores steps, which only tasks with step labels define (r1model.tasks.steps)
        from r1model.tasks.steps import STEP_TASKS

        if any(r.name == "prm" for r in self.rewards) and self.kind in ("grpo", "rejection_sampling"):
            for i, spec in enumerate(self.datasets):
                if spec.task is not None and spec.task not in STEP_TASKS:
                    raise ValueError(f"datasets.{i}.task: the prm reward needs step labels, and task {spec.task!r} "
                                     f"has none (tasks with step labels: {', '.join(STEP_TASKS)})")
        return self

    @model_validator(mode="after")
    def _divides_ranks(self):
        dist = self.distributed
        if dist.backend != "deepspeed":
            return self
        if self.kind == "grpo" and self.grpo.prompts_per_step % dist.nproc_per_node:
            raise ValueError(f"distributed.nproc_per_node ({dist.nproc_per_node}) must divide grpo.prompts_per_step "
                             f"({self.grpo.prompts_per_step}): each rank samples an equal share of the prompts")
        parts = dist.nproc_per_node * dist.gradient_accumulation_steps
        if self.kind in ("pretrain", "sft") or self.base.steps:
            if self.supervised.batch_size % parts:
                raise ValueError(f"distributed.nproc_per_node × gradient_accumulation_steps ({parts}) must divide "
                                 f"supervised.batch_size ({self.supervised.batch_size})")
        return self

    def reward_weights(self, step: int | None = None) -> dict[str, float]:
        """name → weight, the form r1model.rewards.compute_rewards takes; at a GRPO `step` (1-based) a reward
        still in its warm-up (step ≤ warmup_steps) has weight 0."""
        return {r.name: 0.0 if step is not None and step <= r.warmup_steps else r.weight for r in self.rewards}

    def reward_options(self) -> dict[str, dict]:
        """name → keyword arguments of that reward (a model-based reward's checkpoint: {"prm": {"model": PATH}})."""
        return {r.name: {"model": r.model} for r in self.rewards if r.model}

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=False)


# Older spellings of a run config that still load: (where it was, where it is now).
_MOVED_TO_SAMPLING = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "max_new_tokens": "max_new_tokens",
                      "rollout_engine": "engine", "vllm_mode": "vllm_mode", "vllm_python": "vllm_python"}
_OLD_KINDS = {"rollout": "rejection_sampling"}


def upgrade_config(data: dict) -> tuple[dict, list[dict]]:
    """(config dict in today's spelling, notes [{"field", "msg"}] naming each old spelling found). Loads:
    kind 'rollout' (now rejection_sampling); grpo.temperature / top_p / top_k / max_new_tokens / rollout_engine /
    vllm_mode / vllm_python (now the `sampling` section; rollout_engine is sampling.engine); model.overrides
    precision (now the run's `precision`: 'fp8' → fp8, others leave the run's precision as given). A key given
    in both places keeps the new one. The dict given is not changed."""
    notes: list[dict] = []
    if data.get("kind") in _OLD_KINDS:
        data = {**data, "kind": _OLD_KINDS[data["kind"]]}
        notes.append({"field": "kind", "msg": f"'rollout' is now '{data['kind']}' (the old name still loads)"})
    grpo = data.get("grpo")
    if isinstance(grpo, dict) and any(key in grpo for key in _MOVED_TO_SAMPLING):
        grpo, sampling = dict(grpo), dict(data.get("sampling") or {})
        for old, new in _MOVED_TO_SAMPLING.items():
            if old in grpo:
                value = grpo.pop(old)
                sampling.setdefault(new, value)
                notes.append({"field": f"grpo.{old}", "msg": f"moved to sampling.{new} (the old place still loads)"})
        data = {**data, "grpo": grpo, "sampling": sampling}
    model = data.get("model")
    if isinstance(model, dict) and isinstance(model.get("overrides"), dict) and "precision" in model["overrides"]:
        overrides = dict(model["overrides"])
        old = overrides.pop("precision")
        data = {**data, "model": {**model, "overrides": overrides}}
        if old == "fp8" and data.get("precision", "fp32") == "fp32":
            data["precision"] = "fp8"
        notes.append({"field": "model.overrides.precision",
                      "msg": f"the run's precision field says what a run computes in (was overrides {old!r}; "
                             f"precision is {data.get('precision', 'fp32')!r})"})
    return data, notes


class ConfigError(ValueError):
    """An invalid RunConfig. `.errors` lists every problem as {"field": "grpo.beta", "loc": (...), "msg": ...};
    str() lists them all, one a line."""

    def __init__(self, errors: list[dict], source: str = ""):
        self.errors = errors
        self.source = source
        head = f"invalid run config{' in ' + source if source else ''} ({len(errors)} error{'s' * (len(errors) != 1)}):"
        super().__init__("\n".join([head] + [f"  {e['field']}: {e['msg']}" for e in errors]))


def _field_path(loc: tuple) -> str:
    # pydantic puts the validator's name ('function-after[...]') in some locations: drop those parts.
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
    return ".".join(parts) or "config"


def validate_run_config(data: Any, source: str = "") -> RunConfig:
    """A RunConfig from a dict; ConfigError listing every error (dotted field path + message)."""
    if isinstance(data, RunConfig):
        return data
    if not isinstance(data, dict):
        raise ConfigError([{"field": "config", "loc": (), "msg": f"must be a JSON object, not {type(data).__name__}"}], source)
    try:
        config = RunConfig.model_validate(data)
        config._notes = upgrade_config(data)[1]
        return config
    except ValidationError as exc:
        errors = []
        for item in exc.errors(include_url=False):
            msg = item["msg"].removeprefix("Value error, ")
            errors.append({"field": _field_path(item["loc"]), "loc": tuple(item["loc"]), "msg": msg})
        raise ConfigError(errors, source) from None


def config_warnings(config: RunConfig) -> list[dict]:
    """Settings that are valid but probably not what was meant, as [{"field": "grpo.advantage_scaling",
    "msg": ...}] (the shape of ConfigError.errors, without loc); empty when there are none."""
    warnings = list(config._notes)  # old spellings that still load
    grpo = config.grpo
    if config.kind == "grpo" and grpo.loss_aggregation == "dr_grpo" and grpo.advantage_scaling == "std":
        warnings.append({
            "field": "grpo.advantage_scaling",
            "msg": "'std' with loss_aggregation 'dr_grpo' is not Dr. GRPO, which also leaves out the division by "
            "the group's reward std; set 'none' (or leave advantage_scaling out) for Dr. GRPO",
        })
    return warnings


def load_run_config(path: str | Path) -> RunConfig:
    """Read and validate a config file; ConfigError names the file (and the JSON line on a syntax error)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([{"field": "config", "loc": (), "msg": f"cannot read {path}: {exc.strerror}"}], str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [{"field": "config", "loc": (), "msg": f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"}],
            str(path),
        ) from None
    return validate_run_config(data, source=str(path))


def run_config_schema() -> dict:
    """The JSON Schema the lab's run form is generated from."""
    return RunConfig.model_json_schema()
