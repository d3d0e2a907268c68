"""The R1-Zero GRPO loop: sample, score with rules, normalise within groups, update with a clipped ratio.

One step (R1 report §2.2; DeepSeekMath §4):
  1. take `prompts_per_step` problems (a pure function of seed and step: the data cursor is the step);
  2. sample G completions each with the rollout engine, at the rollout temperature;
  3. score them with the rule-based rewards (accuracy + format for R1-Zero);
  4. advantages (r − mean)/std within each group (grpo.group_advantages);
  5. μ inner epochs over minibatches: clipped-ratio loss against the rollout policy, + β·k3 KL to the
     frozen reference, gradient clipping, AdamW, schedule, DeepSeekMoE bias update after each step;
  6. metrics, sampled trace groups, status; every N steps the reference is refreshed and a checkpoint
     written.
"""
from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

import torch

from r1model.evaluate.score import trace_verdict
from r1model.generation.engine import RowGenerators
from r1model.rewards import compute_rewards
from r1model.generation.logprob_check import LogprobCheck, LogprobMismatch
from r1model.template import parse_completion
from r1model.train import checkpoint as ckpt
from r1model.train import modeling
from r1model.train.context import RunContext, TrainingFailed
from r1model.train.data import DataSource, step_seed
from r1model.train.distributed import save_checkpoint
from r1model.train.grpo import group_advantages, policy_loss, tis_weights, token_logprobs, zero_std_groups
from r1model.train.optim import make_optimizer, make_scheduler


def _has_entropies(completion) -> bool:
    return len(getattr(completion, "entropies", ())) == len(completion.token_ids)


def _chunks(rows: list[int], count: int, exact: bool) -> list[list[int]]:
    """rows in `count` consecutive minibatches as torch.chunk makes them (fewer when rows are few);
    `exact`: always `count` of them, some maybe empty (every rank takes the same number of optimizer steps)."""
    size = -(-len(rows) // count) if rows else 0
    chunks = [rows[i:i + size] for i in range(0, len(rows), size)] if rows else []
    return chunks + [[] for _ in range(count - len(chunks))] if exact else chunks


# update statistics that add up over the ranks (each rank weights its share by global counts)
_ADDITIVE = ("loss", "kl", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "entropy")


def _one_pass_logits(model, prompts, group: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logits (B, T, V) of right-padded completions `ids` (B, T), each after row group[b] of the left-padded
    prompt batch `prompts` ((P, Tp) ids, mask), from one forward of every prompt+completion: position
    Tp − 1 + j predicts completion token j. What encode_prefix + completion_logits compute, less the sharing."""
    prompt_ids, prompt_mask = prompts
    full = torch.cat([prompt_ids[group], ids], dim=1)
    attention = torch.cat([prompt_mask[group].to(mask.dtype), mask], dim=1)
    return model(full, attention_mask=attention).logits[:, prompt_ids.shape[1] - 1:-1]


def rollout_seeds(seed: int, step: int, first_prompt: int, prompts: int, group_size: int) -> list[int]:
    """The sampling seed of each rollout row: sample j of the step's prompt p (p: its index in the step's global
    batch) is seeded base + p·G + j. A prompt's samples depend on (seed, step, p) alone — the same whichever
    rank draws them and whatever else shares its batch (engine.RowGenerators), so N ranks sample what one
    process samples."""
    base = step_seed(seed, step, "sample") % (2**31)
    return [(base + (first_prompt + i) * group_size + j) % (2**31) for i in range(prompts) for j in range(group_size)]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


class GRPOTrainer:
    """GRPO on `model` in place. `reference` (a frozen copy of the starting policy) is needed when β > 0."""

    def __init__(self, ctx: RunContext, model, tokenizer, data: DataSource, reference=None, evaluate=None,
                 engine=None):
        self.ctx, self.model, self.tokenizer, self.data = ctx, model, tokenizer, data
        self.hp, self.sampling = ctx.config.grpo, ctx.config.sampling
        self.reference = reference if self.hp.beta > 0 else None
        if self.hp.beta > 0 and reference is None:
            raise ValueError("beta > 0 needs a reference model")
        self.evaluate = evaluate  # callable(step) or None: held-out evaluation hook
        updates_per_step = self.hp.num_iterations * self.hp.minibatches
        self.optimizer = make_optimizer(model, self.hp.learning_rate, self.hp.weight_decay, (self.hp.adam_beta1, self.hp.adam_beta2))
        self.scheduler = make_scheduler(
            self.optimizer, ctx.config.total_steps * updates_per_step, self.hp.warmup_steps * updates_per_step,
            self.hp.lr_schedule, self.hp.min_lr_ratio,
        )
        self.engine = engine if engine is not None else modeling.make_engine(
            model, tokenizer, self.sampling.engine, options=self.sampling, workdir=ctx.run_dir / "vllm", seed=ctx.config.seed)
        # an engine other than the trainer's own numerics: its logprobs are checked against the trainer's
        self.logprob_check = LogprobCheck(self.hp.logprob_check_interval, self.hp.logprob_max_diff,
                                          getattr(self.engine, "name", self.sampling.engine)) \
            if self.sampling.engine == "vllm" else None
        self.dist = ctx.dist
        self.stepper = self.dist.stepper(model, self.optimizer, self.hp.max_grad_norm)
        # ZeRO-3 partitions the weights, so every rank takes part in every forward and backward; it gathers a
        # layer's parameters once per use and reduces their gradients once per backward: the shared-prefix
        # update runs each layer twice in one backward (prompts, then completions), so under ZeRO-3 each
        # prompt+completion runs in one forward instead (_one_pass_logits; the same numbers)
        self.zero3 = self.dist.enabled and self.dist.settings.zero_stage == 3
        self.shared_prefix = not self.zero3
        self.start_step = 0
        self.pad = modeling.pad_id(tokenizer)

    # --- state ------------------------------------------------------------------------------------
    def resume(self, checkpoint: Path) -> None:
        state, torch_state = ckpt.restore_training_state(checkpoint, self.model, self.optimizer, self.scheduler)
        self.stepper.load(checkpoint)
        reference = torch_state["tensors"].get("reference")
        if reference is not None and self.reference is not None:
            self.reference.load_state_dict(reference)
        self.start_step = state["step"]

    def save(self, step: int) -> Path:
        config = self.ctx.config
        self.ctx.status("checkpointing", step, message=f"checkpoint step {step}")
        tensors = {}
        if self.reference is not None and self.hp.ref_refresh_interval:
            tensors["reference"] = self.reference.state_dict()
        return save_checkpoint(
            self.ctx, self.stepper, self.ctx.run_dir / "checkpoints", step, self.model, self.tokenizer,
            optimizer=None if self.dist.enabled else self.optimizer, scheduler=self.scheduler, state={"phase": "grpo", "data_cursor": step}, tensors=tensors,
            keep=config.keep_checkpoints, events=self.ctx.events,
        )

    # --- the loop ---------------------------------------------------------------------------------
    def run(self) -> bool:
        """All remaining steps; False when stopped by a signal (after a checkpoint)."""
        ctx, config = self.ctx, self.ctx.config
        total = config.total_steps
        ctx.progress.begin("grpo", self.start_step, total)
        ctx.status("grpo", self.start_step, message=f"grpo: step {self.start_step} of {total}")
        every = ctx.status_every(total)
        ev = config.evaluation
        for step in range(self.start_step + 1, total + 1):
            values = self.step(step)
            if step % config.log_interval == 0 or step == total:
                ctx.events.metric(step, values, phase="grpo")
            ctx.progress.update(step, {k: values[k] for k in ("reward", "accuracy", "completions/mean_length") if k in values})
            if step % every == 0 or step == total:
                ctx.status("grpo", step, eta_s=ctx.progress.eta(step))
            if self.evaluate is not None and ev.interval and step % ev.interval == 0 and step < total:
                self.evaluate(step)
            if ctx.should_stop():
                self.save(step)
                return False
            if (config.checkpoint_interval and step % config.checkpoint_interval == 0) or step == total:
                self.save(step)
        return True

    def step(self, step: int) -> dict[str, float]:
        ctx, config, hp = self.ctx, self.ctx.config, self.hp
        G = hp.group_size
        started, cpu_started = time.perf_counter(), time.process_time()

        # 1–2. prompts and G completions each (on N ranks: each rank its contiguous share of the prompts,
        # each prompt's samples seeded by its global index; rewards and metrics are gathered below)
        dist = self.dist
        all_problems = self.data.grpo_problems(step, hp.prompts_per_step)
        all_prompt_texts = [modeling.prompt_text(self.tokenizer, p.problem, config.template, config.prompt_format)
                            for p in all_problems]
        problems, prompt_texts = dist.shard(all_problems), dist.shard(all_prompt_texts)
        prompt_ids = [modeling.encode(self.tokenizer, text) for text in prompt_texts]
        rows_problem = [p for p in problems for _ in range(G)]
        rows_prompt = [ids for ids in prompt_ids for _ in range(G)]
        seeds = rollout_seeds(config.seed, step, dist.rank * len(problems) if dist.enabled else 0, len(problems), G)
        params = modeling.sampling_params(
            self.tokenizer, temperature=self.sampling.temperature, top_p=self.sampling.top_p, top_k=self.sampling.top_k,
            max_new_tokens=self.sampling.max_new_tokens, seed=seeds[0],
        )
        self.model.eval()
        with torch.no_grad(), ctx.autocast(), dist.gathered(self.model):
            modeling.sync_engine(self.engine, self.model)
            completions = self.engine.generate(rows_prompt, params, RowGenerators(seeds))
        t_generate = time.perf_counter() - started
        checked = self._check_logprobs(step, completions)

        # 3. rule-based rewards
        t0 = time.perf_counter()
        texts = [c.text for c in completions]
        truncated = [modeling.is_truncated(c) for c in completions]
        totals, components = compute_rewards(texts, rows_problem, config.reward_weights(step), truncated=truncated,
                                              truncated_is_wrong=config.truncated_is_wrong, options=config.reward_options(),
                                              lengths=[len(c.token_ids) for c in completions])  # Kimi: tokens
        t_score = time.perf_counter() - t0

        # 4. group advantages; groups with an unjudgeable sample are left out (counted, never scored)
        n_groups = len(problems)
        skipped_rows = [t is None for t in totals]
        skipped_group = torch.tensor([any(skipped_rows[g * G:(g + 1) * G]) for g in range(n_groups)])
        rewards = torch.tensor([t if t is not None else 0.0 for t in totals], dtype=torch.float32)
        advantages = group_advantages(rewards, G, hp.advantage_scaling)
        zero_std = zero_std_groups(rewards, G)
        keep_group = ~skipped_group
        if hp.drop_all_equal_groups:
            keep_group &= ~zero_std
        keep_rows = keep_group.repeat_interleave(G).nonzero().squeeze(1).tolist()

        # 5. the update
        t0 = time.perf_counter()
        any_kept = dist.sum(len(keep_rows)) > 0 if dist.enabled else bool(keep_rows)  # every rank updates, or none
        update = self._update(step, keep_rows, rows_prompt, completions, advantages) if any_kept else {}
        t_reference = update.pop("time/reference", 0.0)
        t_update = time.perf_counter() - t0 - t_reference
        if hp.ref_refresh_interval and self.reference is not None and step % hp.ref_refresh_interval == 0:
            with dist.gathered(self.model):
                self.reference.load_state_dict(self.model.state_dict())

        # 6. metrics and traces (of the whole batch: every rank's rows, in rank order)
        if dist.enabled:
            problems, prompt_texts = all_problems, all_prompt_texts
            parts = dist.gather((totals, components, completions, texts, truncated, advantages.tolist(),
                                 zero_std.tolist(), skipped_group.tolist(), keep_group.tolist()))
            totals, completions, texts, truncated = ([x for part in parts for x in part[i]] for i in (0, 2, 3, 4))
            components = {name: [x for part in parts for x in part[1][name]] for name in components}
            advantages = torch.tensor([x for part in parts for x in part[5]])
            zero_std, skipped_group, keep_group = (torch.tensor([x for part in parts for x in part[i]], dtype=torch.bool)
                                                   for i in (6, 7, 8))
        values = self._metrics(totals, components, completions, texts, truncated, zero_std, skipped_group, keep_group)
        values.update(update)
        values.update(checked)
        acceptance = getattr(getattr(self.engine, "last_stats", None), "extras", {}).get("acceptance")
        if acceptance is not None:  # the speculative engine's drafts
            values["rollout/draft_acceptance"] = acceptance
        if all(_has_entropies(c) for c in completions):  # the sampling policy's, over every sampled token
            values["entropy"] = sum(sum(c.entropies) for c in completions) / max(1, sum(len(c.token_ids) for c in completions))
        elapsed = time.perf_counter() - started
        values.update({
            "lr": self.scheduler.get_last_lr()[0],
            "time/generate": t_generate,
            "time/score": t_score,
            "time/reference": t_reference,
            "time/update": t_update,
            "time/step": elapsed,
            "time/cpu": time.process_time() - cpu_started,
            "throughput/tokens_per_s": sum(len(c.token_ids) for c in completions) / max(elapsed, 1e-9),
        })
        violation = modeling.moe_max_violation(self.model)
        if violation is not None:
            values["moe/max_violation"] = violation
        self._traces(step, problems, prompt_texts, texts, truncated, totals, components, advantages, completions)
        return values

    def _check_logprobs(self, step: int, completions) -> dict[str, float]:
        """rollout/logprob_diff at the first step and every K (r1model.generation.logprob_check); past
        grpo.logprob_max_diff the run fails."""
        if self.logprob_check is None:
            return {}

        def trainer_logprobs(prompts, tokens):
            self.model.eval()
            with torch.no_grad(), self.ctx.autocast():
                return modeling.completion_logprobs(self.model, prompts, tokens, self.pad, self.sampling.temperature)[0]

        try:
            return self.logprob_check(step, completions, trainer_logprobs)
        except LogprobMismatch as e:
            raise TrainingFailed(str(e)) from e

    # --- the update -------------------------------------------------------------------------------
    # Each prompt runs through the model once per minibatch and its G completions attend to that one copy
    # (DeepSeekV3.encode_prefix / completion_logits, completions packed without padding): the same
    # log-probabilities and gradients as a forward of every prompt+completion, with the prompt's tokens
    # computed once instead of G times. A minibatch too big for memory runs as micro-batches of at most
    # grpo.micro_batch_size completions, each with its own prompts' forward and its own backward.
    def _completion_batch(self, rows: list[int], completions) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded completion ids (B, T) and their mask (B, T) float, 1 on real tokens."""
        width = max(len(completions[i].token_ids) for i in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.float32)
        for r, i in enumerate(rows):
            tokens = completions[i].token_ids
            ids[r, : len(tokens)] = torch.tensor(tokens)
            mask[r, : len(tokens)] = 1.0
        return ids.to(self.ctx.device), mask.to(self.ctx.device)

    def _micro_batches(self, rows: list[int], rows_prompt, completions):
        """(prompt batch, [(rows, prompt rows, group index, completion ids, mask)]) of one minibatch: the prompt
        batch holds each distinct prompt once, in row order. The completions run in one micro-batch (the model
        packs their real tokens, so no length bucketing), or, with grpo.micro_batch_size, in consecutive runs of
        at most that many; a micro-batch's prompt rows are the prompt batch's rows it uses (None: all), and
        its group index points into them."""
        slot: dict[tuple[int, ...], int] = {}  # each distinct prompt once (a group's G rows share theirs)
        for i in rows:
            slot.setdefault(tuple(rows_prompt[i]), len(slot))
        prompts = modeling.left_pad([list(p) for p in slot], self.pad, self.ctx.device)
        size = self.hp.micro_batch_size or len(rows)
        micros = []
        for start in range(0, len(rows), size):
            micro = rows[start:start + size]
            slots = [slot[tuple(rows_prompt[i])] for i in micro]
            used = None if size >= len(rows) else sorted(set(slots))
            index = slots if used is None else [used.index(s) for s in slots]
            micros.append((micro, used, torch.tensor(index, device=self.ctx.device), *self._completion_batch(micro, completions)))
        return prompts, micros

    def _logprobs(self, model, prefix, group, ids, mask):
        with self.ctx.autocast():  # (B, T, V): logits[:, j] predicts ids[:, j]
            logits = (model.completion_logits(prefix, group, ids, mask) if self.shared_prefix
                      else _one_pass_logits(model, prefix, group, ids, mask))
        return token_logprobs(logits, ids, self.sampling.temperature)

    def _count_prompts_once(self, prompts, group: torch.Tensor) -> None:
        """The one-pass forward (ZeRO-3) routes a prompt once per completion row; the shared-prefix forward once.
        Take the repeats out of the experts' token counts, so the DeepSeekMoE routing-bias update sees what it
        sees on one process: a prompt's tokens route the same in every copy (causal attention, the same left
        padding), so a train-mode forward of the repeated copies alone adds exactly what is taken out. Every
        rank runs that forward once per micro-batch (ZeRO-3 gathers the weights in collectives all ranks enter):
        one with no repeated prompt runs a prompt in eval mode, which counts nothing."""
        if not callable(getattr(self.model, "moe_layers", None)):
            return
        gates = [moe.gate for _, moe in self.model.moe_layers()]
        if not gates:
            return
        ids, mask = prompts
        repeats = (torch.bincount(group, minlength=len(ids)) - 1).clamp(min=0)
        rows = torch.repeat_interleave(torch.arange(len(ids), device=ids.device), repeats)
        counting = len(rows) > 0
        if not counting:
            rows = rows.new_zeros(1)
        before = [gate.tokens_per_expert.clone() for gate in gates]
        was_training = self.model.training
        self.model.train(counting)
        try:
            with torch.no_grad(), self.ctx.autocast():
                self.model(ids[rows], attention_mask=mask[rows])
        finally:
            self.model.train(was_training)
        if counting:
            for gate, counts in zip(gates, before):
                gate.tokens_per_expert.copy_(2 * counts - gate.tokens_per_expert)

    def _encode(self, model, prompts):
        if not self.shared_prefix:  # the prompts run with their completions (_one_pass_logits)
            return prompts
        with self.ctx.autocast():
            return model.encode_prefix(*prompts)

    @staticmethod
    def _prompt_rows(prompts, used):
        """The left-padded prompt batch's rows `used` (None: all), less the columns only padding fills."""
        if used is None:
            return prompts
        ids, mask = (x[used] for x in prompts)
        width = int(mask.sum(1).max())
        return ids[:, -width:], mask[:, -width:]

    def _update(self, step: int, rows: list[int], rows_prompt, completions, all_advantages) -> dict[str, float]:
        """μ epochs over minibatches; one optimizer step per minibatch.

        With β = 0 a completion whose advantage is exactly 0 (e.g. every one of a group whose rewards are
        all equal) adds exactly nothing to the gradient: min(ρ·0, clip(ρ)·0) = 0 whatever ρ is. Such rows
        skip the forward and backward (when the engine reported the entropy metric, which needs them
        otherwise, and not under ZeRO-3, where a rank left without rows would stall the others in their
        collectives); they still count in the loss's normaliser, so the update is the same as with them.
        """
        hp, ctx, dist = self.hp, self.ctx, self.dist
        on_policy = hp.num_iterations == 1 and hp.minibatches == 1
        skip_zero = (hp.beta == 0 and not self.zero3
                     and dist.sum(not all(_has_entropies(completions[i]) for i in rows)) == 0)
        needs_grad = (lambda i: bool(all_advantages[i] != 0)) if skip_zero else (lambda i: True)  # noqa: E731
        old_logp: dict[int, torch.Tensor] = {}  # row → log π_old of its completion tokens (1-D)
        ref_logp: dict[int, torch.Tensor] = {}
        t_ref = 0.0
        passes = ([] if on_policy else [(self.model, old_logp)]) + ([(self.reference, ref_logp)] if self.reference is not None else [])
        with torch.no_grad():
            for chunk in _chunks(rows, hp.minibatches, dist.enabled):
                active = [i for i in chunk if needs_grad(i)]
                if not active or not passes:
                    continue
                prompts, micros = self._micro_batches(active, rows_prompt, completions)
                for model, store in passes:  # π_old (the policy that sampled, before any update of this step), π_ref
                    t0 = time.perf_counter()
                    model.eval()
                    for micro, used, group, ids, mask in micros:
                        prefix = self._encode(model, self._prompt_rows(prompts, used))
                        logp = self._logprobs(model, prefix, group, ids, mask)[0]
                        store.update({i: logp[j][mask[j].bool()] for j, i in enumerate(micro)})
                    if model is self.reference:
                        t_ref += time.perf_counter() - t0
        self.model.train()
        shuffle = torch.Generator().manual_seed(step_seed(ctx.config.seed, step, "shuffle"))
        stats, grad_norms, entropies, loss_value = [], [], [], 0.0
        tis_sum = tis_capped = tis_tokens = 0.0
        world = self.stepper.world
        for _ in range(hp.num_iterations):
            order = [rows[k] for k in torch.randperm(len(rows), generator=shuffle).tolist()] if hp.minibatches > 1 else rows
            for chunk in _chunks(order, hp.minibatches, dist.enabled):
                active = [i for i in chunk if needs_grad(i)]
                # the minibatch's tokens and sequences over every rank (DeepSpeed averages the ranks' gradients)
                total_tokens = dist.sum(sum(len(completions[i].token_ids) for i in chunk))
                total_rows = dist.sum(len(chunk))
                self.stepper.zero_grad()
                step_loss, step_stats, step_entropy = 0.0, [0.0] * 5, 0.0
                prompts, micros = self._micro_batches(active, rows_prompt, completions) if active else (None, [])
                # every rank runs as many backwards (ZeRO's reductions are collectives): one, or with
                # micro-batches the most any rank has, the ranks with fewer adding empty ones
                backwards = max(1, *dist.gather(len(micros))) if hp.micro_batch_size else 1
                for index in range(backwards):
                    if index >= len(micros):
                        self.stepper.backward(None, last=index == backwards - 1)
                        continue
                    micro, used, group, ids, mask = micros[index]
                    prefix = self._encode(self.model, self._prompt_rows(prompts, used))
                    if not self.shared_prefix:
                        self._count_prompts_once(prefix, group)
                    keep = mask.bool()
                    logp, entropy = self._logprobs(self.model, prefix, group, ids, mask)
                    old = logp.detach().clone() if on_policy else torch.zeros_like(logp)
                    if not on_policy:
                        old[keep] = torch.cat([old_logp[i] for i in micro])
                    ref = None
                    if self.reference is not None:
                        ref = torch.zeros_like(logp)
                        ref[keep] = torch.cat([ref_logp[i] for i in micro])
                    is_weight = None
                    if hp.tis_cap > 0:  # truncated importance sampling: π_old(trainer) / π_engine, capped
                        engine_logp = torch.zeros_like(old)
                        engine_logp[keep] = torch.tensor([x for i in micro for x in completions[i].logprobs],
                                                         dtype=old.dtype, device=old.device)
                        is_weight = tis_weights(old, engine_logp, mask, hp.tis_cap)
                        tis_sum += float((is_weight * mask).sum())
                        tis_capped += float(((is_weight >= hp.tis_cap) * mask).sum())
                        tis_tokens += float(mask.sum())
                    loss, stat = policy_loss(
                        logp, old, all_advantages[micro].to(ctx.device), mask,
                        epsilon_low=hp.epsilon_low, epsilon_high=hp.epsilon_high, beta=hp.beta, ref_logp=ref,
                        aggregation=hp.loss_aggregation, max_new_tokens=self.sampling.max_new_tokens, is_weight=is_weight,
                    )
                    if not torch.isfinite(loss):
                        raise TrainingFailed(f"GRPO loss is {loss.item()} at step {step}")
                    tokens = float(mask.sum())
                    # the minibatch's loss is the micro-batches' in proportion: sequences (grpo, dr_grpo)
                    # or tokens (dapo) of the whole minibatch — the same number as one padded forward would give
                    share = tokens / max(1.0, total_tokens) if hp.loss_aggregation == "dapo" else len(micro) / total_rows
                    self.stepper.backward(loss * (share * world), last=index == backwards - 1)
                    step_loss += float(loss.detach()) * share
                    weight = tokens / max(1.0, total_tokens)
                    for k, value in enumerate((stat.kl, stat.clip_low, stat.clip_high, stat.clip_region, stat.ratio_mean)):
                        step_stats[k] += value * weight
                    step_entropy += float((entropy * mask).sum()) / max(1.0, total_tokens)
                self.stepper.fill_missing_grads()

                def finite(grad_norm, step=step):
                    if not torch.isfinite(grad_norm):
                        raise TrainingFailed(f"gradient norm is {grad_norm.item()} at step {step}")

                grad_norm = self.stepper.step(finite)
                self.scheduler.step()
                dist.sum_expert_loads(self.model)
                modeling.after_optimizer_step(self.model)
                entropies.append(step_entropy)
                stats.append(step_stats)
                grad_norms.append(float(grad_norm))
                loss_value = step_loss
        values = {
            "loss": loss_value,
            "grad_norm": statistics.fmean(grad_norms),
            "kl": statistics.fmean(s[0] for s in stats),
            "clip_ratio/low_mean": statistics.fmean(s[1] for s in stats),
            "clip_ratio/high_mean": statistics.fmean(s[2] for s in stats),
            "clip_ratio/region_mean": statistics.fmean(s[3] for s in stats),
            "time/reference": t_ref,
        }
        if not skip_zero:
            values["entropy"] = statistics.fmean(entropies)
        if tis_tokens:
            values["rollout/tis_weight_mean"] = tis_sum / tis_tokens
            values["rollout/tis_capped"] = tis_capped / tis_tokens
        if dist.enabled:  # each rank's share was weighted by the global counts: the ranks' values add up
            for key in _ADDITIVE:
                if key in values:
                    values[key] = dist.sum(values[key])
        return values

    def _metrics(self, totals, components, completions, texts, truncated, zero_std, skipped_group, keep_group) -> dict[str, float]:
        G = self.hp.group_size
        judged = [t for t in totals if t is not None]
        group_stds = []
        for g in range(len(totals) // G):
            group = [t for t in totals[g * G:(g + 1) * G] if t is not None]
            if len(group) > 1:
                group_stds.append(statistics.stdev(group))
        lengths = [float(len(c.token_ids)) for c in completions]
        parsed = [parse_completion(t, truncated=cut) for t, cut in zip(texts, truncated)]
        accuracy = components.get("accuracy")
        values = {
            "reward": statistics.fmean(judged) if judged else 0.0,
            "reward_std": statistics.fmean(group_stds) if group_stds else 0.0,
            "format_rate": sum(1 for p in parsed if p.well_formed) / len(parsed),
            "completions/mean_length": statistics.fmean(lengths),
            "completions/min_length": min(lengths),
            "completions/p10_length": _percentile(lengths, 0.1),
            "completions/p50_length": _percentile(lengths, 0.5),
            "completions/p90_length": _percentile(lengths, 0.9),
            "completions/max_length": max(lengths),
            "completions/think_length": statistics.fmean(len(p.think or "") for p in parsed),
            "completions/truncated_ratio": sum(truncated) / len(truncated),
            "frac_reward_zero_std": float(zero_std.float().mean()),
            "groups/kept": float(keep_group.sum()),
            "rewards/skipped_ratio": (len(totals) - len(judged)) / len(totals),
        }
        if accuracy is not None:
            judged_acc = [r for r in accuracy if r.value is not None]
            values["accuracy"] = sum(1 for r in judged_acc if r.status == "correct") / max(1, len(judged_acc))
        for name, results in components.items():
            vals = [r.value for r in results if r.value is not None]
            values[f"rewards/{name}/mean"] = statistics.fmean(vals) if vals else 0.0
            values[f"rewards/{name}/std"] = statistics.pstdev(vals) if len(vals) > 1 else 0.0
        return values

    def _traces(self, step, problems, prompt_texts, texts, truncated, totals, components, advantages, completions):
        count = min(self.ctx.config.traces_per_step, len(problems))
        if count == 0:
            return
        G = self.hp.group_size
        groups = random.Random(step_seed(self.ctx.config.seed, step, "traces")).sample(range(len(problems)), count)
        events = self.ctx.events
        with events.batch():
            for g in sorted(groups):
                for i in range(g * G, (g + 1) * G):
                    parsed = parse_completion(texts[i], truncated=truncated[i])
                    accuracy = components.get("accuracy")
                    status = accuracy[i].status if accuracy is not None else ("correct" if (totals[i] or 0) > 0 else "wrong")
                    status, correct = trace_verdict(status)
                    events.trace(
                        step, f"{step}-{g}", prompt_texts[g], texts[i], parsed.think, parsed.answer,
                        {name: results[i].value for name, results in components.items()},
                        totals[i], float(advantages[i]), correct, status, len(completions[i].token_ids), truncated[i],
                        prompt_id=problems[g].id, source="train",
                        gold=problems[g].answer,
                    )
