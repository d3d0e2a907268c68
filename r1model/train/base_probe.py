"""A measured base budget (config.base.probe): sample the base while it pretrains, stop when it is right often enough.

The RL gain of aha-mini is set by the base's sampled skill (held-out pass@1 at the RL's temperature, the weak-base
chain's probe; bench/RESULTS.md): a fixed step budget leaves some seeds below it. The probe samples the base at
`first`, then every `interval` steps, and the base stops at the first probe that reaches `min_accuracy`; with none,
it pretrains on up to `steps` + `extra_steps` (the cap). Each probe is a `metric` event of the pretrain phase
(probe/pass@1, probe/worked_ratio, probe/worked_pass) and a log line.
"""
from __future__ import annotations

import dataclasses

import torch

from r1model.evaluate.runner import score_generations
from r1model.template import parse_completion
from r1model.train import modeling
from r1model.train.config import BaseProbe
from r1model.train.data import step_seed
from r1model.train.evaluation import EVAL_CHUNK


def probe_budget(steps: int, probe: BaseProbe | None) -> int:
    """The most steps the base may pretrain: `steps`, or the cap with a probe."""
    return steps + (probe.extra_steps if probe is not None else 0)


def is_probe_step(step: int, steps: int, probe: BaseProbe) -> bool:
    """Probes at `first` (default `steps`), then every `interval` steps, and at the cap."""
    first = probe.first if probe.first is not None else steps
    cap = probe_budget(steps, probe)
    return step == cap or (first <= step <= cap and (step - first) % probe.interval == 0)


def passes(values: dict[str, float], probe: BaseProbe) -> bool:
    """The stop rule: the probe's sampled pass@1 reaches min_accuracy."""
    return values["pass@1"] >= probe.min_accuracy


def run_probe(ctx, model, tokenizer, engine, problems, step: int, probe: BaseProbe) -> dict[str, float]:
    """Sample `problems` × samples_per_problem at the probe's temperature; {pass@1, worked_ratio, worked_pass}
    (worked_pass: share of samples that work the digits in <think> and are right)."""
    config = ctx.config
    k = probe.samples_per_problem
    prompts = [modeling.encode(tokenizer, modeling.prompt_text(tokenizer, p.problem, config.template,
                                                                config.prompt_format))
               for p in problems for _ in range(k)]
    params = modeling.sampling_params(tokenizer, temperature=probe.temperature, top_p=1.0, top_k=0,
                                      max_new_tokens=probe.max_new_tokens,
                                      seed=step_seed(config.seed, step, "base-probe") % (2**31))
    was_training = model.training
    model.eval()
    with torch.no_grad(), ctx.autocast():
        modeling.sync_engine(engine, model)
        completions = []
        for start in range(0, len(prompts), EVAL_CHUNK):
            completions.extend(engine.generate(prompts[start:start + EVAL_CHUNK],
                                               dataclasses.replace(params, seed=params.seed + start)))
    if was_training:
        model.train()
    result = score_generations(problems, completions, k, benchmark="base-probe",
                               truncated_is_wrong=config.truncated_is_wrong)
    samples = [s for row in result.problems for s in row["samples"]]
    worked_pass = sum(1 for s in samples if s["status"] == "correct"
                      and parse_completion(s["completion"], truncated=s["truncated"]).think.strip()) / max(1, len(samples))
    return {"pass@1": float(result.summary["pass@1"]), "worked_ratio": float(result.summary["worked_ratio"]),
            "worked_pass": worked_pass}


def make_stop_check(ctx, model, tokenizer, data, steps: int, probe: BaseProbe):
    """stop(step) -> True when the base should stop at `step` (a probe there passed); probes write their events."""
    problems = data.probe_problems(probe.problems)
    engine = modeling.make_engine(model, tokenizer)

    def stop(step: int) -> bool:
        if not is_probe_step(step, steps, probe):
            return False
        ctx.status("eval", step, message=f"probing the base at step {step}")
        with ctx.dist.gathered(model):  # every rank probes the same problems alike and takes the same decision
            values = run_probe(ctx, model, tokenizer, engine, problems, step, probe)
        passed = passes(values, probe)
        ctx.events.metric(step, {f"probe/{name}": value for name, value in values.items()}, phase="pretrain")
        verdict = (f"≥ {probe.min_accuracy:g}: the base stops here" if passed else
                   f"< {probe.min_accuracy:g}" + (": cap reached, the base stops here"
                                                  if step >= probe_budget(steps, probe) else ""))
        ctx.events.log(f"base probe at step {step}: sampled pass@1 {values['pass@1']:.3f} (worked "
                       f"{values['worked_ratio']:.2f}, worked and right {values['worked_pass']:.3f}) {verdict}")
        ctx.progress.message(f"base probe step {step}: pass@1 {values['pass@1']:.3f} {verdict}")
        return passed

    return stop
