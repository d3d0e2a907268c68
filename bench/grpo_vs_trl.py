"""GRPO steps on CPU: our trainer (r1model.train.grpo_trainer.GRPOTrainer.step) against TRL's GRPOTrainer,
measured in one process, one torch thread, steps interleaved (TRL step k, then our step k, ...).

    OMP_NUM_THREADS=1 .venv/bin/python bench/grpo_vs_trl.py                       # defaults below
    OMP_NUM_THREADS=1 .venv/bin/python bench/grpo_vs_trl.py --group-size 8 --prompts 8 --max-new-tokens 64 --beta 0.001
    OMP_NUM_THREADS=1 .venv/bin/python bench/grpo_vs_trl.py --model qwen2-tiny      # a dense transformers model

Same for both sides:
- the model (--model tiny, the default): the `tiny` preset briefly pretrained by our supervised trainer on
  6-digit addition (so that it writes <think>/<answer> and stops on its own), exported with
  `DeepSeekV3.save_pretrained`; TRL loads that folder through transformers' `DeepseekV3ForCausalLM` (logits
  checked against ours before timing; the MTP module is in the folder but only runs in our model when labels
  are given, which GRPO never does). Here TRL pays for transformers' per-expert MoE loop;
- the model (--model qwen2-tiny): the dense Qwen2 test fixture (r1model.testing.fixtures.make_tiny_hf_model,
  instruct-style, byte-level BPE tokenizer with the R1 tags as tokens) built into OUT, pretrained the same way
  by our runner (an HF model: our trainer runs it as r1model.model.hf.HFCausalLM with HFEngine), the
  checkpoint a Qwen2 folder; both sides load that folder with AutoModelForCausalLM (Qwen2ForCausalLM), so
  both run transformers' own forward and backward; the prompts are its chat template (prompt_format auto);
- the prompts: step k of both sides gets the same problems (`DataSource.grpo_problems(k, P)`), rendered with
  the `mini` template; G completions each, sampled at temperature 1, top-p 1, no top-k, at most L new tokens,
  stopping at <eos> or </answer>;
- the rewards: accuracy + format from `r1model.rewards` (TRL gets them wrapped as two reward functions with
  the same weights; they decode the completion ids with our tokenizer, because TRL's own decoding skips
  special tokens and would drop the <think>/<answer> tags);
- the update: μ = 1, one minibatch (TRL: per_device_train_batch_size = P·G, one generation per step, no
  gradient accumulation, gradient checkpointing off as ours), loss aggregation `grpo`, advantages scaled
  by the group std, ε = 0.2, the same β, AdamW with the same betas, clipping and learning rate (the report's
  3e-6: small enough that neither policy drifts from the starting length distribution during the run),
  constant schedule.

Figures: seconds per step and completion tokens per second (completion tokens of the step / wall time of
the step, from generation to the optimizer step, TRL's own logging included) — also per CPU second, the
check against the shared machine's noise — median over the measured steps (the first `--warmup` steps of
each side are not counted). Steps alternate TRL, ours, TRL, ours, ... so that the load of the shared
machine hits both sides alike.
Last line: grpo_vs_trl_tokens_per_s_ratio=<ours / TRL>.
"""
from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported
os.environ["MKL_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from r1model.events import EventWriter  # noqa: E402
from r1model.rewards import compute_rewards  # noqa: E402
from r1model.train import checkpoint as ckpt  # noqa: E402
from r1model.train import modeling  # noqa: E402
from r1model.train.config import validate_run_config  # noqa: E402
from r1model.train.context import Progress, RunContext  # noqa: E402
from r1model.train.data import DataSource  # noqa: E402

TASK = {"task": "addition", "difficulty": {"digits": 6, "min_digits": 6}, "eval_size": 0}
TEMPLATE = "mini"
REWARDS = [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.1}]  # aha-mini's weights
SEED = 0
TRL_LOGGED = ("step", "reward", "reward_std", "completions/mean_length", "frac_reward_zero_std", "grad_norm", "loss")


def _devnull():
    return open(os.devnull, "w")


def quiet_libraries() -> None:
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


# --- the shared starting model ----------------------------------------------------------------------
def prepare_base(out: Path, base_steps: int, model: str = "tiny") -> Path:
    """Pretrain the tiny preset (or the Qwen2 fixture, --model qwen2-tiny) for `base_steps` steps with our
    runner (kind pretrain), then export it with save_pretrained to OUT/hf_model. Reused when already there
    with the same step count."""
    from r1model.train.runner import run

    hf_dir = out / "hf_model"
    stamp = out / "hf_model.json"
    if stamp.exists() and json.loads(stamp.read_text()) == {"base_steps": base_steps, "model": model} and (hf_dir / "config.json").exists():
        return hf_dir
    source = "tiny"
    if model == "qwen2-tiny":
        from r1model.testing.fixtures import make_tiny_hf_model

        source = str(make_tiny_hf_model(out / "qwen2_tiny_init", "qwen2"))
    config = validate_run_config({
        "kind": "pretrain", "name": "bench-base", "model": {"source": source}, "datasets": [TASK],
        "template": TEMPLATE, "seed": SEED, "threads": 1, "total_steps": base_steps, "checkpoint_interval": 0,
        "keep_checkpoints": 1, "evaluation": {"benchmarks": [], "at_start": False},
        "supervised": {"batch_size": 32, "learning_rate": 3e-3, "lr_schedule": "cosine", "warmup_steps": 5,
                       "worked_fraction": 0.3, "completion_only_loss": True,
                       # the Qwen2 fixture's chat prompt is ~200 tokens of its small BPE: 128 would cut every answer
                       "max_seq_len": 128 if model == "tiny" else 512},
    }, source="bench base")
    run_dir = out / "base_run"
    code = run(config, run_dir, progress_stream=_devnull(), install_signals=False)
    if code != 0:
        raise SystemExit(f"base pretraining failed (exit {code}); see {run_dir}/events.jsonl")
    trained, tokenizer = modeling.load_model(ckpt.latest_checkpoint(run_dir / "checkpoints"), torch.device("cpu"))
    trained.save_pretrained(hf_dir, tokenizer=tokenizer)
    stamp.write_text(json.dumps({"base_steps": base_steps, "model": model}))
    return hf_dir


def grpo_run_config(hf_dir: Path, *, group_size: int, prompts: int, max_new_tokens: int, beta: float,
                    learning_rate: float, total_steps: int):
    """A short grpo RunConfig on the exported model (what `python -m r1model train` would run)."""
    return validate_run_config({
        "kind": "grpo", "name": "bench-grpo", "model": {"source": str(hf_dir)}, "datasets": [TASK],
        "template": TEMPLATE, "rewards": REWARDS, "seed": SEED, "threads": 1, "total_steps": total_steps,
        "checkpoint_interval": 0, "traces_per_step": 0, "device": "cpu", "precision": "fp32",
        "evaluation": {"benchmarks": [], "at_start": False},
        "grpo": {"group_size": group_size, "prompts_per_step": prompts, "learning_rate": learning_rate,
                 "lr_schedule": "constant", "warmup_steps": 0, "weight_decay": 0.0, "beta": beta,
                 "num_iterations": 1, "minibatches": 1, "loss_aggregation": "grpo", "advantage_scaling": "std",
                 "epsilon_low": 0.2, "epsilon_high": 0.2, "drop_all_equal_groups": False},
        "sampling": {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "max_new_tokens": max_new_tokens},
    }, source="bench grpo")


def build_our_trainer(config, run_dir: Path):
    """The project's GRPOTrainer on the exported model (with a frozen reference copy when β > 0), built
    the way runner._run_job builds it; `trainer.step(k)` is one whole GRPO step."""
    from r1model.train.grpo_trainer import GRPOTrainer

    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device("cpu")
    ctx = RunContext(config, run_dir, EventWriter(run_dir), device, progress=Progress(_devnull()))
    model, tokenizer = modeling.load_model(config.model.source, device)
    reference = modeling.frozen_copy(model) if config.grpo.beta > 0 else None
    return GRPOTrainer(ctx, model, tokenizer, DataSource(config), reference=reference)


# --- TRL --------------------------------------------------------------------------------------------
def check_hf_load(hf_dir: Path, prompts: list[str]) -> float:
    """Max |logit difference| between our model and transformers' DeepseekV3ForCausalLM on the same folder."""
    from transformers import AutoModelForCausalLM

    from r1model.model import DeepSeekV3, R1Tokenizer

    ours = DeepSeekV3.from_pretrained(str(hf_dir)).eval()
    theirs = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    if type(theirs).__name__ != "DeepseekV3ForCausalLM":
        raise SystemExit(f"transformers loaded {type(theirs).__name__}, not DeepseekV3ForCausalLM")
    tok = R1Tokenizer.load(hf_dir)
    worst = 0.0
    with torch.no_grad():
        for text in prompts:
            ids = torch.tensor([tok.encode(text + "<think>12+3")])
            worst = max(worst, float((ours(ids).logits - theirs(ids).logits).abs().max()))
    return worst


class TRLRewards:
    """Our accuracy and format rewards as two TRL reward functions. TRL decodes with
    skip_special_tokens=True, which drops the <think>/<answer> tags, so the completion ids are decoded with
    our tokenizer here. Also counts the completion tokens of each generation (one generation per step)."""

    def __init__(self, tokenizer, problems, max_new_tokens: int):
        self.tok, self.problems, self.max_new_tokens = tokenizer, problems, max_new_tokens
        self.stops = stop_ids(tokenizer)
        self.tokens_per_generation: list[int] = []
        self.weights = {r["name"]: r["weight"] for r in REWARDS}

    def _components(self, completion_ids, pid):
        texts, cut = [], []
        for ids in completion_ids:
            ids = list(ids)
            cut.append(len(ids) >= self.max_new_tokens and ids[-1] not in self.stops)
            if ids and ids[-1] in self.stops and ids[-1] != self.tok.token_id("</answer>"):
                ids = ids[:-1]
            texts.append(self.tok.decode(ids))
        _, components = compute_rewards(texts, [self.problems[i] for i in pid], self.weights, truncated=cut)
        return components

    def accuracy(self, prompts, completions, completion_ids, pid, **kwargs):
        self.tokens_per_generation.append(sum(len(ids) for ids in completion_ids))
        return [r.value for r in self._components(completion_ids, pid)["accuracy"]]

    def format(self, prompts, completions, completion_ids, pid, **kwargs):
        return [r.value for r in self._components(completion_ids, pid)["format"]]


def stop_ids(tokenizer) -> set[int]:
    """What both sides stop on: the EOS ids (an HF tokenizer's also generation_config.json's) and </answer>."""
    return {tokenizer.eos_id, *getattr(tokenizer, "stop_ids", ()), tokenizer.token_id("</answer>")}


def build_trl_trainer(hf_dir: Path, config, steps: int, out: Path, callback):
    """TRL's GRPOTrainer with the settings of `config.grpo`; its step k sees our step k's problems."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    hp, sp = config.grpo, config.sampling
    data = DataSource(config)
    _, ours_tok = modeling.load_model(hf_dir, torch.device("cpu"))  # our tokenizer of the folder
    problems = [p for step in range(1, steps + 1) for p in data.grpo_problems(step, hp.prompts_per_step)]
    rows = [{"prompt": prompt_of(ours_tok, p, config), "pid": i} for i, p in enumerate(problems)]
    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    model.generation_config.eos_token_id = sorted(stop_ids(ours_tok))  # as our engine
    model.generation_config.pad_token_id = ours_tok.pad_id
    rewards = TRLRewards(ours_tok, problems, sp.max_new_tokens)
    args = GRPOConfig(
        output_dir=str(out / "trl_run"), use_cpu=True, use_vllm=False, bf16=False, fp16=False,
        gradient_checkpointing=False, seed=SEED, max_steps=steps, report_to="none", save_strategy="no",
        logging_steps=1, disable_tqdm=True, log_completions=False, shuffle_dataset=False,
        dataloader_num_workers=0,
        per_device_train_batch_size=hp.prompts_per_step * hp.group_size, gradient_accumulation_steps=1,
        steps_per_generation=1, num_generations=hp.group_size, max_completion_length=sp.max_new_tokens,
        num_iterations=1, beta=hp.beta, epsilon=hp.epsilon_low, epsilon_high=hp.epsilon_high,
        loss_type="grpo", scale_rewards="group", mask_truncated_completions=False,
        temperature=sp.temperature, top_p=sp.top_p, top_k=sp.top_k,
        learning_rate=hp.learning_rate, lr_scheduler_type="constant", warmup_steps=0, weight_decay=hp.weight_decay,
        adam_beta1=hp.adam_beta1, adam_beta2=hp.adam_beta2, max_grad_norm=hp.max_grad_norm,
        reward_weights=[rewards.weights["accuracy"], rewards.weights["format"]],
    )
    trainer = GRPOTrainer(
        model=model, reward_funcs=[rewards.accuracy, rewards.format], args=args,
        train_dataset=Dataset.from_list(rows), processing_class=tokenizer, callbacks=[callback],
    )
    trainer.remove_callback(PrinterCallback)
    rewards.generate_seconds = []
    generate = trainer._generate_single_turn  # prompts -> completion ids: TRL's sampling, timed apart

    def timed_generate(*args, **kwargs):
        t0 = time.perf_counter()
        out = generate(*args, **kwargs)
        rewards.generate_seconds.append(time.perf_counter() - t0)
        return out

    trainer._generate_single_turn = timed_generate
    return trainer, rewards


def prompt_of(tokenizer, problem, config) -> str:
    """The prompt text our trainer renders for a problem (the template as text, or the model's chat template
    for an instruct-style HF tokenizer); TRL gets the same string as a plain-text prompt."""
    return modeling.prompt_text(tokenizer, problem.problem, config.template, config.prompt_format)


# --- the interleaved run ------------------------------------------------------------------------------
def interleave_callback(ours, ours_rows: list, trl_rows: list):
    """After each TRL optimizer step: note TRL's wall and CPU time since it resumed, then run our step k.
    CPU time (process_time; one torch thread) is reported beside wall time because the machine is shared:
    waiting for a core inflates wall time, not CPU time."""
    from transformers import TrainerCallback

    class Interleave(TrainerCallback):
        resumed = (0.0, 0.0)

        def on_train_begin(self, args, state, control, **kwargs):
            self.resumed = (time.perf_counter(), time.process_time())

        def on_step_end(self, args, state, control, **kwargs):
            wall0, cpu0 = self.resumed
            trl_rows.append({"wall": time.perf_counter() - wall0, "cpu": time.process_time() - cpu0})
            wall0, cpu0 = time.perf_counter(), time.process_time()
            values = ours.step(state.global_step)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            tokens = values["completions/mean_length"] * ours.hp.group_size * ours.hp.prompts_per_step
            ours_rows.append({"wall": wall, "cpu": cpu, "tokens": tokens, **values})
            self.resumed = (time.perf_counter(), time.process_time())

    return Interleave()


def summary(rows: list[dict], tokens: list[float]) -> dict:
    walls, cpus = [r["wall"] for r in rows], [r["cpu"] for r in rows]
    return {
        "s_per_step": statistics.median(walls),
        "tokens_per_s": statistics.median(t / w for t, w in zip(tokens, walls)),
        "tokens_per_step": statistics.median(tokens),
        "cpu_s_per_step": statistics.median(cpus),
        "tokens_per_cpu_s": statistics.median(t / c for t, c in zip(tokens, cpus)),
        "walls": [round(w, 3) for w in walls],
        "cpus": [round(c, 3) for c in cpus],
        "tokens": [round(t) for t in tokens],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=("tiny", "qwen2-tiny"), default="tiny",
                   help="tiny: our DeepSeek-V3 preset (TRL runs DeepseekV3ForCausalLM); qwen2-tiny: the dense Qwen2 "
                        "test fixture (both sides run Qwen2ForCausalLM)")
    p.add_argument("--group-size", type=int, default=8, help="G, completions per prompt")
    p.add_argument("--prompts", type=int, default=8, help="prompts per step")
    p.add_argument("--max-new-tokens", type=int, default=64, help="max completion length")
    p.add_argument("--beta", type=float, default=0.0, help="KL coefficient (0 = no reference model)")
    p.add_argument("--learning-rate", type=float, default=3e-6,
                   help="the report's 3e-6: the policies hardly move in 6 steps, so both sides keep sampling the "
                        "starting model's length distribution (an update costs the same at any learning rate)")
    p.add_argument("--steps", type=int, default=8, help="measured steps per side")
    p.add_argument("--warmup", type=int, default=1, help="uncounted first steps per side")
    p.add_argument("--base-steps", type=int, default=40, help="pretraining steps of the shared starting model")
    p.add_argument("--out", type=Path, default=None, help="default bench/out/grpo_vs_trl[_qwen2-tiny]")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = ROOT / "bench" / "out" / ("grpo_vs_trl" + ("" if args.model == "tiny" else "_" + args.model))
    torch.set_num_threads(1)
    quiet_libraries()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    hf_dir = prepare_base(args.out, args.base_steps, args.model)
    total = args.warmup + args.steps
    config = grpo_run_config(hf_dir, group_size=args.group_size, prompts=args.prompts,
                             max_new_tokens=args.max_new_tokens, beta=args.beta,
                             learning_rate=args.learning_rate, total_steps=total)
    if args.model == "tiny":
        probe = [DataSource(config).grpo_problems(1, 3)]
        _, tok = modeling.load_model(hf_dir, torch.device("cpu"))
        diff = check_hf_load(hf_dir, [prompt_of(tok, q, config) for q in probe[0]])
        print(f"HF load check: DeepseekV3ForCausalLM logits vs ours, max |diff| = {diff:.2e}", flush=True)
        if diff > 1e-3:
            raise SystemExit("transformers' DeepseekV3ForCausalLM does not reproduce our logits; not comparable")
    else:
        diff = 0.0  # both sides load the folder with AutoModelForCausalLM

    ours = build_our_trainer(config, args.out / "ours_run")
    ours_rows, trl_rows = [], []
    trl, trl_rewards = build_trl_trainer(hf_dir, config, total, args.out,
                                         interleave_callback(ours, ours_rows, trl_rows))
    trl.train()
    threads = torch.get_num_threads()

    import transformers
    import trl as trl_package

    w = args.warmup
    ours_s = summary(ours_rows[w:], [r["tokens"] for r in ours_rows][w:])
    trl_s = summary(trl_rows[w:], [float(t) for t in trl_rewards.tokens_per_generation][w:])
    split = {k: statistics.median(r[f"time/{k}"] for r in ours_rows[w:]) for k in ("generate", "score", "reference", "update")}
    trl_generate = statistics.median(trl_rewards.generate_seconds[w:])
    ratio = ours_s["tokens_per_s"] / trl_s["tokens_per_s"]
    cpu_ratio = ours_s["tokens_per_cpu_s"] / trl_s["tokens_per_cpu_s"]
    step_ratio = trl_s["s_per_step"] / ours_s["s_per_step"]
    settings = {"model": args.model, "G": args.group_size, "prompts_per_step": args.prompts, "max_new_tokens": args.max_new_tokens,
                "beta": args.beta, "mu": 1, "minibatches": 1, "lr": args.learning_rate, "steps": args.steps,
                "warmup": args.warmup, "base_steps": args.base_steps, "torch_threads": threads,
                "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl_package.__version__}
    result = {"settings": settings, "hf_logit_max_diff": diff, "ours": ours_s, "trl": trl_s,
              "ours_time_split_median_s": split, "trl_generate_median_s": trl_generate, "ours_reward": [r["reward"] for r in ours_rows],
              "trl_log": [{k: v for k, v in e.items() if k in TRL_LOGGED} for e in trl.state.log_history],
              "tokens_per_s_ratio": ratio, "s_per_step_ratio": step_ratio, "tokens_per_cpu_s_ratio": cpu_ratio,
              "wall_s": time.perf_counter() - started}
    (args.out / "result.json").write_text(json.dumps(result, indent=2))

    print(f"settings: {json.dumps(settings)}")
    print(f"{'':6s} {'s/step':>8s} {'tok/step':>9s} {'tok/s':>8s} {'cpu s/step':>10s} {'tok/cpu-s':>9s}  per-step walls (s)")
    for name, s in (("ours", ours_s), ("TRL", trl_s)):
        print(f"{name:6s} {s['s_per_step']:8.2f} {s['tokens_per_step']:9.0f} {s['tokens_per_s']:8.1f} "
              f"{s['cpu_s_per_step']:10.2f} {s['tokens_per_cpu_s']:9.1f}  {s['walls']}")
    print("ours time split (median s): " + ", ".join(f"{k} {v:.3f}" for k, v in split.items()))
    print(f"TRL generate (transformers generate, median s): {trl_generate:.3f}; "
          f"TRL rest of the step {trl_s['s_per_step'] - trl_generate:.3f}")
    print(f"seconds per step ratio (TRL / ours): {step_ratio:.2f}; tokens per CPU second ratio (ours / TRL): "
          f"{cpu_ratio:.2f}; whole script {result['wall_s']:.0f} s")
    suffix = "" if args.model == "tiny" else "_" + args.model.replace("-", "_")
    print(f"grpo_vs_trl{suffix}_tokens_per_s_ratio={ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
