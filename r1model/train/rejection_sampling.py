"""kind = rejection_sampling (R1 §2.3.3): sample G completions per problem and score them, without training. Writes every sample to <run_dir>/rollouts.jsonl and as trace events, and the
samples the checker accepted (status correct, each text once per problem) to <run_dir>/accepted.jsonl:
{id, problem, answer, prompt, completion, reward} rows, an SFT dataset as it is (the `distill` recipe)."""
from __future__ import annotations

import json
import statistics

import torch

from r1model.evaluate.score import trace_verdict
from r1model.rewards import compute_rewards
from r1model.template import parse_completion
from r1model.train import modeling
from r1model.train.context import RunContext
from r1model.train.data import DataSource, step_seed


def run_rejection_sampling(ctx: RunContext, model, tokenizer, engine, data: DataSource) -> bool:
    config, hp, sampling, events = ctx.config, ctx.config.grpo, ctx.config.sampling, ctx.events
    total = config.total_steps
    out_path = ctx.run_dir / "rollouts.jsonl"
    model.eval()
    ctx.progress.begin("rejection_sampling", 0, total)
    seen: set[tuple[str, str]] = set()
    with out_path.open("w", encoding="utf-8") as out, (ctx.run_dir / "accepted.jsonl").open("w", encoding="utf-8") as kept:
        for step in range(1, total + 1):
            problems = data.grpo_problems(step, hp.prompts_per_step)
            rows = [p for p in problems for _ in range(hp.group_size)]
            prompts = [modeling.prompt_text(tokenizer, p.problem, config.template, config.prompt_format) for p in rows]
            params = modeling.sampling_params(
                tokenizer, temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k,
                max_new_tokens=sampling.max_new_tokens, seed=step_seed(config.seed, step, "sample") % (2**31),
            )
            with torch.no_grad(), ctx.autocast():
                completions = engine.generate([modeling.encode(tokenizer, p) for p in prompts], params)
            texts = [c.text for c in completions]
            truncated = [modeling.is_truncated(c) for c in completions]
            totals, components = compute_rewards(texts, rows, config.reward_weights(), truncated=truncated,
                                                  truncated_is_wrong=config.truncated_is_wrong,
                                                  options=config.reward_options(),
                                                  lengths=[len(c.token_ids) for c in completions])
            accepted_before = len(seen)
            with events.batch():
                for i, (problem, text) in enumerate(zip(rows, texts)):
                    parsed = parse_completion(text, truncated=truncated[i])
                    status, correct = trace_verdict(components["accuracy"][i].status if "accuracy" in components
                                                    else "skipped")
                    rewards = {name: results[i].value for name, results in components.items()}
                    out.write(json.dumps({"id": problem.id, "problem": problem.problem, "answer": problem.answer,
                                          "prompt": prompts[i], "completion": text, "reward": totals[i],
                                          "rewards": rewards, "status": status, "truncated": truncated[i],
                                          "tokens": len(completions[i].token_ids)}) + "\n")
                    if status == "correct" and (problem.id, text) not in seen:
                        seen.add((problem.id, text))
                        kept.write(json.dumps({"id": f"{problem.id}-{len(seen) - 1}", "problem": problem.problem,
                                               "answer": problem.answer, "prompt": prompts[i], "completion": text,
                                               "reward": totals[i]}) + "\n")
                    events.trace(step, f"{step}-{i // hp.group_size}", prompts[i], text, parsed.think, parsed.answer,
                                 rewards, totals[i], None, correct,
                                 status, len(completions[i].token_ids), truncated[i], prompt_id=problem.id,
                                 source="rejection_sampling")
                judged = [t for t in totals if t is not None]
                accepted = len(seen) - accepted_before
                values = {
                    "reward": statistics.fmean(judged) if judged else 0.0,
                    "completions/mean_length": statistics.fmean(len(c.token_ids) for c in completions),
                    "completions/truncated_ratio": sum(truncated) / len(truncated),
                    "rejection/accepted": float(accepted),
                    "rejection/acceptance_rate": accepted / len(completions),
                    "rejection/accepted_total": float(len(seen)),
                }
                if "accuracy" in components:
                    judged_acc = [r for r in components["accuracy"] if r.value is not None]
                    values["accuracy"] = sum(r.status == "correct" for r in judged_acc) / max(1, len(judged_acc))
                events.metric(step, values, phase="rejection_sampling")
            out.flush()
            kept.flush()
            ctx.progress.update(step, {})
            if ctx.stop:
                return False
    return True
