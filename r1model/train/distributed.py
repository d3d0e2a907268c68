"""Data-parallel training: the ranks of one run, and the DeepSpeed engine every trainer steps through.

    dist = Distributed.from_config(config)     # RANK / WORLD_SIZE / LOCAL_RANK from torchrun or deepspeed
    share = dist.shard(problems)               # this rank's contiguous share; the ranks' shares in rank
                                               # order are the single-process batch
    stepper = dist.stepper(model, optimizer, max_grad_norm)
    stepper.backward(loss, last=True); grad_norm = stepper.step()

One process (distributed.backend none) gets a LocalStepper: loss.backward, clip_grad_norm_, optimizer.step —
exactly what the loops did before. With backend deepspeed every rank wraps the same model in a DeepSpeed
engine (torch's AdamW as the client optimizer, so no DeepSpeed op has to compile), gradients are averaged
over the ranks, and:
  * losses are normalised by global counts (tokens or sequences summed over the ranks) times the world size,
    so the averaged gradient is the single-process gradient of the same global batch;
  * every rank calls backward the same number of times per step, with every parameter in the graph
    (a zero-weighted term), because ZeRO reduces gradients in collectives that all ranks must enter;
  * GRPO seeds each rollout by its prompt's index in the step's global batch (grpo_trainer.rollout_seeds,
    one stream per row: engine.RowGenerators), so N ranks sample the completions one process samples;
  * only rank 0 writes events, traces and checkpoints; checkpoints hold the consolidated weights in the
    model's HF layout (ZeRO-3 gathers them) plus `deepspeed/` (each rank's optimizer partition) for exact resume.
deepspeed is imported here only, and only when the config asks for it.
"""
from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import torch

DS_STATE_DIR = "deepspeed"
DS_TAG = "state"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LaunchError(RuntimeError):
    """The launch does not match the config (several ranks without a distributed backend, ...)."""


class Distributed:
    """Rank and world of this process; the collectives the trainers need (no-ops with one process)."""

    def __init__(self, backend: str = "none", rank: int = 0, world: int = 1, local_rank: int = 0, settings=None):
        self.backend, self.rank, self.world, self.local_rank = backend, rank, world, local_rank
        self.settings = settings  # DistributedConfig
        self.enabled = backend == "deepspeed"

    @classmethod
    def from_config(cls, config) -> "Distributed":
        """From the launcher's environment; LaunchError when N ranks run a config without a backend."""
        settings = config.distributed
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if settings.backend == "none":
            if world > 1:
                raise LaunchError(f"launched as {world} ranks but distributed.backend is 'none' "
                                  "(set it to 'deepspeed', or start one process)")
            return cls()
        return cls(settings.backend, rank, world, local_rank, settings)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def init(self, device: torch.device) -> torch.device:
        """Join the process group (gloo on CPU, nccl on GPU); the rank's device."""
        if not self.enabled:
            return device
        if device.type == "cpu":
            os.environ.setdefault("DS_ACCELERATOR", "cpu")
        for key, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0"), ("MASTER_ADDR", "127.0.0.1")):
            os.environ.setdefault(key, value)
        os.environ.setdefault("MASTER_PORT", str(_free_port()))  # one rank started without a launcher
        import deepspeed

        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if device.type == "cpu":
            # DeepSpeed's shared-memory allreduce is a C++ op compiled on first use (minutes); gloo needs none
            import deepspeed.ops

            deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
        if not torch.distributed.is_initialized():
            deepspeed.init_distributed(dist_backend="nccl" if device.type == "cuda" else "gloo")
        return device

    # --- collectives --------------------------------------------------------------------------------
    def shard(self, items: list) -> list:
        """This rank's contiguous share of a batch (the world size divides it: RunConfig checks)."""
        if not self.enabled or self.world == 1:
            return list(items)
        if len(items) % self.world:
            raise ValueError(f"{len(items)} items cannot be split evenly over {self.world} ranks")
        size = len(items) // self.world
        return list(items[self.rank * size:(self.rank + 1) * size])

    def gather(self, obj) -> list:
        """Every rank's `obj` in rank order (on every rank)."""
        if not self.enabled or self.world == 1:
            return [obj]
        out = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def sum(self, value: float) -> float:
        if not self.enabled or self.world == 1:
            return float(value)
        tensor = torch.tensor([float(value)], dtype=torch.float64)
        torch.distributed.all_reduce(tensor)
        return float(tensor[0])

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (a stop signal seen by one rank stops all at the same step)."""
        return self.sum(1.0 if flag else 0.0) > 0

    def barrier(self) -> None:
        if self.enabled and self.world > 1:
            torch.distributed.barrier()

    def sum_expert_loads(self, model) -> None:
        """DeepSeekMoE: the experts' token counts summed over the ranks before the routing-bias update, so
        every rank nudges the same bias, the one a single process would for the whole batch."""
        if not self.enabled or self.world == 1 or not callable(getattr(model, "moe_layers", None)):
            return
        for _, moe in model.moe_layers():
            counts = moe.gate.tokens_per_expert
            summed = counts.detach().to(torch.float64).cpu()
            torch.distributed.all_reduce(summed)
            counts.copy_(summed.to(counts.device))

    @contextlib.contextmanager
    def gathered(self, model):
        """The whole model's weights on every rank for the block (ZeRO-3 partitions them; else a no-op):
        rollouts, evaluation, reference refresh, saving."""
        if not (self.enabled and self.settings.zero_stage == 3):
            yield
            return
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
            yield

    def finish(self) -> None:
        if self.enabled and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()

    # --- the engine ---------------------------------------------------------------------------------
    def stepper(self, model, optimizer, max_grad_norm: float):
        if not self.enabled:
            return LocalStepper(model, optimizer, max_grad_norm)
        return DeepSpeedStepper(self, model, optimizer, max_grad_norm)


class LocalStepper:
    """One process: the loops' own backward / clip / step."""

    world = 1

    def __init__(self, model, optimizer, max_grad_norm: float):
        self.model, self.optimizer, self.max_grad_norm = model, optimizer, max_grad_norm
        self.module = model  # what forward calls go through

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def backward(self, loss: torch.Tensor | None, last: bool = True) -> None:
        if loss is not None:
            loss.backward()

    def fill_missing_grads(self) -> None:
        for param in self.model.parameters():  # a skipped row's zero gradient is still a gradient
            if param.requires_grad and param.grad is None:
                param.grad = torch.zeros_like(param)

    def step(self, check=None) -> torch.Tensor:
        """Clip, `check(grad_norm)` (it may raise: no step then), step; the norm before clipping."""
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        if check is not None:
            check(grad_norm)
        self.optimizer.step()
        return grad_norm

    def save(self, folder: Path) -> None:
        pass

    def load(self, checkpoint: Path) -> None:
        pass


def clips_itself(settings) -> bool:
    """Plain fp32 data parallel (ZeRO 0): the stepper clips with torch's clip_grad_norm_ after DeepSpeed's
    allreduce (as one process does, and it reports the norm); ZeRO and bf16 clip inside DeepSpeed."""
    return settings.zero_stage == 0 and not settings.bf16


def deepspeed_config(settings, max_grad_norm: float, world: int) -> dict:
    """The DeepSpeed config of a DistributedConfig. The engine's own accumulation counter stays at 1: the
    loops mark the accumulation boundary themselves (set_gradient_accumulation_boundary)."""
    zero: dict = {"stage": settings.zero_stage}
    if settings.offload_optimizer != "none":
        zero["offload_optimizer"] = {"device": settings.offload_optimizer}
    if settings.offload_params != "none":
        zero["offload_param"] = {"device": settings.offload_params}
    return {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "train_batch_size": world,
        "gradient_clipping": 0.0 if clips_itself(settings) else max_grad_norm,
        "zero_optimization": zero,
        "bf16": {"enabled": bool(settings.bf16)},
        "zero_allow_untested_optimizer": True,  # torch's AdamW under ZeRO
        "zero_force_ds_cpu_optimizer": False,  # ... and with offload (DeepSpeedCPUAdam would compile)
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


class DeepSpeedStepper:
    """The rank's DeepSpeed engine around `model` and the client optimizer (torch AdamW)."""

    def __init__(self, dist: Distributed, model, optimizer, max_grad_norm: float):
        import deepspeed

        self.dist, self.model = dist, model
        self.world = dist.world
        self.stage = dist.settings.zero_stage
        self.max_grad_norm = max_grad_norm
        self.own_clipping = clips_itself(dist.settings)
        if self.stage == 3 and callable(getattr(model, "moe_layers", None)):
            # an MoE layer reads its experts' weights directly (stacked GEMMs): fetch them as one module
            from deepspeed.utils import set_z3_leaf_modules

            set_z3_leaf_modules(model, list({type(moe) for _, moe in model.moe_layers()}))
        config = deepspeed_config(dist.settings, max_grad_norm, dist.world)
        self.engine, self.optimizer, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
        self.module = self.engine  # forward calls go through the engine (ZeRO-3 bookkeeping)
        self._touch_params = [p for p in model.parameters() if p.requires_grad]

    def zero_grad(self) -> None:
        self.engine.zero_grad()

    def _touch(self) -> torch.Tensor:
        """0 × a term of every parameter: each rank hands every parameter's gradient to the reduction
        (unrouted experts, an MTP module GRPO does not use, a rank with no rows this minibatch)."""
        return torch.stack([p.reshape(-1)[0].float() for p in self._touch_params]).sum() * 0.0

    def backward(self, loss: torch.Tensor | None, last: bool = True) -> None:
        if self.stage == 3:
            # partitioned weights cannot be touched outside a forward, and ZeRO-3 reduces a parameter once
            # per backward: the loss must use every parameter once (supervised forwards do)
            if loss is None:
                raise RuntimeError("ZeRO-3: a rank had no rows to train on this step")
        else:
            loss = self._touch() if loss is None else loss + self._touch()
        self.engine.set_gradient_accumulation_boundary(last)
        self.engine.backward(loss)

    def fill_missing_grads(self) -> None:
        pass  # _touch gave every parameter a gradient

    def step(self, check=None) -> torch.Tensor:
        """The engine clips and steps (DeepSpeed skips the step on an overflow); `check(grad_norm)` after."""
        self.engine.set_gradient_accumulation_boundary(True)
        if self.own_clipping:  # the gradients are averaged over the ranks already (engine.backward)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
            if check is not None:
                check(grad_norm)
            self.engine.step()
            return grad_norm
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        grad_norm = torch.as_tensor(float("nan") if norm is None else float(norm))
        if check is not None:
            check(grad_norm)
        return grad_norm

    # --- checkpoints --------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Every rank: its optimizer (and, ZeRO-3, weight) partition and its RNG into folder/deepspeed."""
        from r1model.train.checkpoint import rng_state

        self.engine.save_checkpoint(str(folder / DS_STATE_DIR), tag=DS_TAG, save_latest=False)
        torch.save(rng_state(), folder / DS_STATE_DIR / f"rng_rank{self.dist.rank}.pt")

    def load(self, checkpoint: Path) -> None:
        from r1model.train.checkpoint import set_rng_state

        path, _ = self.engine.load_checkpoint(str(checkpoint / DS_STATE_DIR), tag=DS_TAG, load_optimizer_states=True,
                                              load_lr_scheduler_states=False)
        if path is None:
            raise RuntimeError(f"{checkpoint}: no DeepSpeed state to resume from")
        rng = checkpoint / DS_STATE_DIR / f"rng_rank{self.dist.rank}.pt"
        if rng.exists():
            set_rng_state(torch.load(rng, map_location="cpu", weights_only=False))


def save_checkpoint(ctx, stepper, folder: Path, step: int, model, tokenizer, **kwargs) -> Path:
    """checkpoint.save_checkpoint on one process; on N ranks every rank writes its DeepSpeed partition into
    the temporary folder, the weights are gathered (ZeRO-3), and rank 0 writes the rest and renames it."""
    from r1model.train import checkpoint as ckpt

    dist = ctx.dist
    if not dist.enabled:
        return ckpt.save_checkpoint(folder, step, model, tokenizer, **kwargs)
    folder = Path(folder)
    tmp = ckpt.temporary_folder(folder, step)
    if dist.is_main:
        ckpt.clear_folder(tmp)
    dist.barrier()
    stepper.save(tmp)
    dist.barrier()
    final = folder / f"step-{step}"
    with dist.gathered(model):
        if dist.is_main:
            final = ckpt.save_checkpoint(folder, step, model, tokenizer, prepared=True, **kwargs)
    dist.barrier()
    return final
