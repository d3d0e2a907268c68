"""Pretraining and SFT: next-token cross-entropy on the completion only (prompt tokens carry no loss).

This is how the lab makes its base models: a task corpus where worked solutions (inside <think>) and
direct answers (empty think) both appear, so the base can reason but prefers not to — R1-Zero's start.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from r1model.train import checkpoint as ckpt
from r1model.train import modeling
from r1model.train.context import RunContext, TrainingFailed
from r1model.train.data import DataSource
from r1model.train.distributed import save_checkpoint
from r1model.train.optim import make_optimizer, make_scheduler

IGNORE = -100


def tokenize_pairs(pairs: list[tuple[str, str]], tokenizer, template: str, max_len: int, completion_only: bool,
                   prompt_format: str = "plain"):
    """[(ids, labels)]: prompt rendered with the template (as text, or in the model's chat template: see
    modeling.prompt_text), completion + end-of-sequence; labels are -100 on the prompt when completion_only."""
    eos = modeling.eos_id(tokenizer)
    out = []
    for problem_text, completion in pairs:
        prompt = modeling.encode(tokenizer, modeling.prompt_text(tokenizer, problem_text, template, prompt_format))
        answer = modeling.encode(tokenizer, completion) + [eos]
        ids = (prompt + answer)[:max_len]
        labels = ([IGNORE] * len(prompt) if completion_only else prompt) + answer
        out.append((ids, labels[: len(ids)]))
    return out


def length_buckets(rows: list, length=lambda row: len(row[0])) -> list[list]:
    """Split a batch into at most two micro-batches of similar lengths so that short direct answers are
    not padded to the length of worked solutions (the split point minimises the padded area).
    `length(row)` gives a row's padded length (default: its token ids, row[0])."""
    rows = sorted(rows, key=length)
    lengths = [length(r) for r in rows]
    n = len(rows)
    whole = n * lengths[-1]
    best_cut, best_area = n, whole
    for cut in range(max(1, n // 8), n - max(1, n // 8) + 1):
        area = cut * lengths[cut - 1] + (n - cut) * lengths[-1]
        if area < best_area:
            best_cut, best_area = cut, area
    # a second forward costs overhead: split only when it saves a good share of the padded area
    return [rows[:best_cut], rows[best_cut:]] if best_area < 0.85 * whole else [rows]


def micro_batches(rows: list, count: int) -> list[list]:
    """`count` micro-batches of a rank's rows, in order (every rank runs the same number of backwards: ZeRO
    reduces gradients in collectives; RunConfig checks that ranks × count divides the batch)."""
    size = -(-len(rows) // count)
    return [rows[i * size:(i + 1) * size] for i in range(count) if rows[i * size:(i + 1) * size]]


def pad_rows(rows: list[tuple[list[int], list[int]]], tokenizer, device):
    """(input_ids, attention_mask, labels), right-padded (labels -100 on padding)."""
    pad = modeling.pad_id(tokenizer)
    label_rows = [lab for _, lab in rows]
    rows = [ids for ids, _ in rows]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, lab) in enumerate(zip(rows, label_rows)):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(lab)] = torch.tensor(lab)
        mask[i, : len(ids)] = 1
    return input_ids.to(device), mask.to(device), labels.to(device)


def train_supervised(
    ctx: RunContext,
    model,
    tokenizer,
    data: DataSource,
    *,
    steps: int,
    phase: str,
    checkpoint_dir: Path,
    worked_fraction: float | None = None,
    resume_from: Path | None = None,
    checkpoint_interval: int = 0,
    evaluate=None,
    schedule_steps: int | None = None,
    stop=None,
) -> bool:
    """Train `model` in place for `steps` optimizer steps. Returns False when stopped by a signal (a
    checkpoint was written), True when all steps are done. `evaluate(step)` runs every
    evaluation.interval steps when given. The learning rate follows a schedule of `schedule_steps` (default
    `steps`; past it the schedule's last rate). `stop(step)` -> True ends the training at that step (a
    checkpoint marked `stopped_early` is written: base_probe)."""
    config, hp, events = ctx.config, ctx.config.supervised, ctx.events
    worked = hp.worked_fraction if worked_fraction is None else worked_fraction
    optimizer = make_optimizer(model, hp.learning_rate, hp.weight_decay, betas=(0.9, 0.95))
    scheduler = make_scheduler(optimizer, schedule_steps or steps, hp.warmup_steps, hp.lr_schedule, hp.min_lr_ratio)
    dist = ctx.dist
    stepper = dist.stepper(model, optimizer, hp.max_grad_norm)  # plain torch, or this rank's DeepSpeed engine
    start = 0
    if resume_from is not None:
        state, _ = ckpt.restore_training_state(resume_from, model, optimizer, scheduler)
        stepper.load(resume_from)
        start = state["step"]

    def save(step: int, **extra) -> Path:
        ctx.status("checkpointing", step, message=f"{phase} checkpoint step {step}")
        return save_checkpoint(
            ctx, stepper, checkpoint_dir, step, model, tokenizer,
            optimizer=None if dist.enabled else optimizer, scheduler=scheduler,
            state={"phase": phase, "data_cursor": step, **extra}, keep=config.keep_checkpoints, events=events,
        )

    ctx.progress.begin(phase, start, steps)
    ctx.status(phase, start, message=f"{phase}: step {start} of {steps}")
    model.train()
    every = ctx.status_every(steps)
    interval = checkpoint_interval
    model_has_mtp = bool(getattr(getattr(model, "config", None), "num_nextn_predict_layers", 0))
    for step in range(start + 1, steps + 1):
        t0, cpu0 = time.perf_counter(), time.process_time()
        pairs = dist.shard(data.supervised_pairs(step, hp.batch_size, worked, purpose=phase))
        rows = tokenize_pairs(pairs, tokenizer, config.template, hp.max_seq_len, hp.completion_only_loss,
                              config.prompt_format)
        buckets = micro_batches(rows, dist.settings.gradient_accumulation_steps) if dist.enabled else length_buckets(rows)
        # token-weighted mean over the global batch (every rank's rows): DeepSpeed averages the ranks'
        # gradients, so each rank's loss is scaled by the world size
        target_tokens = dist.sum(sum(sum(1 for t in lab[1:] if t != IGNORE) for _, lab in rows))
        stepper.zero_grad()
        sums = {"loss": 0.0, "lm_loss": 0.0, "mtp_loss": 0.0, "aux_loss": 0.0}
        trained_tokens = 0
        for index, bucket in enumerate(buckets):
            input_ids, mask, labels = pad_rows(bucket, tokenizer, ctx.device)
            share = float((labels[:, 1:] != IGNORE).sum()) / max(1, target_tokens)  # token-weighted mean
            with ctx.autocast():
                out = modeling.forward(stepper.module, input_ids, mask, labels=labels)
            if not torch.isfinite(out.loss):
                raise TrainingFailed(f"{phase} loss is {out.loss.item()} at step {step}")
            stepper.backward(out.loss * (share * stepper.world), last=index == len(buckets) - 1)
            trained_tokens += int(mask.sum())
            for name in sums:
                value = getattr(out, name, None)
                if value is not None:
                    sums[name] += float(value.detach()) * share
        if dist.enabled:
            sums = {name: dist.sum(value) for name, value in sums.items()}
            trained_tokens = int(dist.sum(trained_tokens))
        grad_norm = stepper.step()
        scheduler.step()
        dist.sum_expert_loads(model)
        modeling.after_optimizer_step(model)
        elapsed = time.perf_counter() - t0
        values = {
            "train/loss": sums["lm_loss"],
            "train/grad_norm": float(grad_norm),
            "train/lr": scheduler.get_last_lr()[0],
            "train/tokens_per_s": trained_tokens / max(elapsed, 1e-9),
            "train/aux_loss": sums["aux_loss"],
            "time/train_cpu": time.process_time() - cpu0,
        }
        if model_has_mtp:
            values["train/mtp_loss"] = sums["mtp_loss"]
        violation = modeling.moe_max_violation(model)
        if violation is not None:
            values["train/moe/max_violation"] = violation
        if step % config.log_interval == 0 or step == steps:
            events.metric(step, values, phase=phase)
        ctx.progress.update(step, values)
        if step % every == 0 or step == steps:
            ctx.status(phase, step, eta_s=ctx.progress.eta(step))
        if evaluate is not None and config.evaluation.interval and step % config.evaluation.interval == 0 and step < steps:
            evaluate(step)
        if stop is not None and stop(step) and step < steps:  # the cap's probe is logged, the base ends anyway
            save(step, stopped_early=True)
            return True
        if ctx.should_stop():
            save(step)
            return False
        if (interval and step % interval == 0) or step == steps:
            save(step)
    return True
