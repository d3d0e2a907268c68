"""One job in one run directory: the stages, resume, signals, evaluation and the final status.

    from r1model.train.runner import run
    exit_code = run(config, "runs/aha")     # 0 done or stopped by SIGTERM, 1 failed

Resume is automatic: the latest complete checkpoint of the run directory (main job first, then the base
stage) is where the job continues, and the event stream is cut back to the seq that checkpoint recorded.
"""
from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

import torch

from r1model.events import EventWriteError, EventWriter
from r1model.train import checkpoint as ckpt
from r1model.train import modeling
from r1model.train.base_probe import make_stop_check, probe_budget
from r1model.train.config import RunConfig
from r1model.train.context import Progress, RunContext, TrainingFailed
from r1model.train.data import DataSource
from r1model.train.distributed import Distributed

EXIT_OK, EXIT_FAILED = 0, 1


def _write_config(config: RunConfig, run_dir: Path) -> None:
    tmp = run_dir / "config.json.tmp"
    tmp.write_text(config.to_json())
    os.replace(tmp, run_dir / "config.json")


def _device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _base_steps(config: RunConfig) -> int:
    """Steps of the base pretraining that runs before the main job (none when the job is a pretraining); with
    a probe (config.base.probe) the most it may run, the cap."""
    if config.kind == "pretrain" or not config.base.steps:
        return 0
    return probe_budget(config.base.steps, config.base.probe)


def stage_plan(config: RunConfig) -> list[dict]:
    """The run's stages in order, as its "starting" status says them (the lab reads its stages from there):
    [{"name": "base", "total_steps": base.steps}] when a base pretraining runs first, then the main job."""
    base = [{"name": "base", "total_steps": _base_steps(config)}] if _base_steps(config) else []
    return base + [{"name": "main", "total_steps": config.total_steps}]


def _state_of(checkpoint: Path | None) -> dict:
    return json.loads((checkpoint / ckpt.STATE_JSON).read_text()) if checkpoint is not None else {}


def describe_error(exc: BaseException) -> str:
    """One line for the user: the message of an error the trainer raised on purpose (TrainingFailed,
    EventWriteError), the file and the cause of an OSError, else the exception's type and message."""
    if isinstance(exc, (TrainingFailed, EventWriteError)):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def run(config: RunConfig, run_dir: str | os.PathLike, *, progress_stream=None, install_signals: bool = True) -> int:
    """Every failure ends the same way: a `status` event of phase `failed` with a one-line message (when
    the events file can still be written; the traceback goes to a `log` event), the same line on the
    progress stream (stderr), and EXIT_FAILED."""
    run_dir = Path(run_dir)
    progress = Progress(progress_stream)
    ctx = None
    dist = None
    try:
        dist = Distributed.from_config(config)  # N ranks under torchrun / deepspeed: only rank 0 writes
        if not dist.is_main:
            progress = Progress(open(os.devnull, "w"))
        run_dir.mkdir(parents=True, exist_ok=True)
        if dist.is_main:
            _write_config(config, run_dir)
        torch.set_num_threads(config.threads)
        if config.deterministic:
            torch.use_deterministic_algorithms(True)
        device = dist.init(_device(config.device))
        ctx = RunContext(config, run_dir, EventWriter(run_dir, rank=dist.rank), device, progress=progress, dist=dist)
        if install_signals:
            ctx.stop.install()
        finished = _run_stages(ctx)
        if finished:
            ctx.status("done", config.total_steps, eta_s=0.0, message="done")
        else:
            ctx.status("stopped", message="stopped by signal; checkpoint written")
        ctx.events.close()
        dist.finish()
    except Exception as exc:
        _report_failure(ctx, progress, exc)
        return EXIT_FAILED
    return EXIT_OK


def _report_failure(ctx: RunContext | None, progress: Progress, exc: Exception) -> None:
    """The failed status (where the events file still takes one) and the same line on stderr."""
    message = describe_error(exc)
    if ctx is not None:
        try:
            if not isinstance(exc, EventWriteError):
                if not isinstance(exc, TrainingFailed):  # unexpected: its traceback for the run's log
                    ctx.events.log(traceback.format_exc(), level="error")
                ctx.status("failed", message=message)
            ctx.events.close()
        except EventWriteError as write_error:
            if not isinstance(exc, EventWriteError):  # the events file broke as well: say both
                message = f"{message} ({write_error})"
    progress.message(f"failed: {message}")


def _run_stages(ctx: RunContext) -> bool:
    """Resume from the latest checkpoint, say so, run the base stage and the main job; True when done."""
    config, events, run_dir = ctx.config, ctx.events, ctx.run_dir
    main_dir = run_dir / "checkpoints"
    base_dir = run_dir / "base" / "checkpoints"
    main_latest = ckpt.latest_checkpoint(main_dir)
    base_latest = ckpt.latest_checkpoint(base_dir) if _base_steps(config) else None
    resumed_from = main_latest or base_latest
    state = _state_of(resumed_from)
    events.resume(int(state.get("event_seq", 0)))
    # a resumed attempt starts at its checkpoint's step, counted in the stage that wrote it
    step = int(state.get("step", 0))
    if main_latest is None and _base_steps(config):
        ctx.enter_stage("base", _base_steps(config), step)
    else:
        ctx.enter_stage("main", config.total_steps, step)
    ctx.status("starting", message=f"resuming from {resumed_from}" if resumed_from else "starting",
               stages=stage_plan(config))
    data = DataSource(config)
    events.log(data.split_message(), datasets=data.split_sizes())
    return _run_job(ctx, data, main_latest, base_latest)


def _starting_model(ctx: RunContext, data: DataSource, base_latest: Path | None):
    """(model, tokenizer, finished) — the model the main job starts from, pretraining the base first
    when the config asks for it (and resuming that pretraining from its checkpoints)."""
    from r1model.train.supervised import train_supervised

    config = ctx.config
    steps = _base_steps(config)
    if not steps:
        model, tokenizer = modeling.build_model(config.model, ctx.device, config.seed, config.precision)
        return model, tokenizer, True
    base_dir = ctx.run_dir / "base" / "checkpoints"
    if base_latest is not None and (ckpt.list_checkpoints(base_dir)[-1][0] >= steps
                                    or _state_of(base_latest).get("stopped_early")):
        model, tokenizer = modeling.load_model(base_latest, ctx.device, precision=config.precision)
        ckpt.restore_running_state(base_latest, model)  # as the model the base stage left in memory
        return model, tokenizer, True
    if base_latest is not None:
        model, tokenizer = modeling.load_model(base_latest, ctx.device, precision=config.precision)
    else:
        model, tokenizer = modeling.build_model(config.model, ctx.device, config.seed, config.precision)
    stop = None
    if config.base.probe is not None:  # probed on the run's datasets (the RL's), not a base corpus of its own
        stop = make_stop_check(ctx, model, tokenizer, data, config.base.steps, config.base.probe)
    if config.base.datasets:
        data = DataSource(config.model_copy(update={"datasets": config.base.datasets}))
    finished = train_supervised(
        ctx, model, tokenizer, data, steps=steps, phase="pretrain", checkpoint_dir=base_dir,
        resume_from=base_latest, checkpoint_interval=config.base.checkpoint_interval,
        schedule_steps=config.base.steps, stop=stop,
    )
    return model, tokenizer, finished


def _run_job(ctx: RunContext, data: DataSource, main_latest: Path | None, base_latest: Path | None) -> bool:
    config = ctx.config
    if main_latest is None:
        model, tokenizer, finished = _starting_model(ctx, data, base_latest)
        if not finished:
            return False
        ctx.enter_stage("main", config.total_steps)
        start_model = model
    else:
        start_model = None
        if config.kind == "grpo" and config.grpo.beta > 0:  # the reference is the starting policy
            start_model, tokenizer, _ = _starting_model(ctx, data, base_latest)
        model, tokenizer = modeling.load_model(main_latest, ctx.device, precision=config.precision)
    engine = modeling.make_engine(model, tokenizer, config.sampling.engine, options=config.sampling,
                                  workdir=ctx.run_dir / "vllm", seed=config.seed)
    try:
        return _run_main(ctx, config, data, model, tokenizer, engine, start_model, main_latest)
    finally:
        modeling.close_engine(engine)


def _run_main(ctx: RunContext, config, data: DataSource, model, tokenizer, engine, start_model, main_latest) -> bool:
    from r1model.train.evaluation import evaluate_model

    def evaluate(step: int) -> None:
        if config.evaluation.benchmarks:
            ctx.status("eval", step, message=f"evaluating at step {step}")
            with ctx.dist.gathered(model):  # every rank evaluates the same problems; rank 0 writes
                evaluate_model(ctx, model, tokenizer, engine, data, step)

    if main_latest is None and config.evaluation.at_start and config.kind in ("grpo", "sft"):
        evaluate(0)

    if config.kind in ("pretrain", "sft"):
        from r1model.train.supervised import train_supervised

        finished = train_supervised(
            ctx, model, tokenizer, data, steps=config.total_steps, phase=config.kind,
            checkpoint_dir=ctx.run_dir / "checkpoints", resume_from=main_latest,
            checkpoint_interval=config.checkpoint_interval,
            worked_fraction=1.0 if config.kind == "sft" else None, evaluate=evaluate,
        )
    elif config.kind == "grpo":
        from r1model.train.grpo_trainer import GRPOTrainer

        reference = modeling.frozen_copy(start_model) if config.grpo.beta > 0 else None
        trainer = GRPOTrainer(ctx, model, tokenizer, data, reference=reference, evaluate=evaluate, engine=engine)
        if main_latest is not None:
            trainer.resume(main_latest)
        finished = trainer.run()
    elif config.kind == "rejection_sampling":
        from r1model.train.rejection_sampling import run_rejection_sampling

        finished = run_rejection_sampling(ctx, model, tokenizer, engine, data)
    else:  # evaluate
        evaluate(0)
        return True
    if finished:
        evaluate(config.total_steps)
    return finished

