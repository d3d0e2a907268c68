"""`python -m r1model`: every job of the lab, without the web app.

    python -m r1model train CONFIG.json --run-dir DIR        (resumes when DIR holds checkpoints)
    python -m r1model validate-config CONFIG.json
    python -m r1model recipe list
    python -m r1model recipe show NAME [--quick] [--seed N] [--model M] [--dataset F] [--set KEY.PATH=VALUE ...]
    python -m r1model recipe run NAME --run-dir DIR [--seed N] [--quick] [--model M] [--dataset F] [--set ...]
    python -m r1model recipe run CHAIN --run-dir DIR [--seed N] [--quick] [--set [STAGE:]KEY.PATH=VALUE ...]
                                      (a chain of recipes, r1model.train.chains; the same command resumes it)
    python -m r1model score ...       (r1model.evaluate.score)
    python -m r1model evaluate ...    (r1model.evaluate.runner)
    python -m r1model merge A B [--weight 0.5] --out DIR   (average two checkpoints: r1model.train.merge)

Exit codes: 0 done (or stopped by SIGTERM after a checkpoint), 1 failed, 2 bad usage or invalid config.
"""
from __future__ import annotations

import argparse
import os
import sys

EXIT_USAGE = 2


def _print_warnings(config) -> None:
    from r1model.train.config import config_warnings

    for warning in config_warnings(config):
        print(f"warning: {warning['field']}: {warning['msg']}", file=sys.stderr)


def _train(config, run_dir: str, quiet: bool) -> int:
    from r1model.train.runner import run

    _print_warnings(config)
    return run(config, run_dir, progress_stream=open(os.devnull, "w") if quiet else sys.stderr)


def _load_config(path):
    """The RunConfig of a file, or None after printing every error (ConfigError names the file and fields)."""
    from r1model.train.config import ConfigError, load_run_config

    try:
        return load_run_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _cmd_train(args) -> int:
    config = _load_config(args.config)
    return EXIT_USAGE if config is None else _train(config, args.run_dir, args.quiet)


def _cmd_validate(args) -> int:
    config = _load_config(args.config)
    if config is None:
        return EXIT_USAGE
    _print_warnings(config)
    print(f"{args.config}: valid {config.kind} config")
    return 0


def _cmd_recipe(args) -> int:
    from r1model.train.config import ConfigError
    from r1model.train.recipes import RECIPES, parse_set, recipe_config

    from r1model.train.findings import CHAINS

    if args.recipe_command == "list":
        width = max(len(name) for name in [*RECIPES, *CHAINS])
        for name, recipe in RECIPES.items():
            needs = f" [needs {', '.join(need.option for need in recipe.needs)}]" if recipe.needs else ""
            print(f"{name:{width}}  {recipe.description}{needs}")
        for name, chain in CHAINS.items():
            stages = " → ".join(stage.name for stage in chain.stages)
            print(f"{name:{width}}  [chain: {stages}] {chain.description}")
        return 0
    if args.name in CHAINS:
        return _cmd_chain(args)
    try:
        sets = [parse_set(item) for item in args.set]
        config = recipe_config(args.name, quick=args.quick, seed=args.seed, model=args.model, dataset=args.dataset,
                               sets=sets, require_inputs=args.recipe_command == "run")
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return EXIT_USAGE
    except (ConfigError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    if args.recipe_command == "show":
        print(config.to_json())
        return 0
    return _train(config, args.run_dir, args.quiet)


def _cmd_chain(args) -> int:
    """`recipe show/run` of a chain: show prints its plan (stages, inputs) as JSON; run runs or resumes it."""
    import json

    from r1model.train.chains import ChainError, chain_plan, run_chain
    from r1model.train.findings import CHAINS
    from r1model.train.recipes import parse_set

    if args.model is not None or args.dataset is not None:
        print(f"{args.name} is a chain: its stages take their models and datasets from earlier stages "
              "(--model / --dataset do not apply; --set STAGE:KEY.PATH=VALUE changes one stage)", file=sys.stderr)
        return EXIT_USAGE
    if args.recipe_command == "show":
        print(json.dumps(chain_plan(CHAINS[args.name]), indent=2))
        return 0
    try:
        sets = [parse_set(item) for item in args.set]
        return run_chain(args.name, args.run_dir, quick=args.quick, seed=args.seed, sets=sets,
                         progress_stream=open(os.devnull, "w") if args.quiet else sys.stderr)
    except (ChainError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE


def _delegate(module: str, function: str, argv: list[str]) -> int:
    import importlib

    try:
        fn = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        print(f"{module}.{function} is not available: {exc}", file=sys.stderr)
        return EXIT_USAGE
    result = fn(argv)
    return int(result or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m r1model", description="R1 Lab trainer: DeepSeek-R1-style runs without the web app.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="run a RunConfig in a run directory (resumes from its checkpoints)")
    train.add_argument("config", help="RunConfig JSON file")
    train.add_argument("--run-dir", required=True, help="where config.json, events.jsonl and checkpoints/ go")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.set_defaults(func=_cmd_train)

    validate = sub.add_parser("validate-config", help="check a RunConfig file and list every error")
    validate.add_argument("config")
    validate.set_defaults(func=_cmd_validate)

    recipe = sub.add_parser("recipe", help="named experiments (aha-mini, r1-zero, cold-start-sft, rejection-sampling, distill, evaluate) "
                         "and chains of them (r1-mini)")
    recipe_sub = recipe.add_subparsers(dest="recipe_command", required=True)
    recipe_sub.add_parser("list", help="the recipes and what they show")
    for name, help_text in (("show", "print a recipe's RunConfig"), ("run", "run a recipe in a run directory")):
        cmd = recipe_sub.add_parser(name, help=help_text)
        cmd.add_argument("name")
        cmd.add_argument("--seed", type=int, default=None)
        cmd.add_argument("--quick", action="store_true", help="the same pipeline scaled down to about a minute")
        cmd.add_argument("--model", default=None, metavar="PATH",
                         help="start from this checkpoint folder (drops the recipe's base pretraining) or preset")
        cmd.add_argument("--dataset", default=None, metavar="FILE",
                         help="use this dataset file (problems, or {prompt, completion} for SFT) instead of the recipe's")
        cmd.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                         help="change one config field, e.g. grpo.beta=0 or datasets.0.difficulty.digits=2 "
                         "(VALUE is JSON when it parses, else text); repeatable, applied last")
        if name == "run":
            cmd.add_argument("--run-dir", required=True)
            cmd.add_argument("--quiet", action="store_true")
        else:
            cmd.set_defaults(run_dir=None, quiet=True)
    recipe.set_defaults(func=_cmd_recipe)

    score = sub.add_parser("score", help="score completions (r1model.evaluate.score)", add_help=False)
    score.add_argument("rest", nargs=argparse.REMAINDER)
    score.set_defaults(func=lambda args: _delegate("r1model.evaluate.score", "score_main", args.rest))
    evaluate = sub.add_parser("evaluate", help="evaluate a checkpoint on benchmarks (r1model.evaluate.runner)", add_help=False)
    evaluate.add_argument("rest", nargs=argparse.REMAINDER)
    evaluate.set_defaults(func=lambda args: _delegate("r1model.evaluate.runner", "evaluate_main", args.rest))
    merge = sub.add_parser("merge", help="average two checkpoints of one architecture (r1model.train.merge)",
                           add_help=False)
    merge.add_argument("rest", nargs=argparse.REMAINDER)
    merge.set_defaults(func=lambda args: _delegate("r1model.train.merge", "merge_main", args.rest))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # score / evaluate take their own arguments: hand everything after the sub-command over untouched.
    if argv and argv[0] in ("score", "evaluate", "merge"):
        module, function = {"score": ("r1model.evaluate.score", "score_main"),
                            "evaluate": ("r1model.evaluate.runner", "evaluate_main"),
                            "merge": ("r1model.train.merge", "merge_main")}[argv[0]]
        return _delegate(module, function, argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
