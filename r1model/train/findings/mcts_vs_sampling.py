"""mcts-vs-sampling: DeepSeek-R1 §4.2 ("Unsuccessful attempts", Monte Carlo tree search) in miniature.

    python -m r1model recipe run mcts-vs-sampling --run-dir DIR [--quick] [--seed N] [--set search:KEY=V]

Stages: `base` pretrains the tiny preset on worked additions (every think written one line per digit, so a
step is a line); `search` (this module's builder, run_search) then, from the base checkpoint:
  1. samples the base on training problems and trains a value model (r1model.model.value: the base's body with
     a scalar head) to predict a completion's final correctness from every line-prefix of it;
  2. per problem size (digits = steps), on held-out problems, at the same budget of generated tokens per
     problem: step-level MCTS (r1model.generation.mcts, guided by that value model) vs best-of-N sampling
     ranked by the same value model vs majority vote over the same samples vs one plain sample; the value
     model's error on the held-out samples' prefixes; the trees' size.
Its data.jsonl holds one row per problem and method, its summary.json the aggregates; `summarise` writes
comparison.json in the general shape (r1model.train.chains).

Search settings (`--set search:KEY=V`): digits (problem sizes), problems (per size), token_budget (generated
tokens per problem, every method), snapshots (budget fractions for the accuracy-vs-tokens curve), temperature,
mcts.branching / mcts.max_depth / mcts.max_step_tokens / mcts.c_puct, value.problems / value.samples /
value.steps / value.batch_size / value.learning_rate. A tree whose one root-to-answer path may cost more than
token_budget (branching × max_depth × max_step_tokens) is refused before any stage runs, naming the fields.

Imports without torch (the findings registry is read by the lab); run_search imports it.
"""
from __future__ import annotations

import copy
import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

from r1model.train.chains import Builder, Chain, From, Stage

FINDING = ("Step-level Monte Carlo tree search guided by a learned value model does not beat plain sampling at "
           "equal generated tokens: the token space is far larger than a board game's, a per-node extension limit "
           "traps the search in local optima, and the value model is hard to train (DeepSeek-R1 §4.2).")
MARGIN = 0.02  # accuracy points MCTS may be above the best sampling method and still count as "not better"
TOKEN_SLACK = 1.10  # MCTS spending more than this × sampling's tokens is no longer an equal-token comparison
RULE = (f"Reproduced when MCTS's accuracy at the token budget is not better than the better of best-of-N "
        f"(value-model ranker) and majority vote over samples of the same total tokens: MCTS − best ≤ {MARGIN:.2f}; "
        f"not reproduced when MCTS is more than {MARGIN:.2f} better. Inconclusive when an accuracy is missing, "
        f"when no method solves any problem or every method solves all, or when MCTS spent more than "
        f"{TOKEN_SLACK:.2f}× sampling's tokens.")
METHODS = ("mcts", "best_of_n_value", "majority", "sampling")
LABELS = {"mcts": "MCTS (value-guided)", "best_of_n_value": "best-of-N (value ranker)",
          "majority": "majority vote", "sampling": "one sample"}
BASE_STEPS, QUICK_BASE_STEPS = 500, 30

DEFAULTS: dict[str, Any] = {
    "digits": [2, 3, 4],  # problem sizes: an n-digit sum's worked think is n lines (steps)
    "problems": 48,  # held-out problems per size
    "token_budget": 480,  # generated tokens per problem, for every method
    "snapshots": [0.25, 0.5, 1.0],  # the curve's budgets, as fractions of token_budget
    "temperature": 1.0,
    "mcts": {"branching": 4, "max_depth": 5, "max_step_tokens": 20, "c_puct": 1.0},
    "value": {"problems": 256, "samples": 4, "steps": 150, "batch_size": 32, "learning_rate": 1e-3},
}
QUICK: dict[str, Any] = {
    "digits": [1, 2], "problems": 4, "token_budget": 96, "snapshots": [0.5, 1.0],
    "mcts": {"branching": 2, "max_depth": 3, "max_step_tokens": 16},
    "value": {"problems": 8, "samples": 2, "steps": 4, "batch_size": 8},
}


# ---------------------------------------------------------------------------------------------- settings

def _merge(into: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if isinstance(value, dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def _set(settings: dict, key: str, value: Any) -> None:
    node, parts = settings, key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            known = ", ".join(sorted(_leaves(DEFAULTS)))
            raise ValueError(f"{key}: no such search setting (known: {known})")
        if i == len(parts) - 1:
            if isinstance(node[part], dict):
                raise ValueError(f"{key}: a section; set one of its fields ({', '.join(node[part])})")
            node[part] = value
        else:
            node = node[part]


def _leaves(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        out.extend(_leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [prefix + key])
    return out


def _int(settings: dict, key: str, low: int = 1) -> int:
    value = settings
    for part in key.split("."):
        value = value[part]
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{key}: must be an integer >= {low}, got {value!r}")
    return value


def search_settings(quick: bool, sets: list | tuple = ()) -> dict:
    """The search stage's settings: DEFAULTS, QUICK (--quick), then the sets (KEY, VALUE) in order; ValueError
    naming the field for an unknown key, a bad value or a tree too costly for the budget (MCTSSettings.check)."""
    from r1model.generation.mcts import MCTSSettings

    settings = copy.deepcopy(DEFAULTS)
    if quick:
        _merge(settings, copy.deepcopy(QUICK))
    for key, value in sets:
        _set(settings, key, value)
    digits = settings["digits"]
    if not (isinstance(digits, list) and digits and all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 9
                                                        for d in digits)):
        raise ValueError(f"digits: must be a non-empty list of integers 1..9, got {digits!r}")
    settings["digits"] = sorted(set(digits))
    for key in ("problems", "token_budget", "value.problems", "value.samples", "value.batch_size"):
        _int(settings, key)
    _int(settings, "value.steps", low=0)
    snapshots = settings["snapshots"]
    if not (isinstance(snapshots, list) and snapshots and all(isinstance(f, (int, float)) and 0 < f <= 1
                                                              for f in snapshots)):
        raise ValueError(f"snapshots: must be a non-empty list of fractions in (0, 1], got {snapshots!r}")
    for key, low in (("temperature", 0.0), ("value.learning_rate", 0.0)):
        section, _, name = key.rpartition(".")
        value = settings[section][name] if section else settings[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= low:
            raise ValueError(f"{key}: must be a number > {low}, got {value!r}")
    mcts = MCTSSettings(token_budget=settings["token_budget"], **settings["mcts"])
    mcts.check(prefix="mcts.", budget_field="token_budget")
    return settings


def _mcts_settings(settings: dict):
    from r1model.generation.mcts import MCTSSettings

    return MCTSSettings(token_budget=settings["token_budget"], **settings["mcts"])


def budgets_of(settings: dict) -> list[int]:
    """The curve's token budgets (ascending, the last is token_budget)."""
    budget = settings["token_budget"]
    return sorted({max(1, round(budget * f)) for f in settings["snapshots"]} | {budget})


# ---------------------------------------------------------------------------------------------- the chain

def _base(quick: bool) -> dict:
    """The tiny preset pretrained on 2-4 digit sums, every think worked one line per digit (MTP off)."""
    return {
        "kind": "pretrain", "name": "base",
        "model": {"source": "tiny", "overrides": {"num_nextn_predict_layers": 0}},
        "datasets": [{"task": "addition", "difficulty": {"digits": 2 if quick else 4, "min_digits": 1 if quick else 2},
                      "eval_size": 0}],
        "template": "mini", "threads": 1,
        "total_steps": QUICK_BASE_STEPS if quick else BASE_STEPS, "checkpoint_interval": 0 if quick else 250,
        "supervised": {"batch_size": 16 if quick else 64, "learning_rate": 3e-3, "lr_schedule": "cosine",
                       "warmup_steps": 5 if quick else 40, "worked_fraction": 1.0, "completion_only_loss": True,
                       "max_seq_len": 96},
        "evaluation": {"benchmarks": [], "at_start": False},
    }


def _check(quick: bool, sets: list) -> None:
    search_settings(quick, sets)


def _run(source: str, out: Path, *, quick: bool, seed: int | None, settings: list) -> dict:
    return run_search(source, out, quick=quick, seed=seed or 0, sets=settings)


# ---------------------------------------------------------------------------------------------- the search stage

def run_search(checkpoint: str | Path, out: str | Path, *, quick: bool = False, seed: int = 0,
               sets: list | tuple = ()) -> dict:
    """The search stage (module docstring) from a policy checkpoint: data.jsonl at `out` (one row per held-out
    problem and method) and the summary (returned; the chain writes it to summary.json)."""
    import torch

    from r1model.generation.engine import BuiltinEngine, SamplingParams
    from r1model.generation.mcts import Tree, engine_policy, search
    from r1model.model.value import ValueModel, fit_value_model, predict, value_errors
    from r1model.tasks import get_task
    from r1model.train.modeling import load_model, prompt_text

    settings = search_settings(quick, sets)
    mcts_settings = _mcts_settings(settings)
    started = time.process_time()
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load_model(checkpoint, device)
    newline = tokenizer.encode("\n")
    if len(newline) != 1:
        raise ValueError(f"search: the tokenizer of {checkpoint} does not write a newline as one token; steps are lines")
    newline_id, pad = newline[0], tokenizer.pad_id
    drop = {tokenizer.eos_id, pad}
    engine = BuiltinEngine(model, tokenizer)
    task = get_task("addition")
    temperature = settings["temperature"]
    max_new = mcts_settings.max_depth * mcts_settings.max_step_tokens  # a sample may be as long as a tree path

    def prompt_ids(problem) -> list[int]:
        return tokenizer.encode(prompt_text(tokenizer, problem.problem, "mini"))

    def text_of(ids) -> str:
        return tokenizer.decode([t for t in ids if t not in drop])

    def sample(problems, n: int, sample_seed: int):
        prompts = [prompt_ids(p) for p in problems]
        params = SamplingParams(temperature=temperature, max_new_tokens=max_new, seed=sample_seed)
        completions = engine.generate([p for p in prompts for _ in range(n)], params)
        return prompts, [completions[i * n:(i + 1) * n] for i in range(len(problems))]

    def prefixes(prompt: list[int], tokens: list[int]) -> list[tuple[int, list[int]]]:
        """(step index, prompt + tokens up to each line end, and the whole completion)."""
        cuts = [i + 1 for i, t in enumerate(tokens) if t == newline_id]
        if not cuts or cuts[-1] != len(tokens):
            cuts.append(len(tokens))
        return [(step, prompt + tokens[:cut]) for step, cut in enumerate(cuts, 1) if cut > 0]

    # 1. the value model, trained on the base's own samples of training problems
    phase = time.process_time()
    value_cfg = settings["value"]
    lo, hi = min(settings["digits"]), max(settings["digits"])
    train_problems = task.generate("train", value_cfg["problems"], seed=seed, digits=hi, min_digits=lo)
    prompts, samples = sample(train_problems, value_cfg["samples"], seed * 7919 + 1)
    examples, outcomes = [], []
    for problem, prompt, group in zip(train_problems, prompts, samples):
        for completion in group:
            correct = float(task.check(completion.text, problem).status == "correct")
            outcomes.append(correct)
            examples.extend((ids, correct) for _, ids in prefixes(prompt, list(completion.token_ids)))
    value_model = ValueModel.from_policy(checkpoint).to(device)
    losses = fit_value_model(value_model, examples, pad, steps=value_cfg["steps"], batch_size=value_cfg["batch_size"],
                             learning_rate=value_cfg["learning_rate"], seed=seed)
    value_model.save(Path(out).with_name("value_model.pt"))
    value_summary = {"train_rollouts": len(outcomes), "train_accuracy": _mean(outcomes), "train_prefixes": len(examples),
                     "loss_first": _mean(losses[:10]), "loss_last": _mean(losses[-10:]),
                     "cpu_s": time.process_time() - phase}

    def value(sequences: list[list[int]]) -> list[float]:
        return predict(value_model, sequences, pad)

    # 2. per size: samples (best-of-N, majority, one sample), held-out value error, MCTS
    budgets = budgets_of(settings)
    rows, sizes, heldout = [], {}, {"seq": [], "label": [], "step": []}
    for d in settings["digits"]:
        phase = time.process_time()
        problems = task.generate("test", settings["problems"], seed=seed, digits=d, min_digits=d)
        gold = min(len(tokenizer.encode(_gold_completion(task, p))) for p in problems)
        n_samples = min(64, math.ceil(settings["token_budget"] / max(gold, 1)) + 2)
        prompts, samples = sample(problems, n_samples, seed * 7919 + 100 + d)
        size = {"digits": d, "problems": len(problems), "samples_drawn": n_samples, "methods": {}}
        per_budget = {m: {b: {"correct": [], "tokens": []} for b in budgets} for m in METHODS}
        seq_values = value([prompt + list(c.token_ids) for prompt, group in zip(prompts, samples) for c in group])
        for index, (problem, prompt, group) in enumerate(zip(problems, prompts, samples)):
            checks = [task.check(c.text, problem).status == "correct" for c in group]
            lengths = [len(c.token_ids) for c in group]
            scores = seq_values[index * n_samples:(index + 1) * n_samples]
            for c, ok in list(zip(group, checks))[:4]:  # held-out prefixes: the first 4 samples of every problem
                for step, ids in prefixes(prompt, list(c.token_ids)):
                    heldout["label"].append(float(ok))
                    heldout["step"].append(step)
                    heldout["seq"].append(ids)
            for b in budgets:
                taken = _take(lengths, b)
                tokens = sum(lengths[:taken])
                best = max(range(taken), key=lambda i: scores[i])
                vote = _majority(task, [group[i].text for i in range(taken)])
                for method, correct, spent in (("best_of_n_value", checks[best], tokens),
                                               ("majority", vote is not None and checks[vote], tokens),
                                               ("sampling", sum(checks) / len(checks), sum(lengths) / len(lengths))):
                    per_budget[method][b]["correct"].append(float(correct))
                    per_budget[method][b]["tokens"].append(spent)
            rows.append({"digits": d, "problem": problem.problem, "answer": problem.answer, "method": "samples",
                         "tokens": lengths, "correct": checks, "value": [round(s, 4) for s in scores]})
        sampling_cpu = time.process_time() - phase

        phase = time.process_time()
        trees = [Tree(prompt, mcts_settings) for prompt in prompts]
        snap: dict[tuple[int, int], dict] = {}

        def on_snapshot(index: int, budget: int, tree) -> None:
            node = tree.answer()
            ok = node is not None and task.check(text_of(node.path_tokens()), problems[index]).status == "correct"
            snap[(index, budget)] = {"correct": float(ok), "tokens": tree.tokens_used, "answered": node is not None,
                                     **{k: v for k, v in tree.stats().items() if k != "stopped"}}

        search(trees, engine_policy(engine, newline_id, temperature=temperature, seed=seed * 7919 + d), value,
               snapshots=budgets, on_snapshot=on_snapshot)
        for b in budgets:
            for index in range(len(problems)):
                per_budget["mcts"][b]["correct"].append(snap[(index, b)]["correct"])
                per_budget["mcts"][b]["tokens"].append(snap[(index, b)]["tokens"])
        for index, (problem, tree) in enumerate(zip(problems, trees)):
            node = tree.answer()
            rows.append({"digits": d, "problem": problem.problem, "answer": problem.answer, "method": "mcts",
                         **tree.stats(), "correct": snap[(index, budgets[-1])]["correct"] == 1.0,
                         "completion": text_of(node.path_tokens()) if node is not None else None})
        final = [snap[(i, budgets[-1])] for i in range(len(problems))]
        size["mcts_tree"] = {key: _mean([s[key] for s in final]) for key in
                             ("nodes", "expansions", "max_depth", "answers", "dead_ends", "simulations")}
        size["mcts_tree"]["no_answer_rate"] = _mean([0.0 if s["answered"] else 1.0 for s in final])
        size["mcts_tree"]["stopped"] = dict(Counter(tree.stopped for tree in trees))
        size["cpu_s"] = {"sampling": sampling_cpu, "mcts": time.process_time() - phase}
        for method in METHODS:
            curve = []
            for b in budgets:
                correct, tokens = per_budget[method][b]["correct"], per_budget[method][b]["tokens"]
                curve.append({"budget": b, "accuracy": _mean(correct), "tokens": _mean(tokens),
                              "tokens_per_solved": sum(tokens) / sum(correct) if sum(correct) else None})
            size["methods"][method] = curve
        sizes[str(d)] = size

    # held-out value error, overall and by the prefix's step
    predictions = value(heldout["seq"])
    value_summary["heldout"] = value_errors(predictions, heldout["label"])
    by_step: dict[int, tuple[list, list]] = {}
    for p, y, s in zip(predictions, heldout["label"], heldout["step"]):
        by_step.setdefault(s, ([], []))[0].append(p)
        by_step[s][1].append(y)
    value_summary["heldout_by_step"] = {str(s): value_errors(*by_step[s]) for s in sorted(by_step)}

    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    tmp.replace(out)
    return {"settings": settings, "seed": seed, "quick": quick, "budgets": budgets, "value": value_summary,
            "sizes": sizes, "cpu_s": time.process_time() - started, "device": str(device)}


def _gold_completion(task, problem) -> str:
    from r1model.template import format_completion

    return format_completion(problem.solution or task.worked_solution(problem), problem.answer)


def _take(lengths: list[int], budget: int) -> int:
    """How many samples a budget buys: each one starts while the tokens so far are below it (at least one)."""
    spent, taken = 0, 0
    for length in lengths:
        if spent >= budget:
            break
        spent += length
        taken += 1
    return max(taken, 1)


def _majority(task, texts: list[str]) -> int | None:
    """The index of the first sample giving the most common integer answer; None when none gives one."""
    from r1model.tasks.base import parse_integer

    keys = []
    for text in texts:
        taken = task.take_answer(text)
        keys.append(parse_integer(taken) if isinstance(taken, str) else None)
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(i for i, k in enumerate(keys) if k is not None and counts[k] == top)


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


# ---------------------------------------------------------------------------------------------- comparison

def verdict(metrics: dict) -> dict:
    """RULE on flat metrics (one seed's or the seeds' means): "mcts.accuracy", "best_of_n_value.accuracy",
    "majority.accuracy", "sampling.accuracy", "mcts.tokens", "best_of_n_value.tokens"."""
    out = {"outcome": "inconclusive", "reasons": [], "rule": RULE}
    accs = {m: metrics.get(f"{m}.accuracy") for m in METHODS}
    missing = [m for m in ("mcts", "best_of_n_value", "majority") if accs[m] is None]
    if missing:
        return {**out, "reasons": [f"no accuracy for {', '.join(missing)}"]}
    known = [a for a in accs.values() if a is not None]
    if all(a <= 0 for a in known):
        return {**out, "reasons": ["no method solves any held-out problem: nothing to compare"]}
    if all(a >= 1 for a in known):
        return {**out, "reasons": ["every method solves every held-out problem: nothing to compare"]}
    mcts_tokens, sample_tokens = metrics.get("mcts.tokens"), metrics.get("best_of_n_value.tokens")
    if mcts_tokens is not None and sample_tokens and mcts_tokens > TOKEN_SLACK * sample_tokens:
        return {**out, "reasons": [f"MCTS spent {mcts_tokens:.0f} tokens per problem vs sampling's "
                                   f"{sample_tokens:.0f}: not an equal-token comparison"]}
    best = max(("best_of_n_value", "majority"), key=lambda m: accs[m])
    diff = accs["mcts"] - accs[best]
    reason = f"MCTS {accs['mcts']:.3f} vs {LABELS[best]} {accs[best]:.3f} ({diff:+.3f})"
    if diff > MARGIN:
        return {**out, "outcome": "not reproduced", "reasons": [reason + f": MCTS better by more than {MARGIN:.2f}"]}
    return {**out, "outcome": "reproduced", "reasons": [reason + ": MCTS not better at equal tokens"]}


def comparison_of(summary: dict, chain: Chain | None = None) -> dict:
    """comparison.json (general shape) from the search stage's summary."""
    sizes = summary.get("sizes") or {}
    budgets = summary.get("budgets") or []
    main = budgets[-1] if budgets else None

    def at(size: dict, method: str, budget) -> dict:
        return next((p for p in size["methods"].get(method, []) if p["budget"] == budget), {})

    metrics: dict[str, float | None] = {}
    for method in METHODS:
        for key in ("accuracy", "tokens", "tokens_per_solved"):
            metrics[f"{method}.{key}"] = _mean([at(s, method, main).get(key) for s in sizes.values()])
    tree_means = {key: _mean([(s.get("mcts_tree") or {}).get(key) for s in sizes.values()])
                  for key in ("nodes", "no_answer_rate")}
    metrics["mcts.nodes"], metrics["mcts.no_answer_rate"] = tree_means["nodes"], tree_means["no_answer_rate"]
    metrics["mcts.exhausted_rate"] = _mean([_exhausted_rate(s) for s in sizes.values()])
    best = [metrics[f"{m}.accuracy"] for m in ("best_of_n_value", "majority") if metrics[f"{m}.accuracy"] is not None]
    metrics["mcts_minus_best_sampling"] = (metrics["mcts.accuracy"] - max(best)
                                           if best and metrics["mcts.accuracy"] is not None else None)
    heldout = (summary.get("value") or {}).get("heldout") or {}
    for key in ("brier", "baseline_brier", "error_rate"):
        metrics[f"value.{key}"] = heldout.get(key)
    for digits, size in sizes.items():
        for method in ("mcts", "best_of_n_value", "majority"):
            metrics[f"d{digits}.{method}.accuracy"] = at(size, method, main).get("accuracy")
        metrics[f"d{digits}.mcts.nodes"] = (size.get("mcts_tree") or {}).get("nodes")
        metrics[f"d{digits}.mcts.exhausted_rate"] = _exhausted_rate(size)
        metrics[f"d{digits}.mcts.tokens_per_solved"] = at(size, "mcts", main).get("tokens_per_solved")
        metrics[f"d{digits}.best_of_n_value.tokens_per_solved"] = at(size, "best_of_n_value", main).get("tokens_per_solved")

    rows = []
    for digits, size in sizes.items():
        tree = size.get("mcts_tree") or {}
        for method in METHODS:
            point = at(size, method, main)
            rows.append([int(digits), LABELS[method], point.get("accuracy"), point.get("tokens"),
                         point.get("tokens_per_solved"), tree.get("nodes") if method == "mcts" else None,
                         tree.get("no_answer_rate") if method == "mcts" else None])
    digits_x = [int(d) for d in sizes]
    branching = ((summary.get("settings") or {}).get("mcts") or {}).get("branching")
    for d in digits_x:
        metrics[f"d{d}.full_tree_nodes"] = full_tree_nodes(branching, d) if branching else None
    charts = [
        {"title": "accuracy vs generated tokens per problem (all sizes)", "x_label": "generated tokens per problem",
         "y_label": "accuracy",
         "series": [{"name": LABELS[m],
                     "x": [_mean([at(s, m, b).get("tokens") for s in sizes.values()]) for b in budgets],
                     "y": [_mean([at(s, m, b).get("accuracy") for s in sizes.values()]) for b in budgets]}
                    for m in METHODS]},
        {"title": "MCTS tree size vs steps (at the token budget)", "x_label": "steps (digits)", "y_label": "per tree",
         "series": [{"name": name, "x": digits_x, "y": [(s.get("mcts_tree") or {}).get(key) for s in sizes.values()]}
                    for key, name in (("nodes", "nodes"), ("expansions", "expansions"), ("answers", "answers found"))]
         + ([{"name": f"every node of a full tree (K = {branching})", "x": digits_x,
              "y": [full_tree_nodes(branching, d) for d in digits_x]}] if branching else [])},
        {"title": "generated tokens per solved problem vs steps", "x_label": "steps (digits)",
         "y_label": "tokens per solved problem",
         "series": [{"name": LABELS[m], "x": digits_x, "y": [at(s, m, main).get("tokens_per_solved") for s in sizes.values()]}
                    for m in METHODS]},
    ]
    by_step = (summary.get("value") or {}).get("heldout_by_step") or {}
    if by_step:
        steps = sorted(by_step, key=int)
        charts.append({"title": "value model error on held-out prefixes", "x_label": "prefix length (steps)",
                       "y_label": "Brier score",
                       "series": [{"name": "value model", "x": [int(s) for s in steps],
                                   "y": [by_step[s].get("brier") for s in steps]},
                                  {"name": "constant (mean outcome)", "x": [int(s) for s in steps],
                                   "y": [by_step[s].get("baseline_brier") for s in steps]}]})
    settings = summary.get("settings") or {}
    mcts = settings.get("mcts") or {}
    value = summary.get("value") or {}
    note = (f"Equal generated tokens: every method gets token_budget {settings.get('token_budget')} tokens per "
            f"problem (curve: {budgets}); best-of-N and majority draw samples while the tokens so far are below the "
            f"budget, MCTS expands while its tokens are below it (K = {mcts.get('branching')} lines per expansion, "
            f"each ≤ {mcts.get('max_step_tokens')} tokens, depth ≤ {mcts.get('max_depth')}), so either may pass it by "
            "one sample / one expansion; prompt re-reads are not counted. 'one sample' is a single sample's accuracy "
            "(pass@1) at its own length. The MCTS answer is its most visited finished node; a tree with none counts "
            "wrong (no_answer_rate); a tree whose every leaf is an answer or a dead end stops before the budget "
            "(exhausted_rate: each node is expanded once, with K samples merged when identical). The value model (the base's body + a scalar head) was trained on "
            f"{value.get('train_prefixes')} line-prefixes of {value.get('train_rollouts')} samples of training "
            "problems (label: the sample's final correctness) and is scored on the held-out problems' samples "
            "(Brier vs a constant predictor of the mean outcome).")
    chain_finding = chain.finding if chain is not None else FINDING
    return {
        "finding": chain_finding, "metrics": metrics, "verdict": verdict(metrics),
        "table": {"columns": ["digits (steps)", "method", "accuracy", "tokens / problem", "tokens / solved",
                              "tree nodes", "no answer"], "rows": rows},
        "charts": charts,
        "headline": {"name": "mcts_minus_best_sampling_accuracy", "value": metrics["mcts_minus_best_sampling"]},
        "note": note,
        "value_model": value,
        "settings": settings,
        "cpu_s": summary.get("cpu_s"),
    }


def _exhausted_rate(size: dict) -> float | None:
    """The share of a size's trees that stopped with nothing left to expand (every leaf an answer or a dead end)."""
    stopped = (size.get("mcts_tree") or {}).get("stopped") or {}
    total = sum(stopped.values())
    return stopped.get("exhausted", 0) / total if total else None


def full_tree_nodes(branching: int, steps: int) -> int:
    """Nodes of the full tree of `steps` lines with `branching` distinct lines per node: K + K² + … + K^steps
    (what exhaustive search would expand; the sampled trees hold a sliver of it)."""
    return sum(branching ** depth for depth in range(1, steps + 1))


def summarise(root: Path, chain: Chain) -> tuple[dict, str]:
    """comparison.json from the search stage's summary.json and the closing `name=value` line."""
    dirs = dict(zip((stage.name for stage in chain.stages), chain.stage_dirs()))
    path = Path(root) / "stages" / dirs["search"] / "summary.json"
    summary = json.loads(path.read_text()) if path.is_file() else {}
    comparison = comparison_of(summary, chain)
    value = comparison["headline"]["value"]
    return comparison, f"mcts_minus_best_sampling_accuracy={'nan' if value is None else f'{value:.4f}'}"


CHAIN = Chain(
    name="mcts-vs-sampling",
    description="DeepSeek-R1 §4.2 (MCTS, an unsuccessful attempt) in miniature: a tiny base pretrained on worked "
    "additions (a step = a line of the think) → a value model trained on its samples (predict final correctness "
    "from a prefix) → per problem size, at equal generated tokens: step-level MCTS (PUCT, K sampled lines per "
    "expansion, value-model evaluation) vs best-of-N sampling ranked by the same value model vs majority vote vs "
    "one sample; comparison.json: accuracies, the trees' growth with the number of steps, the value model's error.",
    stages=(
        Stage("base", "pretrain the tiny preset on 2-4 digit sums, every think worked line by line", build=_base),
        Stage("search", "value model from the base's samples; MCTS vs best-of-N vs majority at equal tokens",
              make="mcts-vs-sampling", source=From("base")),
    ),
    summarise=summarise,
    finding=FINDING,
    verdict=verdict,
    builders=(("mcts-vs-sampling", Builder(run=_run, check=_check)),),
)
